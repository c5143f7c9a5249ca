//! What every job reads and writes: the worker's options, the store, the
//! queue for progress events, the metrics; and the store retry they share.

use crate::metrics::WorkerMetrics;
use crate::options::WorkerOptions;
use std::future::Future;
use std::time::Duration;
use thumbfarm_shared::queue::Queue;
use thumbfarm_shared::retry::{with_backoff, Backoff};
use thumbfarm_shared::store::{Store, StoreError};

/// The environment of one job.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    /// The worker's options.
    pub opts: &'a WorkerOptions,
    /// Where originals are read and outputs written.
    pub store: &'a dyn Store,
    /// Where progress events go and render claims are taken (`None`:
    /// neither, for tools and tests).
    pub queue: Option<&'a dyn Queue>,
    /// The process-wide metrics.
    pub metrics: &'static WorkerMetrics,
}

impl<'a> JobContext<'a> {
    /// A context without progress events (tests, tools).
    pub fn new(opts: &'a WorkerOptions, store: &'a dyn Store) -> Self {
        JobContext {
            opts,
            store,
            queue: None,
            metrics: WorkerMetrics::get(),
        }
    }

    /// Retries a store call while the store is unavailable, with backoff,
    /// for up to `--transient-retry-seconds`.
    pub async fn store_retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let backoff = Backoff {
            budget: self.opts.transient_retry,
            first: Duration::from_millis(200),
            max: Duration::from_secs(5),
        };
        with_backoff(backoff, what, op).await
    }
}
