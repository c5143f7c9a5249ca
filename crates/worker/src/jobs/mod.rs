//! The jobs a worker runs, side by side: [`render_job`] (thumbnails, or a
//! video's poster frame) and [`transcode_job`] (the AVC MP4). Both fetch the
//! original the same way ([`original`]), merge into the manifest the same
//! way ([`manifest`]) and fail the same way ([`WorkError`]: permanent or
//! transient). Settling the delivery is not their business (`settle.rs`).
//! The render job also pairs Apple Live Photos ([`live_photo`]), and renders
//! of one asset run one at a time across the cluster ([`asset_claim`]).

mod asset_claim;
mod context;
mod live_photo;
mod manifest;
mod original;
mod render;
mod transcode;

pub use context::JobContext;
pub use manifest::record_failure;
pub use render::{render_job, RenderOutcome};
pub use transcode::{transcode_job, TranscodeOutcome};

use thumbfarm_shared::manifest::FailureRecord;
use thumbfarm_shared::messages::{Event, Job, V1};
use thumbfarm_shared::retry::WorkError;

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct Done {
    /// The event to publish before the delivery is acked.
    pub event: Event,
    /// The outcome label of the job metrics (`rendered`, `transcoded`,
    /// `skipped`, `suppressed`: a recorded failure, nothing done).
    pub outcome: &'static str,
    /// A short summary for the log.
    pub summary: String,
}

/// Runs a job of any kind to the end.
pub async fn run(ctx: &JobContext<'_>, job: &Job) -> Result<Done, WorkError> {
    match job {
        Job::Render(job) => {
            let done = render_job(ctx, job).await?;
            if let Some(record) = done.failed_before {
                return Ok(suppressed(done.hash, record));
            }
            Ok(Done {
                outcome: if done.written.is_empty() {
                    "skipped"
                } else {
                    "rendered"
                },
                summary: format!(
                    "{} written, {} stored",
                    done.written.len(),
                    done.stored.len()
                ),
                event: Event::Rendered {
                    v: V1,
                    hash: done.hash,
                    sizes: done.stored,
                    thumbhash: done.thumbhash,
                },
            })
        }
        Job::Transcode(job) => {
            let done = transcode_job(ctx, job).await?;
            if let Some(record) = done.failed_before {
                return Ok(suppressed(done.hash, record));
            }
            Ok(Done {
                outcome: if done.skipped() {
                    "skipped"
                } else {
                    "transcoded"
                },
                summary: match &done.result {
                    None => "already stored".to_string(),
                    Some(r) => format!("{} ({} bytes)", r.path.as_str(), r.bytes),
                },
                event: Event::Transcoded {
                    v: V1,
                    hash: done.hash,
                    format: job.format.clone(),
                },
            })
        }
    }
}

/// A job for an output whose failure is recorded: nothing is done, the
/// failure is announced again (so that waiting requests answer at once) and
/// the delivery is acked, not dead-lettered a second time.
fn suppressed(hash: thumbfarm_shared::AssetHash, record: FailureRecord) -> Done {
    Done {
        outcome: "suppressed",
        summary: format!("failed before ({}): {}", record.at, record.reason),
        event: Event::Failed {
            v: V1,
            hash,
            reason: record.reason,
            permanent: true,
        },
    }
}
