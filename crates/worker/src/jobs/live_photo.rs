//! Linking the two halves of an Apple Live Photo in the store.
//!
//! Each half's render job (the still's thumbnails, the MOV's poster) writes
//! `live/<content-id>/<photo|video>.json` — its hash and original — and then
//! reads the other half. Writing first and reading second means that of two
//! jobs running at once at least one sees the other, so the pair is linked
//! whichever arrives first:
//! - the still's job finding the MOV records the link in its own manifest
//!   merge;
//! - the MOV's job finding the still merges the link into the still's
//!   manifest (when that manifest exists; otherwise the still's job, still
//!   to come, links).
//!
//! The link is the still's `video` ([`StillVideo`] of kind `live_photo`,
//! naming the MOV): the still's `/api/v1/videos/<still>/…/avc` serves the
//! MOV's transcode, stored once under the MOV's hash.

use super::context::JobContext;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thumbfarm_shared::keys::live_photo_half;
use thumbfarm_shared::manifest::{update_manifest, StillVideo, VideoKind};
use thumbfarm_shared::messages::{SourceRef, V1};
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::store;
use thumbfarm_shared::AssetHash;
use tracing::info;

pub use crate::live_photo::Half;

impl Half {
    fn name(self) -> &'static str {
        match self {
            Half::Photo => "photo",
            Half::Video => "video",
        }
    }

    fn other(self) -> Half {
        match self {
            Half::Photo => Half::Video,
            Half::Video => Half::Photo,
        }
    }
}

/// One half's record under `live/<content-id>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HalfRecord {
    /// Message version.
    pub v: V1,
    /// The half's asset.
    pub hash: AssetHash,
    /// Its original.
    pub source: SourceRef,
}

/// The link a still records for its MOV.
pub fn link_to(content_id: &str, video: &HalfRecord) -> StillVideo {
    let mut v = StillVideo::new(VideoKind::LivePhoto);
    v.source = Some(video.source.clone());
    v.source_hash = Some(video.hash);
    v.content_id = Some(content_id.to_string());
    v
}

/// Writes this half's record and returns the other half's, if it exists.
/// `Ok(None)` also for an identifier unfit for a key.
pub async fn record_half(
    ctx: &JobContext<'_>,
    content_id: &str,
    half: Half,
    hash: AssetHash,
    source: &SourceRef,
) -> Result<Option<HalfRecord>, WorkError> {
    let (Some(own), Some(other)) = (
        live_photo_half(content_id, half.name()),
        live_photo_half(content_id, half.other().name()),
    ) else {
        return Ok(None);
    };
    let record = HalfRecord {
        v: V1,
        hash,
        source: source.clone(),
    };
    let body = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
    ctx.store_retry("store live photo half", || {
        ctx.store.put(&own, body.clone(), "application/json")
    })
    .await?;
    let found = ctx
        .store_retry("read live photo half", || {
            store::get_json::<HalfRecord>(ctx.store, &other)
        })
        .await?;
    // A half that names the same asset is not a pair.
    Ok(found.filter(|r| r.hash != hash))
}

/// The MOV's side: merges the link into the still's manifest when it exists.
pub async fn link_photo_manifest(
    ctx: &JobContext<'_>,
    content_id: &str,
    photo: &HalfRecord,
    video: &HalfRecord,
) -> Result<(), WorkError> {
    let key = ctx.opts.layout.manifest(&photo.hash);
    let link = link_to(content_id, video);
    // A conditional merge: a render of the still writing its manifest at the
    // same moment cannot drop the link (nor the link its outputs).
    let written = ctx
        .store_retry("store manifest", || {
            update_manifest(
                ctx.store,
                &key,
                || None,
                |m| {
                    // A motion photo keeps its own video.
                    if m.video
                        .as_ref()
                        .is_some_and(|v| v.kind != VideoKind::LivePhoto)
                    {
                        return;
                    }
                    m.video = Some(link.clone());
                },
            )
        })
        .await?;
    if written.is_none() {
        return Ok(());
    }
    info!(photo = %photo.hash, video = %video.hash, content_id, "Live Photo linked");
    Ok(())
}
