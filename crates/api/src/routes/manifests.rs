//! The manifest of a requested asset: from the hot cache or the store.

use crate::http::auth::check_api_key;
use crate::http::error::{ApiError, ThumbError};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::HeaderMap;
use std::sync::Arc;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::store::{get_json, StoreError};
use thumbfarm_shared::AssetHash;

/// The manifest named by a keyed JSON route's `{hash}`: the API key is
/// checked first, then the hash; 400 when malformed, 404 when unknown, 422
/// when damaged, 503 when the store fails.
pub async fn keyed_manifest(
    state: &AppState,
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Manifest, ApiError> {
    check_api_key(&state.options().api_keys, headers)?;
    let Ok(Path(hash)) = path else {
        return Err(ApiError::BadRequest("malformed hash".into()));
    };
    let hash = AssetHash::parse(&hash).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    load_manifest(state, &hash)
        .await
        .map_err(ApiError::from_manifest_read)?
        .ok_or(ApiError::NotFound)
}

/// Reads the manifest of `hash`; `Ok(None)` when the asset is unknown.
pub async fn load_manifest(
    state: &AppState,
    hash: &AssetHash,
) -> Result<Option<Manifest>, StoreError> {
    let key = state.layout().manifest(hash);
    get_json::<Manifest>(state.store().as_ref(), &key).await
}

/// The manifest of `hash` from the hot cache or the store (then cached):
/// 404 when the asset is unknown, 422 when it is damaged (not valid JSON:
/// re-ingesting the original repairs it), 503 when the store fails.
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
            .map_err(|e| manifest_error(state, e))?
            .ok_or(ThumbError::UnknownAsset)?,
    );
    state.cache().put_manifest(Arc::clone(&loaded));
    Ok(loaded)
}

/// The answer for a manifest that could not be read: a damaged one is a
/// permanent failure of the asset (logged once per request with its key),
/// anything else a 503.
pub fn manifest_error(state: &AppState, e: StoreError) -> ThumbError {
    match e {
        StoreError::Corrupt { key, message } => {
            tracing::error!(%key, %message, "damaged manifest: re-ingest the original to repair it");
            ThumbError::Failed {
                reason: format!("manifest damaged: {message}"),
            }
        }
        other => unavailable(state, "reading manifest", other),
    }
}

/// A 503 for a store or queue that failed (the detail goes to the log).
pub fn unavailable(state: &AppState, what: &str, e: impl std::fmt::Display) -> ThumbError {
    ThumbError::Unavailable {
        reason: format!("{what}: {e}"),
        retry_after: state.options().retry_after,
    }
}
