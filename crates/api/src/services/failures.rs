//! Clearing an asset's recorded permanent failures and planning its
//! outputs again: what re-ingesting the same bytes and
//! `POST /api/v1/assets/{hash}/retry` do (`backfill --retry-failed` does
//! the same for every asset it walks).

use crate::planning::jobs;
use crate::state::AppState;
use thumbfarm_shared::manifest::{clear_failures, Manifest};
use thumbfarm_shared::queue::QueueError;
use thumbfarm_shared::store::StoreError;

/// What clearing an asset's failures did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// The outputs whose failures were cleared (`image`, `avc`, size names).
    pub cleared: Vec<String>,
    /// How many jobs were published for them.
    pub jobs: usize,
}

/// Why a retry could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// Reading or writing the manifest failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing a job failed (the failures are cleared; the next request
    /// or backfill plans the outputs).
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Clears the recorded failures of `manifest`'s asset and publishes the jobs
/// that try those outputs again (none when nothing had failed).
pub async fn retry_failed(state: &AppState, manifest: &Manifest) -> Result<Retried, RetryError> {
    let key = state.layout().manifest(&manifest.hash);
    let cleared = clear_failures(state.store().as_ref(), &key).await?;
    state.cache().forget_manifest(&manifest.hash);
    state.coordinator().forget_failure(&manifest.hash);
    if cleared.is_empty() {
        return Ok(Retried::default());
    }
    let planned = jobs::retry_jobs(state.pregeneration(), manifest, &cleared);
    for job in &planned {
        job.publish(state.queue().as_ref()).await?;
        state.metrics().job_published(job.routing_key());
    }
    tracing::info!(hash = %manifest.hash, ?cleared, jobs = planned.len(), "cleared recorded failures; trying again");
    Ok(Retried {
        cleared,
        jobs: planned.len(),
    })
}
