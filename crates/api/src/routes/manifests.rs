//! The manifest of a requested asset: from the hot cache or the store.

use crate::http::error::ThumbError;
use crate::state::AppState;
use std::sync::Arc;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::store::{get_json, StoreError};
use thumbfarm_shared::AssetHash;

/// Reads the manifest of `hash`; `Ok(None)` when the asset is unknown.
pub async fn load_manifest(
    state: &AppState,
    hash: &AssetHash,
) -> Result<Option<Manifest>, StoreError> {
    let key = state.layout().manifest(hash);
    get_json::<Manifest>(state.store().as_ref(), &key).await
}

/// The manifest of `hash` from the hot cache or the store (then cached):
/// 404 when the asset is unknown, 503 when the store fails.
pub async fn cached_manifest(
    state: &AppState,
    hash: &AssetHash,
) -> Result<Arc<Manifest>, ThumbError> {
    if let Some(cached) = state.cache().manifest(hash) {
        return Ok(cached);
    }
    let loaded = Arc::new(
        load_manifest(state, hash)
            .await
            .map_err(|e| unavailable(state, "reading manifest", e))?
            .ok_or(ThumbError::UnknownAsset)?,
    );
    state.cache().put_manifest(Arc::clone(&loaded));
    Ok(loaded)
}

/// A 503 for a store or queue that failed (the detail goes to the log).
pub fn unavailable(state: &AppState, what: &str, e: impl std::fmt::Display) -> ThumbError {
    ThumbError::Unavailable {
        reason: format!("{what}: {e}"),
        retry_after: state.options().retry_after,
    }
}
