//! The transcode job: original from the store, AVC MP4 into the store, the
//! manifest updated. The consumer publishes `transcoded.<hash>` and acks
//! afterwards.
//!
//! The MP4 is written to a private temporary directory and uploaded whole
//! ([`Store::put_file`]), so nothing partial is ever visible under
//! `videos/…/<hash>.avc.mp4`. A worker killed mid-transcode leaves only its
//! temporary directory; the redelivered job starts from scratch.

use super::metrics::VideoMetrics;
use super::{transcode_file, TranscodeResult, VideoError};
use crate::consumer::{hash_file, with_retry, JobError, WorkerOptions};
use bytes::Bytes;
use std::time::Instant;
use thumbfarm_shared::manifest::{Manifest, OutputInfo};
use thumbfarm_shared::messages::{Event, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, Exchange, Queue};
use thumbfarm_shared::store::{self, Store};
use thumbfarm_shared::AssetHash;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The only transcode format.
pub const FORMAT_AVC: &str = "avc";

/// Sources shorter than this publish no progress events.
const PROGRESS_MIN_SECONDS: f64 = 10.0;

/// What a finished transcode job did.
#[derive(Debug, Clone)]
pub struct TranscodeOutcome {
    /// The asset.
    pub hash: AssetHash,
    /// The store key of the AVC MP4.
    pub key: String,
    /// What was done; `None` when the MP4 already existed (skipped).
    pub result: Option<TranscodeResult>,
}

impl TranscodeOutcome {
    /// Whether the job found the MP4 already stored and did nothing.
    pub fn skipped(&self) -> bool {
        self.result.is_none()
    }
}

impl From<VideoError> for JobError {
    fn from(e: VideoError) -> Self {
        if e.is_permanent() {
            JobError::Permanent(e.to_string())
        } else {
            JobError::Transient(e.to_string())
        }
    }
}

async fn video_exists(
    opts: &WorkerOptions,
    store: &dyn Store,
    key: &str,
) -> Result<bool, JobError> {
    Ok(
        with_retry(opts.transient_retry, "check video", || store.head(key))
            .await?
            .is_some(),
    )
}

/// Runs one transcode job to the end: the AVC MP4 stored and the manifest
/// written. With `queue`, progress events (`progress.<hash>`) are published
/// every 10 % for sources of 10 s and more ([`publishes_progress`]).
pub async fn transcode_job(
    opts: &WorkerOptions,
    store: &dyn Store,
    queue: Option<&dyn Queue>,
    job: &TranscodeJob,
) -> Result<TranscodeOutcome, JobError> {
    let deadline = Instant::now() + opts.video.timeout;
    let layout = opts.layout;
    let budget = opts.transient_retry;
    if job.format != FORMAT_AVC {
        return Err(JobError::Permanent(format!(
            "unknown video format {:?} (only \"avc\")",
            job.format
        )));
    }
    if let Some(bucket) = &job.source.bucket {
        let ours = store.describe();
        if ours != format!("s3://{bucket}") {
            return Err(JobError::Permanent(format!(
                "original is in bucket {bucket:?}, which this worker's store ({ours}) does not reach"
            )));
        }
    }
    if let (Some(hash), false) = (job.hash, job.force) {
        let key = layout.video(&hash);
        if video_exists(opts, store, &key).await? {
            return Ok(TranscodeOutcome {
                hash,
                key,
                result: None,
            });
        }
    }

    let source_key = job.source.key.clone();
    let meta = with_retry(budget, "head original", || store.head(&source_key))
        .await?
        .ok_or_else(|| JobError::Permanent(format!("original missing: {source_key}")))?;
    if meta.size > opts.video.max_input_bytes {
        return Err(JobError::Permanent(format!(
            "over the limits: original is {} bytes, over the {} byte limit",
            meta.size, opts.video.max_input_bytes
        )));
    }
    let dir = tempfile::tempdir().map_err(|e| JobError::Transient(format!("temp dir: {e}")))?;
    let local = dir.path().join("original");
    let bytes_in = with_retry(budget, "download original", || {
        store.download(&source_key, &local)
    })
    .await?;
    crate::metrics::WorkerMetrics::get()
        .bytes_in
        .inc_by(bytes_in);

    let hash = match job.hash {
        Some(h) => h,
        None => {
            let h = hash_file(&local).await?;
            let key = layout.video(&h);
            if !job.force && video_exists(opts, store, &key).await? {
                return Ok(TranscodeOutcome {
                    hash: h,
                    key,
                    result: None,
                });
            }
            h
        }
    };

    // Transcode off the async runtime; forward progress as events.
    let output = dir.path().join("avc.mp4");
    let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
    let video_opts = opts.video.clone();
    let (input, out_path) = (local.clone(), output.clone());
    let mut task = tokio::task::spawn_blocking(move || {
        let mut progress = |p: u8| {
            let _ = tx.send(p);
        };
        transcode_file(&input, &out_path, &video_opts, deadline, &mut progress)
    });
    let joined = loop {
        tokio::select! {
            joined = &mut task => break joined,
            Some(percent) = rx.recv() => {
                if let Some(q) = queue {
                    let event = Event::Progress { v: V1, hash, percent };
                    if let Err(e) = publish_json(q, Exchange::Events, &event.routing_key(), &event).await {
                        warn!(%hash, error = %e, "progress event not published");
                    }
                }
            }
        }
    };
    let result = joined.map_err(|e| JobError::Permanent(format!("transcoder crashed: {e}")))??;
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

    // Whole object: the finished file goes up in one put.
    let key = layout.video(&hash);
    with_retry(budget, "store video", || {
        store.put_file(&key, &output, "video/mp4")
    })
    .await?;
    crate::metrics::WorkerMetrics::get()
        .bytes_out
        .inc_by(result.bytes);

    // The manifest: created when missing, the transcode merged in.
    let manifest_key = layout.manifest(&hash);
    let manifest = with_retry(budget, "read manifest", || {
        store::get_json::<Manifest>(store, &manifest_key)
    })
    .await?;
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut m = manifest.unwrap_or_else(|| Manifest {
        v: V1,
        hash,
        original: job.source.clone(),
        media_type: result.source.media_type.to_string(),
        bytes: bytes_in,
        width: 0,
        height: 0,
        duration_ms: None,
        outputs: Default::default(),
        created_at: now.clone(),
        updated_at: now.clone(),
    });
    if m.media_type.is_empty() || m.media_type == "application/octet-stream" {
        m.media_type = result.source.media_type.to_string();
    }
    if m.bytes == 0 {
        m.bytes = bytes_in;
    }
    m.width = result.source.width;
    m.height = result.source.height;
    m.duration_ms = Some((result.source.duration * 1000.0).round() as u64);
    m.outputs.insert(
        FORMAT_AVC.to_string(),
        OutputInfo {
            key: key.clone(),
            width: result.width,
            height: result.height,
            bytes: result.bytes,
        },
    );
    m.updated_at = now;
    let body = Bytes::from(m.to_json());
    with_retry(budget, "store manifest", || {
        store.put(&manifest_key, body.clone(), "application/json")
    })
    .await?;

    Ok(TranscodeOutcome {
        hash,
        key,
        result: Some(result),
    })
}

/// Whether a source of `duration` seconds gets progress events.
pub fn publishes_progress(duration: f64) -> bool {
    duration >= PROGRESS_MIN_SECONDS
}
