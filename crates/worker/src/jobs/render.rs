//! The render job: the original from the store, every wanted rendition
//! (size and format) rendered from one decode (a video's poster frame for a
//! video), the outputs, the ThumbHash and the manifest into the store.
//! Outputs that already exist are skipped, so a redelivered job is harmless.

use super::asset_claim;
use super::context::JobContext;
use super::live_photo::{link_photo_manifest, link_to, record_half, Half, HalfRecord};
use super::manifest::{merge_manifest, read_manifest, OriginalFacts};
use super::original::{check_bucket, fetch_original, hash_file};
use crate::isolation::work::{self, RenderedOriginal};
use crate::render;
use base64::Engine;
use bytes::Bytes;
use thumbfarm_shared::manifest::{FailureRecord, OutputInfo, IMAGE_OUTPUT};
use thumbfarm_shared::messages::RenderJob;
use thumbfarm_shared::renditions::{resolve_renditions, sizes_of, Rendition};
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::AssetHash;

/// What a finished render job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOutcome {
    /// The asset.
    pub hash: AssetHash,
    /// Every rendition now stored for the request (rendered or already there).
    pub stored: Vec<Rendition>,
    /// The renditions rendered and written by this job.
    pub written: Vec<Rendition>,
    /// The asset's ThumbHash (base64), when this job computed it.
    pub thumbhash: Option<String>,
    /// Set when the asset's render failed for good before (a recorded
    /// failure): the job did nothing.
    pub failed_before: Option<FailureRecord>,
}

impl From<render::RenderError> for WorkError {
    fn from(e: render::RenderError) -> Self {
        if e.is_permanent() {
            WorkError::Permanent(e.to_string())
        } else {
            WorkError::Transient(e.to_string())
        }
    }
}

/// Runs one render job to the end: every output stored and the manifest
/// written. Public so tests and tools can drive a job without a queue.
pub async fn render_job(ctx: &JobContext<'_>, job: &RenderJob) -> Result<RenderOutcome, WorkError> {
    let opts = ctx.opts;
    if job.sizes.is_empty() {
        return Err(WorkError::Permanent("job names no sizes".into()));
    }
    check_bucket(ctx, &job.source)?;
    let wanted: Vec<Rendition> = job
        .sizes
        .iter()
        .copied()
        .filter(|r| opts.limits.allows_on_request(r.size))
        .collect();
    if wanted.is_empty() {
        return Err(WorkError::Permanent(
            "every size asked for is above the dynamic size limit".into(),
        ));
    }

    // One render of an asset at a time across the cluster: a duplicate
    // waits here for the first, then finds its outputs stored below.
    let started = std::time::Instant::now();
    let mut phases = Phases::start();
    let _claim = match job.hash {
        Some(hash) => asset_claim::hold(ctx, &hash).await,
        None => None,
    };

    // With a known hash: do nothing for an asset whose render failed for
    // good (until that failure is cleared), and skip the download when every
    // output is already stored.
    if let (Some(hash), false) = (job.hash, job.force) {
        if let Some(m) = read_manifest(ctx, &hash).await? {
            if let Some(record) = m.failures.get(IMAGE_OUTPUT) {
                return Ok(RenderOutcome {
                    hash,
                    stored: Vec::new(),
                    written: Vec::new(),
                    thumbhash: None,
                    failed_before: Some(record.clone()),
                });
            }
            if m.has_dimensions() {
                let needed = resolve_renditions(&wanted, m.width, m.height);
                // A job that would compute the ThumbHash of an asset that
                // has none yet (a manifest of an older worker) renders.
                let placeholder_due = m.thumbhash.is_none()
                    && sizes_of(&needed).iter().any(|s| !s.spec().method.is_fill());
                if !placeholder_due && missing_outputs(ctx, &hash, &needed).await?.is_empty() {
                    return Ok(RenderOutcome {
                        hash,
                        stored: needed,
                        written: Vec::new(),
                        thumbhash: None,
                        failed_before: None,
                    });
                }
            }
        }
    }

    // A video's poster is read frame by frame, not into memory: the video
    // limit applies.
    let video_hint = job
        .media_type
        .as_deref()
        .is_some_and(|t| t.starts_with("video/"));
    let max_bytes = if video_hint {
        opts.video.max_input_bytes
    } else {
        opts.render.max_file_size
    };
    phases.mark("claim_and_check");
    let original = fetch_original(ctx, &job.source, max_bytes).await?;
    phases.mark("fetch");
    let hash = match job.hash {
        Some(h) => h,
        None => hash_file(&original.path).await?,
    };

    // Decode once and render every wanted size, off the async runtime (in a
    // decoder child when isolated).
    let (render_opts, video_opts) = (opts.render.clone(), opts.video.clone());
    let media_hint = job.media_type.clone();
    let path = original.path.clone();
    let for_render = wanted.clone();
    let isolation = opts.isolation.clone();
    let RenderedOriginal { result, extras } = tokio::task::spawn_blocking(move || {
        let hint = media_hint.as_deref();
        match &isolation {
            Some(children) => {
                children.render_original(&path, &for_render, hint, &render_opts, &video_opts)
            }
            None => work::render_original(&path, &for_render, hint, &render_opts, &video_opts),
        }
    })
    .await
    .map_err(|e| WorkError::Permanent(format!("renderer crashed: {e}")))??;
    let mut live_link = None;
    if let Some((content_id, half)) = &extras.live {
        if let Some(other) = record_half(ctx, content_id, *half, hash, &job.source).await? {
            match half {
                Half::Photo => live_link = Some(link_to(content_id, &other)),
                Half::Video => {
                    let own = HalfRecord {
                        v: thumbfarm_shared::messages::V1,
                        hash,
                        source: job.source.clone(),
                    };
                    link_photo_manifest(ctx, content_id, &other, &own).await?;
                }
            }
        }
    }
    let motion = extras.motion;
    ctx.metrics
        .decode_seconds
        .with_label_values(&[result.media_type])
        .observe(result.decode_millis / 1000.0);

    phases.mark("render");
    let stored: Vec<Rendition> = result.outputs.iter().map(|o| o.rendition()).collect();
    let existing: Vec<Rendition> = if job.force {
        Vec::new()
    } else {
        let missing = missing_outputs(ctx, &hash, &stored).await?;
        stored
            .iter()
            .copied()
            .filter(|s| !missing.contains(s))
            .collect()
    };

    let mut outputs = Vec::new();
    let mut written = Vec::new();
    for out in &result.outputs {
        ctx.metrics
            .render_seconds
            .with_label_values(&[out.size.name()])
            .observe(out.millis / 1000.0);
        let rendition = out.rendition();
        let key = opts.layout.thumb(&hash, rendition);
        outputs.push((
            rendition.name(),
            OutputInfo {
                key: key.clone(),
                width: out.width,
                height: out.height,
                bytes: out.bytes.len() as u64,
            },
        ));
        if existing.contains(&rendition) {
            continue;
        }
        let body = Bytes::from(out.bytes.clone());
        let content_type = rendition.content_type();
        ctx.store_retry("store output", || {
            ctx.store.put(&key, body.clone(), content_type)
        })
        .await?;
        ctx.metrics.bytes_out.inc_by(out.bytes.len() as u64);
        ctx.metrics.outputs_written.inc();
        written.push(rendition);
    }
    phases.mark("store_outputs");
    let thumbhash = result
        .thumbhash
        .as_ref()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h));

    let facts = OriginalFacts {
        source: &job.source,
        media_type: result.media_type,
        bytes: original.bytes,
    };
    merge_manifest(ctx, hash, facts, |m| {
        m.width = result.width;
        m.height = result.height;
        if result.hdr.is_some() {
            m.hdr = result.hdr.clone();
        }
        if let Some(video) = &motion {
            m.video = Some(video.clone());
        } else if let Some(link) = &live_link {
            m.video = Some(link.clone());
        }
        m.outputs.extend(outputs.iter().cloned());
        if thumbhash.is_some() {
            m.thumbhash = thumbhash.clone();
        }
        m.failures.remove(IMAGE_OUTPUT);
    })
    .await?;

    phases.mark("manifest");
    tracing::debug!(%hash, total_ms = started.elapsed().as_millis() as u64, phases = %phases, "render job timings");
    Ok(RenderOutcome {
        hash,
        stored,
        written,
        thumbhash,
        failed_before: None,
    })
}

/// The renditions among `renditions` whose thumbnail is not stored yet.
async fn missing_outputs(
    ctx: &JobContext<'_>,
    hash: &AssetHash,
    renditions: &[Rendition],
) -> Result<Vec<Rendition>, WorkError> {
    let mut missing = Vec::new();
    for &size in renditions {
        let key = ctx.opts.layout.thumb(hash, size);
        let found = ctx
            .store_retry("check output", || ctx.store.head(&key))
            .await?;
        if found.is_none() {
            missing.push(size);
        }
    }
    Ok(missing)
}

/// Where a render job's time went, for the debug log.
struct Phases {
    last: std::time::Instant,
    spent: Vec<(&'static str, u128)>,
}

impl Phases {
    fn start() -> Self {
        Phases {
            last: std::time::Instant::now(),
            spent: Vec::new(),
        }
    }

    /// Ends the phase `name` (it began where the last one ended).
    fn mark(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.spent
            .push((name, now.duration_since(self.last).as_millis()));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, ms)) in self.spent.iter().enumerate() {
            write!(f, "{}{name}={ms}ms", if i > 0 { " " } else { "" })?;
        }
        Ok(())
    }
}
