//! The ingest planner, a background process: consumes `thumbfarm.ingest`
//! and turns "a new original is in a bucket" events into pre-generation
//! jobs (built in [`crate::planning::jobs`]).
//!
//! For each original an event names ([`ingest_events`](super::ingest_events)):
//! - **hash known** (given in the event, or the key is thumbfarm's own
//!   `originals/…/<sha1>.<ext>`): a manifest that exists makes the event a
//!   duplicate (nothing is enqueued). Otherwise a manifest is written
//!   (dimensions 0 until the worker knows them) and the jobs published:
//!   `render.bulk` with the pre-generated sizes, and for a video also an AVC
//!   `transcode` (the render job then renders the poster frame).
//! - **hash unknown**: the render job goes out with `hash: None`; the worker
//!   computes the SHA-1 while it reads the original (no second download) and
//!   writes the manifest. Bursts of duplicate events for the same object are
//!   folded by a bounded in-memory set of recently planned objects, keyed by
//!   bucket, key and eTag (or size), per planner process.
//!
//! Originals in another bucket than the store's keep that bucket in
//! `SourceRef::bucket`; the worker decides whether it reaches it (a worker
//! whose store is another bucket dead-letters the job with a reason naming
//! the bucket). Notifications about thumbfarm's own objects are ignored, so
//! a bucket that notifies on every write does not loop.
//!
//! A malformed event (bad JSON, wrong version, missing or unsafe key) is
//! dead-lettered with the reason and the planner goes on; a transient store
//! or broker error is retried in place with backoff, then the event goes back
//! to the queue.

use super::ingest_events::{items_of, IngestItem};
use crate::metrics::Metrics;
use crate::planning::jobs::{self, PlannedJob};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thumbfarm_shared::keys::KeyLayout;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::IngestEvent;
use thumbfarm_shared::queue::{Delivery, Queue, QueueError, QueueName};
use thumbfarm_shared::retry::{with_backoff, Backoff, WorkError};
use thumbfarm_shared::store::{self, Store, StoreError};
use tokio_util::sync::CancellationToken;

/// What the planner does.
#[derive(Debug, Clone)]
pub struct PlannerOptions {
    /// The store's key layout.
    pub layout: KeyLayout,
    /// What is pre-generated (sizes under the static limit, in the
    /// pre-generated formats).
    pub pregen: jobs::Pregeneration,
    /// Unsettled ingest events at once.
    pub prefetch: u16,
    /// Capacity of the recently-planned set (0: no folding).
    pub dedupe_capacity: usize,
    /// How long an object stays in the recently-planned set.
    pub dedupe_window: Duration,
    /// How long a transient error is retried in place.
    pub retry_budget: Duration,
}

/// Default size of the recently-planned set.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 100_000;

impl Default for PlannerOptions {
    fn default() -> Self {
        PlannerOptions {
            layout: KeyLayout::default(),
            pregen: jobs::Pregeneration::default(),
            prefetch: 32,
            dedupe_capacity: DEFAULT_DEDUPE_CAPACITY,
            dedupe_window: Duration::from_secs(3600),
            retry_budget: Duration::from_secs(60),
        }
    }
}

/// The outcome of one original named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Jobs were published (their routing keys).
    Planned(Vec<&'static str>),
    /// Already known or planned recently: nothing published.
    Duplicate,
    /// Not work (another S3 event name, or one of thumbfarm's own outputs).
    Ignored(String),
}

impl ItemOutcome {
    fn label(&self) -> &'static str {
        match self {
            ItemOutcome::Planned(_) => "planned",
            ItemOutcome::Duplicate => "duplicate",
            ItemOutcome::Ignored(_) => "ignored",
        }
    }
}

/// A bounded, time-limited set of recently planned objects (FIFO eviction).
#[derive(Debug)]
struct RecentSet {
    capacity: usize,
    window: Duration,
    seen: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
}

impl RecentSet {
    fn new(capacity: usize, window: Duration) -> Self {
        RecentSet {
            capacity,
            window,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.seen
            .get(key)
            .is_some_and(|at| at.elapsed() < self.window)
    }

    fn insert(&mut self, key: String) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        while self.order.len() >= self.capacity
            || self
                .order
                .front()
                .is_some_and(|(_, at)| at.elapsed() >= self.window)
        {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            // Only forget it when this entry is its latest insertion.
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((key, now));
    }

    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// What one event led to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSummary {
    /// Per original named by the event.
    pub items: Vec<ItemOutcome>,
}

impl EventSummary {
    /// Jobs published for the event.
    pub fn jobs(&self) -> usize {
        self.items
            .iter()
            .map(|i| match i {
                ItemOutcome::Planned(keys) => keys.len(),
                _ => 0,
            })
            .sum()
    }
}

/// The ingest planner of one process.
pub struct IngestPlanner {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    opts: PlannerOptions,
    own_bucket: Option<String>,
    recent: Mutex<RecentSet>,
}

impl std::fmt::Debug for IngestPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestPlanner")
            .field("store", &self.store.describe())
            .field("queue", &self.queue.describe())
            .field("opts", &self.opts)
            .finish()
    }
}

impl IngestPlanner {
    /// A planner over `store` and `queue`, counting into `metrics`.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        metrics: Arc<Metrics>,
        opts: PlannerOptions,
    ) -> Self {
        let own_bucket = store
            .describe()
            .strip_prefix("s3://")
            .map(|b| b.trim_end_matches('/').to_string());
        let recent = Mutex::new(RecentSet::new(opts.dedupe_capacity, opts.dedupe_window));
        IngestPlanner {
            store,
            queue,
            metrics,
            opts,
            own_bucket,
            recent,
        }
    }

    /// Objects in the recently-planned set now.
    pub fn recently_planned(&self) -> usize {
        self.lock_recent().len()
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, RecentSet> {
        // Every operation leaves the set consistent; ignore poisoning.
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one event body: publishes the jobs of every original it names
    /// (transient errors are retried in place up to the retry budget).
    pub async fn handle(&self, body: &[u8]) -> Result<EventSummary, WorkError> {
        let event = IngestEvent::parse(body).map_err(|e| WorkError::Permanent(e.to_string()))?;
        let items = items_of(&event, self.own_bucket.as_deref()).map_err(WorkError::Permanent)?;
        let mut summary = EventSummary::default();
        for it in items {
            let outcome = match it {
                Err(why) => ItemOutcome::Ignored(why),
                Ok(item) => {
                    let outcome = self.plan_with_retry(&item).await?;
                    self.metrics.planner_event(item.kind, outcome.label());
                    summary.items.push(outcome);
                    continue;
                }
            };
            self.metrics.planner_event("s3", outcome.label());
            summary.items.push(outcome);
        }
        Ok(summary)
    }

    async fn plan_with_retry(&self, item: &IngestItem) -> Result<ItemOutcome, WorkError> {
        with_backoff(
            Backoff::within(self.opts.retry_budget),
            "planner: plan an original",
            || self.plan(item),
        )
        .await
    }

    async fn plan(&self, item: &IngestItem) -> Result<ItemOutcome, WorkError> {
        let dedupe = item.dedupe_key();
        if self.lock_recent().contains(&dedupe) {
            return Ok(ItemOutcome::Duplicate);
        }
        let jobs = jobs::pregeneration_jobs(&self.opts.pregen, item.original());
        match item.hash {
            Some(hash) => {
                let key = self.opts.layout.manifest(&hash);
                if store::get_json::<Manifest>(self.store.as_ref(), &key)
                    .await?
                    .is_some()
                {
                    self.lock_recent().insert(dedupe);
                    return Ok(ItemOutcome::Duplicate);
                }
                // The manifest goes first so that the worker merges into it
                // (never the other way round); when publishing fails it is
                // removed again, so the retried event is not taken for a
                // duplicate.
                let manifest = Manifest::new(
                    hash,
                    item.source.clone(),
                    item.media_type.clone(),
                    item.size.unwrap_or(0),
                );
                // Only if still missing: a worker may have made it meanwhile.
                match self
                    .store
                    .put_if(&key, manifest.to_json().into(), "application/json", None)
                    .await
                {
                    Ok(_) => {}
                    Err(StoreError::Conflict(_)) => {
                        self.lock_recent().insert(dedupe);
                        return Ok(ItemOutcome::Duplicate);
                    }
                    Err(e) => return Err(e.into()),
                }
                if let Err(e) = self.publish(&jobs).await {
                    if let Err(del) = self.store.delete(&key).await {
                        tracing::warn!(%hash, error = %del, "planner: could not remove the manifest of an unpublished job; backfill will find it");
                    }
                    return Err(e);
                }
            }
            None => self.publish(&jobs).await?,
        }
        self.lock_recent().insert(dedupe);
        tracing::debug!(key = %item.source.key, hash = ?item.hash, jobs = jobs.len(), "planned");
        Ok(ItemOutcome::Planned(
            jobs.iter().map(PlannedJob::routing_key).collect(),
        ))
    }

    async fn publish(&self, jobs: &[PlannedJob]) -> Result<(), WorkError> {
        for job in jobs {
            job.publish(self.queue.as_ref()).await?;
            self.metrics.job_published(job.routing_key());
        }
        Ok(())
    }

    /// Handles and settles one delivery.
    pub async fn settle(&self, delivery: Delivery) {
        match self.handle(&delivery.body).await {
            Ok(summary) => {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "planner: ack failed; the event will be redelivered");
                }
                tracing::debug!(jobs = summary.jobs(), "planner: event handled");
            }
            Err(WorkError::Permanent(reason)) => {
                tracing::warn!(%reason, routing_key = %delivery.routing_key, "planner: dead-lettering malformed ingest event");
                self.metrics.planner_event("malformed", "dead_lettered");
                if let Err(e) = delivery.dead_letter(&reason).await {
                    tracing::warn!(error = %e, "planner: dead-lettering failed");
                }
            }
            Err(WorkError::Transient(reason)) => {
                tracing::warn!(%reason, "planner: backend unavailable; the event goes back to the queue");
                self.metrics.planner_event("any", "retried");
                if let Err(e) = delivery.retry().await {
                    tracing::warn!(error = %e, "planner: requeue failed");
                }
            }
            Err(WorkError::Config(reason)) => {
                // No event can succeed until an operator fixes the store's
                // configuration: pause before giving it back.
                tracing::error!(%reason, "planner: the store refuses this configuration; the event goes back to the queue");
                self.metrics.planner_event("any", "retried");
                tokio::time::sleep(Duration::from_secs(10)).await;
                if let Err(e) = delivery.retry().await {
                    tracing::warn!(error = %e, "planner: requeue failed");
                }
            }
        }
    }

    /// Consumes `thumbfarm.ingest` until `shutdown` is cancelled. Events are
    /// handled one at a time, in order, so that duplicates in a burst are
    /// seen as such.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), QueueError> {
        let mut consumer = self
            .queue
            .consume(QueueName::Ingest, self.opts.prefetch)
            .await?;
        tracing::info!(
            store = %self.store.describe(),
            queue = %self.queue.describe(),
            static_limit = self.opts.pregen.limits.static_limit(),
            "planner consuming thumbfarm.ingest"
        );
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = consumer.next() => d,
            };
            let Some(delivery) = delivery else {
                tracing::warn!("planner: ingest consumer ended");
                return Err(QueueError::Closed);
            };
            self.settle(delivery).await;
        }
        tracing::info!("planner stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_set_is_bounded() {
        let mut s = RecentSet::new(3, Duration::from_secs(60));
        for k in ["a", "b", "c", "d"] {
            s.insert(k.into());
        }
        assert!(!s.contains("a"));
        assert!(s.contains("d"));
        assert_eq!(s.len(), 3);
        s.insert("d".into());
        assert!(s.contains("d") && s.len() <= 3);
        let mut s = RecentSet::new(10, Duration::ZERO);
        s.insert("a".into());
        assert!(!s.contains("a"));
    }
}
