//! The on-demand coordinator: one render job and one wait per asset and
//! replica, however many requests miss at once.
//!
//! A request that misses calls [`Coordinator::request`], which either joins
//! the job already in flight for the asset or registers a new one (the
//! waiters' channel exists *before* the job is published, so its event cannot
//! be missed) and publishes it on `render.ondemand`. One pair of background
//! subscriptions per replica (`rendered.*` and `failed.*` on
//! `thumbfarm.events`) fans the events out to the waiters. Since an event may
//! come from another job (a bulk job, another replica's job), a woken waiter
//! must check the store again before it serves.

use crate::metrics::Metrics;
use crate::planning::jobs;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::Event;
use thumbfarm_shared::queue::{Claim, EventStream, Queue, QueueError};
use thumbfarm_shared::renditions::Rendition;
use thumbfarm_shared::AssetHash;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the waiters of an asset were last told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Nothing yet.
    Pending,
    /// Some renditions of the asset were stored (by any job).
    Rendered(Vec<Rendition>),
    /// A job of the asset failed for good.
    Failed {
        /// The worker's reason.
        reason: String,
        /// Whether retrying cannot help (undecodable, over the limits).
        permanent: bool,
    },
}

/// The job in flight for one asset.
struct Inflight {
    id: u64,
    tx: watch::Sender<Signal>,
    /// The cluster-wide claims of the renditions this replica published
    /// jobs for: released when the entry goes (its event came).
    claims: Vec<Claim>,
    /// The renditions requested from the worker so far.
    sizes: Vec<Rendition>,
    /// Whether `sizes` were resolved for the original (its dimensions were known).
    resolved: bool,
    /// When the last job for it was published.
    published: Instant,
}

/// Shared between the coordinator and its listener tasks.
#[derive(Default)]
struct Shared {
    inflight: Mutex<HashMap<AssetHash, Inflight>>,
    /// Transcodes in flight, by asset (the format is always `avc`).
    transcodes: Mutex<HashMap<AssetHash, TranscodeInflight>>,
    /// Renders that just failed for good, by asset: a request that read the
    /// manifest before the worker recorded the failure must not publish the
    /// job again (see [`FAILURE_MEMORY`]).
    failed: Mutex<HashMap<AssetHash, (String, Instant)>>,
}

/// How long a permanent render failure answers requests from memory: long
/// enough to cover a request that read the manifest just before the worker
/// recorded the failure in it; later requests find it in the manifest.
const FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// The transcode in flight for one asset.
struct TranscodeInflight {
    tx: watch::Sender<Signal>,
    /// When the job was last published.
    published: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<AssetHash, Inflight>> {
        // A panic while holding the lock leaves the map consistent (every
        // operation is a single insert/remove), so poisoning is ignored.
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn transcodes(&self) -> MutexGuard<'_, HashMap<AssetHash, TranscodeInflight>> {
        self.transcodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self) -> MutexGuard<'_, HashMap<AssetHash, (String, Instant)>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reason of a permanent render failure of `hash` seen within
    /// [`FAILURE_MEMORY`].
    fn recent_failure(&self, hash: &AssetHash) -> Option<String> {
        let mut failed = self.failed();
        failed.retain(|_, (_, at)| at.elapsed() < FAILURE_MEMORY);
        failed.get(hash).map(|(reason, _)| reason.clone())
    }

    /// Fans one event out to the waiters of its asset.
    fn dispatch(&self, event: Event) {
        match &event {
            Event::Transcoded { hash, .. } => {
                if let Some(entry) = self.transcodes().remove(hash) {
                    entry.tx.send_replace(Signal::Rendered(Vec::new()));
                }
                return;
            }
            Event::Failed {
                hash,
                reason,
                permanent,
                ..
            } => {
                if let Some(entry) = self.transcodes().remove(hash) {
                    entry.tx.send_replace(Signal::Failed {
                        reason: reason.clone(),
                        permanent: *permanent,
                    });
                }
            }
            _ => {}
        }
        let mut map = self.lock();
        match event {
            Event::Rendered { hash, sizes, .. } => {
                let covered = match map.get(&hash) {
                    None => return,
                    Some(entry) => !entry.resolved || entry.sizes.iter().all(|s| sizes.contains(s)),
                };
                tracing::debug!(%hash, ?sizes, covered, "rendered event");
                if covered {
                    if let Some(entry) = map.remove(&hash) {
                        entry.tx.send_replace(Signal::Rendered(sizes));
                    }
                } else if let Some(entry) = map.get(&hash) {
                    entry.tx.send_replace(Signal::Rendered(sizes));
                }
            }
            Event::Failed {
                hash,
                reason,
                permanent,
                ..
            } => {
                if let Some(entry) = map.remove(&hash) {
                    tracing::debug!(%hash, %reason, permanent, "failed event");
                    if permanent {
                        self.failed().insert(hash, (reason.clone(), Instant::now()));
                    }
                    entry.tx.send_replace(Signal::Failed { reason, permanent });
                }
            }
            Event::Transcoded { .. } | Event::Progress { .. } => {}
        }
    }
}

/// A place in the wait for an asset's job.
#[derive(Debug)]
pub struct Ticket {
    rx: watch::Receiver<Signal>,
    /// Whether this request published a job.
    pub published: bool,
}

impl Ticket {
    /// Waits for the next signal about the asset. A closed channel (the
    /// entry was dropped without a word) reads as `Rendered(vec![])`: check
    /// the store again.
    pub async fn next(&mut self) -> Signal {
        match self.rx.changed().await {
            Ok(()) => self.rx.borrow_and_update().clone(),
            Err(_) => Signal::Rendered(Vec::new()),
        }
    }

    /// Whether no more signals can come (the job's entry is gone).
    pub fn is_closed(&self) -> bool {
        self.rx.has_changed().is_err()
    }
}

/// The event subscriptions of a replica.
struct Listeners {
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    fn alive(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }
}

/// The on-demand coordinator of one API replica.
pub struct Coordinator {
    queue: Arc<dyn Queue>,
    pregen: jobs::Pregeneration,
    shared: Arc<Shared>,
    listeners: tokio::sync::Mutex<Option<Listeners>>,
    next_id: std::sync::atomic::AtomicU64,
    /// An entry older than this gets its job published again (the job was
    /// lost, or its event was).
    republish_after: Duration,
    cancel: CancellationToken,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("inflight", &self.shared.lock().len())
            .finish()
    }
}

/// Above this many entries, stale ones are purged when a new one is added.
const PURGE_ABOVE: usize = 1024;

/// What [`Coordinator::claim`] found.
enum ClaimOutcome {
    /// This replica publishes the job.
    Taken(Claim),
    /// Another replica published it.
    HeldElsewhere,
    /// The broker did not answer: publish (a duplicate is skipped by the
    /// worker that finds the outputs stored).
    Unknown,
}

/// The claim name of the on-demand job for `target` of `hash`: the
/// idempotency key of a miss across the cluster.
pub fn claim_name(hash: &AssetHash, target: Rendition) -> String {
    format!("ondemand.{hash}.{}", target.name())
}

/// The binding keys the coordinator subscribes to.
pub const BINDINGS: [&str; 3] = ["rendered.*", "transcoded.*", "failed.*"];

impl Coordinator {
    /// A coordinator publishing on `queue`. A job whose event did not come
    /// within `republish_after` is published again by the next request.
    /// Every published job is counted in `metrics`.
    pub fn new(
        queue: Arc<dyn Queue>,
        pregen: jobs::Pregeneration,
        republish_after: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Coordinator {
            metrics,
            queue,
            pregen,
            shared: Arc::new(Shared::default()),
            listeners: tokio::sync::Mutex::new(None),
            next_id: std::sync::atomic::AtomicU64::new(1),
            republish_after,
            cancel: CancellationToken::new(),
        }
    }

    /// Starts the event subscriptions, unless they are running. Called before
    /// every publish, so that a subscription that ended is made again.
    pub async fn ensure_listening(&self) -> Result<(), QueueError> {
        let mut guard = self.listeners.lock().await;
        if guard.as_ref().is_some_and(Listeners::alive) {
            return Ok(());
        }
        if let Some(old) = guard.take() {
            tracing::warn!("event subscription ended; subscribing again");
            for t in old.tasks {
                t.abort();
            }
        }
        let mut tasks = Vec::new();
        for binding in BINDINGS {
            let stream = match self.queue.subscribe(binding).await {
                Ok(stream) => stream,
                Err(e) => {
                    for t in tasks {
                        JoinHandle::abort(&t);
                    }
                    return Err(e);
                }
            };
            tasks.push(tokio::spawn(listen(
                binding,
                stream,
                Arc::clone(&self.shared),
                self.cancel.clone(),
            )));
        }
        tracing::debug!(bindings = ?BINDINGS, "subscribed to events");
        *guard = Some(Listeners { tasks });
        Ok(())
    }

    /// Joins or starts the render of `target` (resolved for the original when
    /// `manifest` has its dimensions) and returns the ticket to wait on.
    pub async fn request(
        &self,
        manifest: &Manifest,
        target: Rendition,
    ) -> Result<Ticket, QueueError> {
        let hash = manifest.hash;
        if let Some(reason) = self.shared.recent_failure(&hash) {
            let (_tx, mut rx) = watch::channel(Signal::Failed {
                reason,
                permanent: true,
            });
            // Answered at once: the first `next()` returns the failure.
            rx.mark_changed();
            return Ok(Ticket {
                rx,
                published: false,
            });
        }
        // What to publish, decided under the lock; published after it.
        // Claims this replica gives up before publishing again.
        let mut stale = Vec::new();
        let (ticket, job, id) = {
            let mut map = self.shared.lock();
            match map.get_mut(&hash) {
                Some(entry) => {
                    let rx = entry.tx.subscribe();
                    if entry.published.elapsed() > self.republish_after {
                        tracing::info!(%hash, "on-demand job without an event; publishing it again");
                        stale = std::mem::take(&mut entry.claims);
                        let job = jobs::ondemand_job(&self.pregen, manifest, target);
                        entry.published = Instant::now();
                        entry.resolved = manifest.has_dimensions();
                        entry.sizes = job.sizes().to_vec();
                        (
                            Ticket {
                                rx,
                                published: true,
                            },
                            Some(job),
                            entry.id,
                        )
                    } else if !entry.sizes.contains(&target) {
                        // Another size of an asset already being rendered.
                        let job = jobs::extra_size_job(manifest, target);
                        entry.sizes.push(target);
                        (
                            Ticket {
                                rx,
                                published: true,
                            },
                            Some(job),
                            entry.id,
                        )
                    } else {
                        (
                            Ticket {
                                rx,
                                published: false,
                            },
                            None,
                            entry.id,
                        )
                    }
                }
                None => {
                    if map.len() >= PURGE_ABOVE {
                        // Entries whose event never came: drop them (their
                        // waiters, if any, wake up and look again).
                        let horizon = self.republish_after.saturating_mul(4);
                        map.retain(|_, e| e.published.elapsed() < horizon);
                    }
                    let job = jobs::ondemand_job(&self.pregen, manifest, target);
                    let (tx, rx) = watch::channel(Signal::Pending);
                    let id = self
                        .next_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    map.insert(
                        hash,
                        Inflight {
                            id,
                            tx,
                            claims: Vec::new(),
                            sizes: job.sizes().to_vec(),
                            resolved: manifest.has_dimensions(),
                            published: Instant::now(),
                        },
                    );
                    (
                        Ticket {
                            rx,
                            published: true,
                        },
                        Some(job),
                        id,
                    )
                }
            }
        };
        let Some(job) = job else {
            return Ok(ticket);
        };
        for claim in stale {
            claim.release().await;
        }
        // Listening first: the event of the job, whoever publishes it, must
        // find this replica subscribed.
        let result = match self.ensure_listening().await {
            Err(e) => Err(e),
            Ok(()) => match self.claim(&hash, target).await {
                ClaimOutcome::HeldElsewhere => {
                    // Another replica published this job: its event wakes
                    // the waiters here too. If none comes, the next request
                    // after `republish_after` claims again (the lease has
                    // run out by then).
                    tracing::debug!(%hash, %target, "on-demand job published by another replica");
                    return Ok(Ticket {
                        rx: ticket.rx,
                        published: false,
                    });
                }
                ClaimOutcome::Taken(claim) => {
                    job.publish(self.queue.as_ref()).await.map(|()| Some(claim))
                }
                ClaimOutcome::Unknown => job.publish(self.queue.as_ref()).await.map(|()| None),
            },
        };
        match result {
            Ok(claim) => {
                self.metrics.job_published(job.routing_key());
                tracing::debug!(%hash, %target, "published on-demand job");
                if let Some(claim) = claim {
                    if let Some(entry) = self.shared.lock().get_mut(&hash).filter(|e| e.id == id) {
                        entry.claims.push(claim);
                    }
                }
                Ok(ticket)
            }
            Err(e) => {
                tracing::warn!(%hash, error = %e, "publishing on-demand job failed");
                let mut map = self.shared.lock();
                if map.get(&hash).is_some_and(|entry| entry.id == id) {
                    if let Some(entry) = map.remove(&hash) {
                        entry.tx.send_replace(Signal::Failed {
                            reason: "queue unavailable".into(),
                            permanent: false,
                        });
                    }
                }
                Err(e)
            }
        }
    }

    /// Takes the cluster-wide claim on the on-demand job for `target` of
    /// `hash`, held until this replica's entry for the asset goes, or for
    /// `republish_after` at most.
    async fn claim(&self, hash: &AssetHash, target: Rendition) -> ClaimOutcome {
        let name = claim_name(hash, target);
        match self.queue.claim(&name, self.republish_after).await {
            Ok(Some(claim)) => {
                self.metrics.claim("taken");
                ClaimOutcome::Taken(claim)
            }
            Ok(None) => {
                self.metrics.claim("held_elsewhere");
                ClaimOutcome::HeldElsewhere
            }
            Err(e) => {
                // A duplicate job costs a skipped render at worst.
                tracing::warn!(%hash, %target, error = %e, "claiming the on-demand job failed; publishing it anyway");
                self.metrics.claim("error");
                ClaimOutcome::Unknown
            }
        }
    }

    /// Joins or starts the `avc` transcode of the video `manifest` describes
    /// and returns the ticket to wait on (`Rendered` once it is stored).
    pub async fn request_transcode(&self, manifest: &Manifest) -> Result<Ticket, QueueError> {
        let hash = manifest.hash;
        let (ticket, publish) = {
            let mut map = self.shared.transcodes();
            match map.get_mut(&hash) {
                Some(entry) if entry.published.elapsed() <= self.republish_after => (
                    Ticket {
                        rx: entry.tx.subscribe(),
                        published: false,
                    },
                    false,
                ),
                Some(entry) => {
                    tracing::info!(%hash, "transcode without an event; publishing it again");
                    entry.published = Instant::now();
                    (
                        Ticket {
                            rx: entry.tx.subscribe(),
                            published: true,
                        },
                        true,
                    )
                }
                None => {
                    if map.len() >= PURGE_ABOVE {
                        let horizon = self.republish_after.saturating_mul(4);
                        map.retain(|_, e| e.published.elapsed() < horizon);
                    }
                    let (tx, rx) = watch::channel(Signal::Pending);
                    map.insert(
                        hash,
                        TranscodeInflight {
                            tx,
                            published: Instant::now(),
                        },
                    );
                    (
                        Ticket {
                            rx,
                            published: true,
                        },
                        true,
                    )
                }
            }
        };
        if !publish {
            return Ok(ticket);
        }
        let job = jobs::transcode(manifest.into());
        let result = match self.ensure_listening().await {
            Ok(()) => job.publish(self.queue.as_ref()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(%hash, error = %e, "publishing transcode job failed");
            if let Some(entry) = self.shared.transcodes().remove(&hash) {
                entry.tx.send_replace(Signal::Failed {
                    reason: "queue unavailable".into(),
                    permanent: false,
                });
            }
            return Err(e);
        }
        self.metrics.job_published(job.routing_key());
        tracing::debug!(%hash, "published transcode job");
        Ok(ticket)
    }

    /// Forgets a permanent failure of `hash` seen on the event stream (its
    /// record was cleared: the next request renders again).
    pub fn forget_failure(&self, hash: &AssetHash) {
        self.shared.failed().remove(hash);
    }

    /// Assets with a job in flight (for tests and debugging).
    pub fn inflight(&self) -> usize {
        self.shared.lock().len()
    }

    /// Stops the event subscriptions.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One subscription: parses events and hands them to the waiters.
async fn listen(
    binding: &'static str,
    mut stream: Box<dyn EventStream>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = cancel.cancelled() => return,
            m = stream.next() => m,
        };
        let Some(message) = message else {
            tracing::warn!(binding, "event subscription closed");
            return;
        };
        match serde_json::from_slice::<Event>(&message.body) {
            Ok(event) => shared.dispatch(event),
            Err(e) => tracing::debug!(
                routing_key = %message.routing_key,
                error = %e,
                "ignoring malformed event"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::messages::V1;
    use thumbfarm_shared::sizes::Size;

    fn entry(sizes: Vec<Size>, resolved: bool) -> (Inflight, watch::Receiver<Signal>) {
        let (tx, rx) = watch::channel(Signal::Pending);
        (
            Inflight {
                id: 1,
                tx,
                claims: Vec::new(),
                sizes: sizes.into_iter().map(Rendition::from).collect(),
                resolved,
                published: Instant::now(),
            },
            rx,
        )
    }

    #[test]
    fn events_for_part_of_a_resolved_job_keep_it() {
        let shared = Shared::default();
        let hash = AssetHash::of_bytes(b"a");
        let (e, mut rx) = entry(vec![Size::Fit720, Size::Left224], true);
        shared.lock().insert(hash, e);
        shared.dispatch(Event::Rendered {
            v: V1,
            hash,
            sizes: vec![Size::Fit720.into()],
            thumbhash: None,
        });
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            *rx.borrow_and_update(),
            Signal::Rendered(vec![Size::Fit720.into()])
        );
        assert_eq!(shared.lock().len(), 1);
        shared.dispatch(Event::Rendered {
            v: V1,
            hash,
            sizes: vec![Size::Fit720.into(), Size::Left224.into()],
            thumbhash: None,
        });
        assert_eq!(shared.lock().len(), 0);
    }

    #[test]
    fn unresolved_jobs_end_with_any_event_and_failures_end_all() {
        let shared = Shared::default();
        let hash = AssetHash::of_bytes(b"a");
        let (e, _rx) = entry(vec![Size::Fit7680], false);
        shared.lock().insert(hash, e);
        shared.dispatch(Event::Rendered {
            v: V1,
            hash,
            sizes: vec![Size::Fit4096.into()],
            thumbhash: None,
        });
        assert_eq!(shared.lock().len(), 0);
        let (e, rx) = entry(vec![Size::Fit720], true);
        shared.lock().insert(hash, e);
        shared.dispatch(Event::Failed {
            v: V1,
            hash,
            reason: "bad".into(),
            permanent: true,
        });
        assert_eq!(shared.lock().len(), 0);
        assert_eq!(
            *rx.borrow(),
            Signal::Failed {
                reason: "bad".into(),
                permanent: true
            }
        );
        // Events for other assets are ignored.
        shared.dispatch(Event::Failed {
            v: V1,
            hash,
            reason: "x".into(),
            permanent: true,
        });
    }

    #[tokio::test]
    async fn one_job_per_miss_across_replicas_sharing_a_broker() {
        use thumbfarm_shared::messages::SourceRef;
        use thumbfarm_shared::queue::{MemoryQueue, QueueName};
        use thumbfarm_shared::renditions::OutputFormat;
        use thumbfarm_shared::SizeLimits;
        let broker = Arc::new(MemoryQueue::new(5));
        let queue: Arc<dyn Queue> = broker.clone();
        let pregen = jobs::Pregeneration::new(SizeLimits::default(), &[OutputFormat::Jpeg]);
        let replica = || {
            let metrics = Arc::new(Metrics::new().expect("metrics"));
            let c = Coordinator::new(
                Arc::clone(&queue),
                pregen.clone(),
                Duration::from_secs(10),
                Arc::clone(&metrics),
            );
            (c, metrics)
        };
        let (first, first_metrics) = replica();
        let (second, second_metrics) = replica();
        let hash = AssetHash::of_bytes(b"one job");
        let source = SourceRef {
            bucket: None,
            key: "originals/x.jpg".into(),
        };
        let manifest = Manifest::new(hash, source, "image/jpeg", 10);
        let target = Rendition::from(Size::Fit2560);

        let a = first.request(&manifest, target).await.expect("first");
        let b = second.request(&manifest, target).await.expect("second");
        assert!(a.published, "the first replica publishes");
        assert!(!b.published, "the second waits for the first's job");
        let stats = queue.stats().await.expect("stats");
        let ondemand = stats
            .iter()
            .find(|q| q.queue == QueueName::RenderOnDemand.name())
            .expect("on-demand queue");
        assert_eq!(ondemand.ready, 1, "one job for two replicas");
        assert!(first_metrics
            .render()
            .contains("thumbfarm_api_ondemand_claims_total{outcome=\"taken\"} 1"));
        assert!(second_metrics
            .render()
            .contains("thumbfarm_api_ondemand_claims_total{outcome=\"held_elsewhere\"} 1"));

        // The job's event wakes both; the claim goes with the first's entry.
        let (mut a, mut b) = (a, b);
        publish_rendered(queue.as_ref(), hash, target).await;
        let wait = Duration::from_secs(5);
        let woke = tokio::time::timeout(wait, a.next())
            .await
            .expect("first woken");
        assert!(matches!(woke, Signal::Rendered(_)), "{woke:?}");
        let woke = tokio::time::timeout(wait, b.next())
            .await
            .expect("second woken");
        assert!(matches!(woke, Signal::Rendered(_)), "{woke:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while queue
            .claim(&claim_name(&hash, target), Duration::from_secs(1))
            .await
            .expect("claim")
            .is_none()
        {
            assert!(tokio::time::Instant::now() < deadline, "claim not released");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn publish_rendered(queue: &dyn Queue, hash: AssetHash, target: Rendition) {
        let event = Event::Rendered {
            v: V1,
            hash,
            sizes: vec![target],
            thumbhash: None,
        };
        thumbfarm_shared::queue::publish_json(
            queue,
            thumbfarm_shared::queue::Exchange::Events,
            &format!("rendered.{hash}"),
            &event,
        )
        .await
        .expect("publish event");
    }

    #[test]
    fn a_permanent_failure_is_remembered_for_late_requests() {
        let shared = Shared::default();
        let hash = AssetHash::of_bytes(b"late");
        let (e, _rx) = entry(vec![Size::Tile224], true);
        shared.lock().insert(hash, e);
        shared.dispatch(Event::Failed {
            v: V1,
            hash,
            reason: "cannot decode".into(),
            permanent: true,
        });
        assert_eq!(
            shared.recent_failure(&hash).as_deref(),
            Some("cannot decode")
        );
        let other = AssetHash::of_bytes(b"other");
        assert_eq!(shared.recent_failure(&other), None);
    }
}
