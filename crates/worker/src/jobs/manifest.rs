//! The one manifest merge every job ends with: read the asset's manifest (or
//! start one), apply what the job learnt, write it back whole.

use super::context::JobContext;
use bytes::Bytes;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::SourceRef;
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::store;
use thumbfarm_shared::AssetHash;

/// Reads the manifest of `hash` (`None` when there is none yet).
pub async fn read_manifest(
    ctx: &JobContext<'_>,
    hash: &AssetHash,
) -> Result<Option<Manifest>, WorkError> {
    let key = ctx.opts.layout.manifest(hash);
    Ok(ctx
        .store_retry("read manifest", || {
            store::get_json::<Manifest>(ctx.store, &key)
        })
        .await?)
}

/// What a job knows about the original it read.
#[derive(Debug, Clone, Copy)]
pub struct OriginalFacts<'a> {
    /// Where it is.
    pub source: &'a SourceRef,
    /// Its media type, as the pipeline detected it.
    pub media_type: &'a str,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Merges a job's results into the manifest of `hash` (created when
/// missing) and writes it: `apply` sets what the job learnt (dimensions,
/// outputs), the timestamps are RFC 3339.
pub async fn merge_manifest(
    ctx: &JobContext<'_>,
    hash: AssetHash,
    original: OriginalFacts<'_>,
    apply: impl FnOnce(&mut Manifest),
) -> Result<Manifest, WorkError> {
    let mut m = match read_manifest(ctx, &hash).await? {
        Some(m) => m,
        None => Manifest::new(
            hash,
            original.source.clone(),
            original.media_type,
            original.bytes,
        ),
    };
    m.learn_original(original.media_type, original.bytes);
    apply(&mut m);
    m.touch();
    let key = ctx.opts.layout.manifest(&hash);
    let body = Bytes::from(m.to_json());
    ctx.store_retry("store manifest", || {
        ctx.store.put(&key, body.clone(), "application/json")
    })
    .await?;
    Ok(m)
}
