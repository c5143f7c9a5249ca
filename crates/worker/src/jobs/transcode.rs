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
use crate::video::{self, metrics::VideoMetrics, motion_photo, TranscodeResult, VideoError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;
use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::{
    sniff_media_type, FailureRecord, OutputInfo, StillVideo, VideoKind,
};
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
    pub result: Option<TranscodeResult>,
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
/// ([`video::publishes_progress`]).
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

    // Transcode off the async runtime; forward progress as events. A
    // motion photo's MP4 is cut out of the still first.
    let output = original.dir.path().join("avc.mp4");
    let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
    let video_opts = opts.video.clone();
    let (input, out_path) = (original.path.clone(), output.clone());
    let work_dir = original.dir.path().to_path_buf();
    let mut task = tokio::task::spawn_blocking(move || {
        let mut progress = |p: u8| {
            let _ = tx.send(p);
        };
        let (source, still) = video_source(&input, &work_dir)?;
        let result =
            video::transcode_file(&source, &out_path, &video_opts, deadline, &mut progress)?;
        Ok::<_, VideoError>((result, still))
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
    let (result, still) =
        joined.map_err(|e| WorkError::Permanent(format!("transcoder crashed: {e}")))??;
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
        media_type: still
            .as_ref()
            .map_or(result.source.media_type, |s| s.media_type),
        bytes: original.bytes,
    };
    merge_manifest(ctx, hash, facts, |m| {
        match &still {
            // A still keeps its own dimensions, media type and HDR facts.
            Some(s) => m.video = Some(s.video.clone()),
            None => {
                m.width = result.source.width;
                m.height = result.source.height;
                if let Some(hdr) = &result.source.hdr {
                    m.hdr = Some(hdr.to_manifest());
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

/// The video of a still, when the original is one.
struct StillSource {
    /// The still's media type.
    media_type: &'static str,
    /// What the manifest records.
    video: StillVideo,
}

/// The file to transcode: the original itself (a video, an animated GIF,
/// APNG or WebP), or the MP4 cut out of a motion photo. A JPEG/HEIC without
/// a video, like a still PNG/WebP, fails for good.
fn video_source(
    original: &Path,
    work_dir: &Path,
) -> Result<(PathBuf, Option<StillSource>), VideoError> {
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(original)?
        .take(64)
        .read_to_end(&mut head)?;
    let media_type = sniff_media_type(&head).unwrap_or("");
    if matches!(media_type, "image/gif" | "image/png" | "image/webp") {
        // An animation: FFmpeg (GIF, APNG) or the WebP frame encoder reads it.
        let video = StillVideo::new(VideoKind::Animation);
        return Ok((
            original.to_path_buf(),
            Some(StillSource { media_type, video }),
        ));
    }
    if !motion_photo::may_be_motion_photo(media_type) {
        return Ok((original.to_path_buf(), None));
    }
    match motion_photo::extract_motion_video(original, work_dir)? {
        Some((path, found)) => {
            let mut video = StillVideo::new(VideoKind::MotionPhoto);
            video.offset = Some(found.offset);
            video.length = Some(found.length);
            Ok((path, Some(StillSource { media_type, video })))
        }
        None => Err(VideoError::NotVideo(format!(
            "a still ({media_type}) without an embedded video"
        ))),
    }
}

/// Metrics and the log line of a finished transcode.
fn record(result: &TranscodeResult, hash: &AssetHash) {
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
