//! The one manifest merge every job ends with: read the asset's manifest (or
//! start one), apply what the job learnt, write it back whole, conditional
//! on the version read; and the failure records of permanent failures.

use super::context::JobContext;
use std::collections::BTreeMap;
use thumbfarm_shared::keys::{KeyKind, AVC};
use thumbfarm_shared::manifest::{update_manifest, FailureRecord, Manifest, OutputInfo};
use thumbfarm_shared::messages::SourceRef;
use thumbfarm_shared::renditions::Rendition;
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::sizes::{self, Plan, Size};
use thumbfarm_shared::store;
use thumbfarm_shared::store::ObjectMeta;
use thumbfarm_shared::{AssetHash, KeyLayout};

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

/// How many times a merge is redone when a concurrent writer dropped
/// outputs from the manifest.
const MERGE_ROUNDS: usize = 8;

/// Merges a job's results into the manifest of `hash` (created when
/// missing) and writes it without losing a concurrent job's results: the
/// write is conditional on the version read and `apply` runs again on a
/// conflict ([`update_manifest`]). `apply` sets what the job learnt
/// (dimensions, outputs, cleared failures); the timestamps are RFC 3339.
///
/// Conditional writes are only as good as the store's: some S3 servers check
/// the condition apart from the write, so two writers can both pass. So
/// after writing, the outputs stored as objects are listed and compared with
/// the manifest; any the manifest lacks (dropped by a concurrent write) are
/// merged in again. Every job does this after its last write, so the last
/// writer of a manifest always leaves every stored output in it.
pub async fn merge_manifest(
    ctx: &JobContext<'_>,
    hash: AssetHash,
    original: OriginalFacts<'_>,
    apply: impl Fn(&mut Manifest),
) -> Result<Manifest, WorkError> {
    let key = ctx.opts.layout.manifest(&hash);
    let create = || {
        Some(Manifest::new(
            hash,
            original.source.clone(),
            original.media_type,
            original.bytes,
        ))
    };
    let mut adopt = StoredOutputs::default();
    for _ in 0..MERGE_ROUNDS {
        let written = ctx
            .store_retry("store manifest", || {
                update_manifest(ctx.store, &key, create, |m| {
                    m.learn_original(original.media_type, original.bytes);
                    apply(m);
                    adopt.add_missing_to(m);
                })
            })
            .await?
            .ok_or_else(|| WorkError::Transient(format!("manifest of {hash} was not written")))?;
        // `written` was read back after the write: compared with a listing
        // made after it too.
        let stored = stored_outputs(ctx, &hash).await?;
        if stored.all_in(&written) {
            return Ok(written);
        }
        tracing::debug!(%hash, "a concurrent write dropped outputs from the manifest; merging them again");
        adopt = stored;
    }
    Err(WorkError::Transient(format!(
        "manifest of {hash} kept losing outputs to concurrent writers"
    )))
}

/// The outputs of an asset that exist as objects, by output name.
#[derive(Debug, Default)]
struct StoredOutputs(BTreeMap<String, ObjectMeta>);

impl StoredOutputs {
    /// Whether the manifest lists every one.
    fn all_in(&self, m: &Manifest) -> bool {
        self.0.keys().all(|name| m.outputs.contains_key(name))
    }

    /// Adds the ones `m` does not list (idempotent). The pixel size of a
    /// thumbnail follows from the size and the original; that of a
    /// transcode is left 0 (unknown) for its own job to fill in.
    fn add_missing_to(&self, m: &mut Manifest) {
        for (name, meta) in &self.0 {
            if m.outputs.contains_key(name) {
                continue;
            }
            let (width, height) = match name.parse::<Rendition>() {
                Ok(r) if m.has_dimensions() => match sizes::plan(r.size, m.width, m.height) {
                    Plan::Render(g) => (g.width, g.height),
                    Plan::ServeAs(_) | Plan::NotApplicable => (0, 0),
                },
                _ => (0, 0),
            };
            m.outputs.insert(
                name.clone(),
                OutputInfo {
                    key: meta.key.clone(),
                    width,
                    height,
                    bytes: meta.size,
                },
            );
        }
    }
}

/// The thumbnails (one LIST of `thumbs/…/<hash>_`) and the transcode (one
/// HEAD of its key) of `hash`.
async fn stored_outputs(
    ctx: &JobContext<'_>,
    hash: &AssetHash,
) -> Result<StoredOutputs, WorkError> {
    let layout = ctx.opts.layout;
    let any_thumb = layout.thumb(hash, Size::Colors);
    let prefix = match any_thumb.rfind('/') {
        Some(slash) => format!("{}{hash}_", &any_thumb[..=slash]),
        None => format!("{hash}_"),
    };
    let mut found = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx
            .store_retry("list outputs", || {
                ctx.store.list(&prefix, after.as_deref(), 1000)
            })
            .await?;
        for obj in page.objects {
            if let Ok((h, KeyKind::Thumb(rendition))) = KeyLayout::parse(&obj.key) {
                if h == *hash {
                    found.insert(rendition.name(), obj);
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let video = layout.video(hash);
    if let Some(meta) = ctx
        .store_retry("check transcode", || ctx.store.head(&video))
        .await?
    {
        found.insert(AVC.to_string(), meta);
    }
    Ok(StoredOutputs(found))
}

/// Records a permanent failure of `output` (`image` or `avc`) of `hash` in
/// its manifest (created when missing), so that every replica answers 422
/// at once instead of rendering it again.
pub async fn record_failure(
    ctx: &JobContext<'_>,
    hash: AssetHash,
    source: &SourceRef,
    media_type: &str,
    output: &str,
    reason: &str,
) -> Result<(), WorkError> {
    let key = ctx.opts.layout.manifest(&hash);
    let record = FailureRecord::now(reason);
    let create = || Some(Manifest::new(hash, source.clone(), media_type, 0));
    ctx.store_retry("record failure", || {
        update_manifest(ctx.store, &key, create, |m| {
            m.failures.insert(output.to_string(), record.clone());
        })
    })
    .await?;
    Ok(())
}
