//! The transcode job: the original from the store, the AVC MP4 into the
//! store, the manifest updated.
//!
//! The MP4 is written to the job's private temporary directory and uploaded
//! whole ([`Store::put_file`](thumbfarm_shared::store::Store::put_file)), so
//! nothing partial is ever visible under `videos/…/<hash>.avc.mp4`. A worker
//! killed mid-transcode leaves only its temporary directory; the
//! redelivered job starts from scratch.

use super::context::JobContext;
use super::manifest::{merge_manifest, read_manifest, OriginalFacts};
use super::original::{check_bucket, fetch_original, hash_file};
use crate::isolation::work::{self, Transcoded};
use crate::video::{metrics::VideoMetrics, VideoError};
use std::time::Instant;
use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::{FailureRecord, OutputInfo};
use thumbfarm_shared::messages::{Event, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, Exchange};
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::AssetHash;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// What a finished transcode job did.
#[derive(Debug, Clone)]
pub struct TranscodeOutcome {
    /// The asset.
    pub hash: AssetHash,
    /// The store key of the AVC MP4.
    pub key: String,
    /// What was done; `None` when the MP4 already existed (skipped) or the
    /// transcode failed for good before.
    pub result: Option<Transcoded>,
    /// Set when the asset's transcode failed for good before (a recorded
    /// failure): the job did nothing.
    pub failed_before: Option<FailureRecord>,
}

impl TranscodeOutcome {
    /// Whether the job found the MP4 already stored and did nothing.
    pub fn skipped(&self) -> bool {
        self.result.is_none()
    }
}

impl From<VideoError> for WorkError {
    fn from(e: VideoError) -> Self {
        if e.is_permanent() {
            WorkError::Permanent(e.to_string())
        } else {
            WorkError::Transient(e.to_string())
        }
    }
}

async fn video_exists(ctx: &JobContext<'_>, key: &str) -> Result<bool, WorkError> {
    Ok(ctx
        .store_retry("check video", || ctx.store.head(key))
        .await?
        .is_some())
}

/// Runs one transcode job to the end: the AVC MP4 stored and the manifest
/// written. With a queue in the context, progress events
/// (`progress.<hash>`) are published every 10 % for sources of 10 s and more
/// ([`crate::video::publishes_progress`]).
pub async fn transcode_job(
    ctx: &JobContext<'_>,
    job: &TranscodeJob,
) -> Result<TranscodeOutcome, WorkError> {
    let opts = ctx.opts;
    let deadline = Instant::now() + opts.video.timeout;
    if job.format != AVC {
        return Err(WorkError::Permanent(format!(
            "unknown video format {:?} (only \"{AVC}\")",
            job.format
        )));
    }
    check_bucket(ctx, &job.source)?;
    if let (Some(hash), false) = (job.hash, job.force) {
        let key = opts.layout.video(&hash);
        if let Some(record) = read_manifest(ctx, &hash)
            .await?
            .and_then(|m| m.failures.get(AVC).cloned())
        {
            return Ok(TranscodeOutcome {
                hash,
                key,
                result: None,
                failed_before: Some(record),
            });
        }
        if video_exists(ctx, &key).await? {
            return Ok(TranscodeOutcome {
                hash,
                key,
                result: None,
                failed_before: None,
            });
        }
    }

    let original = fetch_original(ctx, &job.source, opts.video.max_input_bytes).await?;
    let hash = match job.hash {
        Some(h) => h,
        None => {
            let h = hash_file(&original.path).await?;
            let key = opts.layout.video(&h);
            if !job.force && video_exists(ctx, &key).await? {
                return Ok(TranscodeOutcome {
                    hash: h,
                    key,
                    result: None,
                    failed_before: None,
                });
            }
            h
        }
    };

    // Transcode off the async runtime (in a decoder child when isolated);
    // forward progress as events. A motion photo's MP4 is cut out of the
    // still first.
    let output = original.dir.path().join("avc.mp4");
    let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
    let video_opts = opts.video.clone();
    let (input, out_path) = (original.path.clone(), output.clone());
    let work_dir = original.dir.path().to_path_buf();
    let isolation = opts.isolation.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let mut progress = |p: u8| {
            let _ = tx.send(p);
        };
        let (source, dir, opts) = (&input, &work_dir, &video_opts);
        match &isolation {
            Some(children) => {
                children.transcode_original(source, dir, &out_path, opts, deadline, &mut progress)
            }
            None => work::transcode_original(source, dir, &out_path, opts, deadline, &mut progress),
        }
    });
    let joined = loop {
        tokio::select! {
            joined = &mut task => break joined,
            Some(percent) = rx.recv() => {
                if let Some(q) = ctx.queue {
                    let event = Event::Progress { v: V1, hash, percent };
                    if let Err(e) = publish_json(q, Exchange::Events, &event.routing_key(), &event).await {
                        warn!(%hash, error = %e, "progress event not published");
                    }
                }
            }
        }
    };
    let result = joined.map_err(|e| WorkError::Permanent(format!("transcoder crashed: {e}")))??;
    record(&result, &hash);

    // Whole object: the finished file goes up in one put.
    let key = opts.layout.video(&hash);
    ctx.store_retry("store video", || {
        ctx.store.put_file(&key, &output, "video/mp4")
    })
    .await?;
    ctx.metrics.bytes_out.inc_by(result.bytes);

    let facts = OriginalFacts {
        source: &job.source,
        media_type: result
            .still
            .as_ref()
            .map_or(&result.source.media_type, |s| &s.media_type),
        bytes: original.bytes,
    };
    merge_manifest(ctx, hash, facts, |m| {
        match &result.still {
            // A still keeps its own dimensions, media type and HDR facts.
            Some(s) => m.video = Some(s.video.clone()),
            None => {
                m.width = result.source.width;
                m.height = result.source.height;
                if let Some(hdr) = &result.source.hdr {
                    m.hdr = Some(hdr.clone());
                }
            }
        }
        m.duration_ms = Some((result.source.duration * 1000.0).round() as u64);
        m.failures.remove(AVC);
        m.outputs.insert(
            AVC.to_string(),
            OutputInfo {
                key: key.clone(),
                width: result.width,
                height: result.height,
                bytes: result.bytes,
            },
        );
    })
    .await?;

    Ok(TranscodeOutcome {
        hash,
        key,
        result: Some(result),
        failed_before: None,
    })
}

/// Metrics and the log line of a finished transcode.
fn record(result: &Transcoded, hash: &AssetHash) {
    let metrics = VideoMetrics::get();
    let path_label = result.path.as_str();
    metrics
        .duration
        .with_label_values(&[path_label])
        .observe(result.wall_seconds);
    metrics
        .speed
        .with_label_values(&[path_label])
        .observe(result.speed());
    info!(
        %hash,
        path = path_label,
        reason = result.transcode_reason.as_deref().unwrap_or(""),
        encoder = result.encoder.as_deref().unwrap_or(""),
        width = result.width,
        height = result.height,
        bytes = result.bytes,
        seconds = format!("{:.2}", result.wall_seconds),
        speed = format!("{:.1}", result.speed()),
        "video ready"
    );
}
