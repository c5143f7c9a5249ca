//! The status board: what the status page shows that only this replica
//! knows (recent events, event rates, samples of the queue depths), and the
//! status document made from it in the anonymous or the operator view
//! ([`Access`]). The HTTP side is `routes/status.rs`.

use crate::metrics::Metrics;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thumbfarm_shared::failure::FailureKind;
use thumbfarm_shared::messages::Event;
use thumbfarm_shared::queue::{EventStream, Queue, QueueError, QueueStats};
use thumbfarm_shared::renditions::Rendition;
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::time::rfc3339_of;
use thumbfarm_shared::tokens::TokenPolicy;
use thumbfarm_shared::AssetHash;
use tokio::task::JoinHandle;

/// Failures kept for the page.
pub const RECENT_FAILURES: usize = 50;
/// Renders kept for the page.
pub const RECENT_RENDERS: usize = 24;
/// The window rates are computed over.
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// Queue depths older than this are fetched again from the broker.
const STATS_MAX_AGE: Duration = Duration::from_secs(15);
/// How long a status request waits for the broker's depths.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the board samples the published-jobs counter and the depths.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A failure seen on `thumbfarm.events`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecentFailure {
    /// The asset.
    pub hash: String,
    /// The worker's reason (generic in the anonymous view).
    pub reason: String,
    /// The kind of failure.
    pub kind: FailureKind,
    /// Whether retrying cannot help.
    pub permanent: bool,
    /// When it was seen (RFC 3339).
    pub at: String,
}

/// A render seen on `thumbfarm.events`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecentRender {
    /// The asset.
    pub hash: String,
    /// The renditions stored.
    pub sizes: Vec<Rendition>,
    /// When it was seen (RFC 3339).
    pub at: String,
}

/// Counts per second over the rate window.
#[derive(Debug, Default)]
struct RateCounter {
    total: u64,
    buckets: VecDeque<(u64, u64)>,
}

impl RateCounter {
    fn add(&mut self, now_sec: u64) {
        self.total += 1;
        match self.buckets.back_mut() {
            Some((sec, n)) if *sec == now_sec => *n += 1,
            _ => self.buckets.push_back((now_sec, 1)),
        }
        self.trim(now_sec);
    }

    fn trim(&mut self, now_sec: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|(sec, _)| sec + RATE_WINDOW.as_secs() <= now_sec)
        {
            self.buckets.pop_front();
        }
    }

    /// Events per minute over the last `window` (at most the rate window),
    /// or over the time since `since` when that is shorter.
    fn per_minute(&mut self, now_sec: u64, window: Duration, since: Instant) -> f64 {
        self.trim(now_sec);
        let window = window.min(RATE_WINDOW).as_secs().max(1);
        let n: u64 = self
            .buckets
            .iter()
            .filter(|(sec, _)| sec + window > now_sec)
            .map(|(_, n)| n)
            .sum();
        let span = since.elapsed().as_secs().clamp(1, window);
        n as f64 * 60.0 / span as f64
    }
}

/// A sample of the published-jobs counter and the queue depths.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    jobs_published: u64,
    queues: Vec<QueueStats>,
}

#[derive(Debug)]
struct BoardState {
    failures: VecDeque<RecentFailure>,
    renders: VecDeque<RecentRender>,
    rendered: RateCounter,
    transcoded: RateCounter,
    failed: RateCounter,
    samples: VecDeque<Sample>,
}

/// What the status page shows that only this replica knows: recent events,
/// event rates and samples of the queue depths. Cheap to clone.
#[derive(Clone)]
pub struct StatusBoard {
    inner: Arc<BoardInner>,
}

struct BoardInner {
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    started: Instant,
    state: Mutex<BoardState>,
    listener: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusBoard")
    }
}

fn now_sec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl StatusBoard {
    /// A board over `queue`; nothing is subscribed until
    /// [`StatusBoard::ensure_listening`].
    pub fn new(queue: Arc<dyn Queue>, metrics: Arc<Metrics>) -> Self {
        StatusBoard {
            inner: Arc::new(BoardInner {
                queue,
                metrics,
                started: Instant::now(),
                state: Mutex::new(BoardState {
                    failures: VecDeque::new(),
                    renders: VecDeque::new(),
                    rendered: RateCounter::default(),
                    transcoded: RateCounter::default(),
                    failed: RateCounter::default(),
                    samples: VecDeque::new(),
                }),
                listener: tokio::sync::Mutex::new(None),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // Every update is a push/pop; a panic cannot leave it inconsistent.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to `thumbfarm.events` (every event) and starts sampling,
    /// unless that is running already.
    pub async fn ensure_listening(&self) -> Result<(), QueueError> {
        let mut guard = self.inner.listener.lock().await;
        if guard.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let stream = self.inner.queue.subscribe("#").await?;
        let board = self.clone();
        *guard = Some(tokio::spawn(board.listen(stream)));
        Ok(())
    }

    /// Stops the subscription.
    pub async fn shutdown(&self) {
        if let Some(task) = self.inner.listener.lock().await.take() {
            task.abort();
        }
    }

    async fn listen(self, mut stream: Box<dyn EventStream>) {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => match serde_json::from_slice::<Event>(&msg.body) {
                        Ok(event) => self.record(event),
                        Err(e) => tracing::debug!(error = %e, routing_key = %msg.routing_key, "status: unreadable event"),
                    },
                    None => {
                        tracing::warn!("status: event subscription ended");
                        return;
                    }
                },
                _ = ticker.tick() => self.sample(),
            }
        }
    }

    /// Records one event (public for tests and embedding).
    pub fn record(&self, event: Event) {
        let now = now_sec();
        let at = rfc3339_of(SystemTime::now());
        let mut s = self.lock();
        match event {
            Event::Rendered { hash, sizes, .. } => {
                s.rendered.add(now);
                s.renders.push_front(RecentRender {
                    hash: hash.to_string(),
                    sizes,
                    at,
                });
                s.renders.truncate(RECENT_RENDERS);
            }
            Event::Failed {
                hash,
                reason,
                permanent,
                ..
            } => {
                s.failed.add(now);
                s.failures.push_front(RecentFailure {
                    hash: hash.to_string(),
                    kind: FailureKind::of_reason(&reason),
                    reason: reason.chars().take(1000).collect(),
                    permanent,
                    at,
                });
                s.failures.truncate(RECENT_FAILURES);
            }
            Event::Transcoded { .. } => s.transcoded.add(now),
            Event::Progress { .. } => {}
        }
    }

    /// Takes a sample of the published-jobs counter and the cached depths.
    fn sample(&self) {
        let queues = self
            .inner
            .metrics
            .queue_stats_snapshot()
            .map(|(_, q)| q)
            .unwrap_or_default();
        self.push_sample(queues);
    }

    fn push_sample(&self, queues: Vec<QueueStats>) {
        let sample = Sample {
            at: Instant::now(),
            jobs_published: self.inner.metrics.jobs_published_total(),
            queues,
        };
        let mut s = self.lock();
        s.samples.push_back(sample);
        while s
            .samples
            .front()
            .is_some_and(|x| x.at.elapsed() > RATE_WINDOW)
        {
            s.samples.pop_front();
        }
    }

    /// The queue depths: the poller's when fresh, else asked of the broker.
    async fn queue_stats(&self) -> (Vec<QueueStats>, Option<SystemTime>, Option<String>) {
        if let Some((at, stats)) = self.inner.metrics.queue_stats_snapshot() {
            if at.elapsed().is_ok_and(|age| age < STATS_MAX_AGE) {
                return (stats, Some(at), None);
            }
        }
        match tokio::time::timeout(STATS_TIMEOUT, self.inner.queue.stats()).await {
            Ok(Ok(stats)) => {
                self.inner.metrics.set_queue_stats(&stats);
                (stats, Some(SystemTime::now()), None)
            }
            Ok(Err(e)) => {
                let old = self.inner.metrics.queue_stats_snapshot();
                let (stats, at) = old.map_or((Vec::new(), None), |(at, s)| (s, Some(at)));
                (stats, at, Some(e.to_string()))
            }
            Err(_) => {
                let old = self.inner.metrics.queue_stats_snapshot();
                let (stats, at) = old.map_or((Vec::new(), None), |(at, s)| (s, Some(at)));
                (stats, at, Some("queue stats timed out".to_string()))
            }
        }
    }

    /// The status document, as `access` may see it.
    pub async fn snapshot(&self, replica: Replica<'_>, access: Access) -> StatusDoc {
        let (stats, as_of, error) = self.queue_stats().await;
        self.push_sample(stats.clone());
        let started = self.inner.started;
        let now = now_sec();
        let mut s = self.lock();
        // Rates from the oldest sample within the last minute (or older).
        let newest = s.samples.back().cloned();
        let base = s
            .samples
            .iter()
            .find(|x| x.at.elapsed() <= Duration::from_secs(65))
            .cloned();
        let span = match (&base, &newest) {
            (Some(b), Some(n)) => n.at.duration_since(b.at),
            _ => Duration::ZERO,
        };
        let per_min = |delta: f64| {
            (span >= Duration::from_secs(1)).then(|| delta * 60.0 / span.as_secs_f64())
        };
        let queues = stats
            .iter()
            .map(|q| {
                let before = base
                    .as_ref()
                    .and_then(|b| b.queues.iter().find(|x| x.queue == q.queue));
                QueueRow {
                    queue: q.queue.clone(),
                    ready: q.ready,
                    unacked: q.unacked,
                    consumers: q.consumers,
                    ready_change_per_min: before
                        .and_then(|b| per_min(q.ready as f64 - b.ready as f64))
                        .map(round1),
                }
            })
            .collect();
        let jobs_per_min = match (&base, &newest) {
            (Some(b), Some(n)) => per_min(n.jobs_published.saturating_sub(b.jobs_published) as f64),
            _ => None,
        };
        let minute = Duration::from_secs(60);
        let rates = Rates {
            window_seconds: started.elapsed().as_secs().clamp(1, 60),
            jobs_published_per_min: jobs_per_min.map(round1),
            rendered_per_min: round1(s.rendered.per_minute(now, minute, started)),
            transcoded_per_min: round1(s.transcoded.per_minute(now, minute, started)),
            failed_per_min: round1(s.failed.per_minute(now, minute, started)),
        };
        let totals = Totals {
            jobs_published: self.inner.metrics.jobs_published_total(),
            rendered: s.rendered.total,
            transcoded: s.transcoded.total,
            failed: s.failed.total,
        };
        let tokens = replica.tokens;
        let public_url = replica.public_url;
        // Anonymous callers get URLs only where a URL holds no secret.
        let mint_urls = access == Access::Operator || matches!(tokens, TokenPolicy::Public);
        let renders = s
            .renders
            .iter()
            .map(|r| {
                let thumb_url = AssetHash::parse(&r.hash)
                    .ok()
                    .filter(|_| mint_urls)
                    .and_then(|hash| {
                        let size = if r.sizes.contains(&Size::Tile100.into()) {
                            Some(Size::Tile100)
                        } else {
                            r.sizes.iter().map(|r| r.size).min()
                        }?;
                        Some(crate::urls::thumb_url(tokens, public_url, &hash, size))
                    });
                RenderRow {
                    render: r.clone(),
                    thumb_url,
                }
            })
            .collect();
        let failures = s
            .failures
            .iter()
            .cloned()
            .map(|mut f| {
                if access == Access::Anonymous {
                    f.reason = f.kind.public_text().to_string();
                }
                f
            })
            .collect();
        drop(s);
        let operator = access == Access::Operator;
        StatusDoc {
            v: 1,
            access,
            generated_at: rfc3339_of(SystemTime::now()),
            store: operator.then(|| replica.store.describe()),
            queue: operator.then(|| self.inner.queue.describe()),
            queues,
            queues_as_of: as_of.map(rfc3339_of),
            queues_error: error.map(|e| {
                if operator {
                    e
                } else {
                    "the broker did not answer".to_string()
                }
            }),
            rates,
            totals,
            recent_failures: failures,
            recent_renders: renders,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One queue on the page.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    /// The queue name.
    pub queue: String,
    /// Messages ready.
    pub ready: u64,
    /// Messages delivered, not settled (0 where the broker does not say).
    pub unacked: u64,
    /// Consumers attached.
    pub consumers: u32,
    /// Net change of `ready` per minute over about the last minute (`null`
    /// until two samples exist).
    pub ready_change_per_min: Option<f64>,
}

/// Rates per minute, over about the last minute.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// The window the event rates cover (shorter right after start).
    pub window_seconds: u64,
    /// Jobs this replica published (`null` until two samples exist).
    pub jobs_published_per_min: Option<f64>,
    /// `rendered.*` events seen.
    pub rendered_per_min: f64,
    /// `transcoded.*` events seen.
    pub transcoded_per_min: f64,
    /// `failed.*` events seen.
    pub failed_per_min: f64,
}

/// Counts since this replica started.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Jobs published.
    pub jobs_published: u64,
    /// Rendered events seen.
    pub rendered: u64,
    /// Transcoded events seen.
    pub transcoded: u64,
    /// Failed events seen.
    pub failed: u64,
}

/// A recent render with its thumbnail URL.
#[derive(Debug, Clone, Serialize)]
pub struct RenderRow {
    #[serde(flatten)]
    pub render: RecentRender,
    /// A ready URL of `tile_100` (or the smallest stored size).
    pub thumb_url: Option<String>,
}

/// What the board needs of its replica to make a document.
#[derive(Clone, Copy)]
pub struct Replica<'a> {
    /// The deployment's token policy (URLs are minted with it).
    pub tokens: &'a TokenPolicy,
    /// The base of absolute URLs.
    pub public_url: Option<&'a str>,
    /// The store (named in the operator view).
    pub store: &'a dyn Store,
}

/// Who is looking at the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No credentials: generic reasons, no store names, no minted tokens.
    Anonymous,
    /// A valid API key: everything.
    Operator,
}

/// The document of `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    /// Always 1.
    pub v: u8,
    /// The view this document was made for.
    pub access: Access,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The store, described (operator view only).
    pub store: Option<String>,
    /// The queue, described, password redacted (operator view only).
    pub queue: Option<String>,
    /// Every thumbfarm queue.
    pub queues: Vec<QueueRow>,
    /// When the depths were read from the broker.
    pub queues_as_of: Option<String>,
    /// Why the depths could not be read, if they could not.
    pub queues_error: Option<String>,
    /// Rates per minute.
    pub rates: Rates,
    /// Counts since start.
    pub totals: Totals,
    /// The last failures, newest first.
    pub recent_failures: Vec<RecentFailure>,
    /// The last renders, newest first.
    pub recent_renders: Vec<RenderRow>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::messages::V1;

    #[test]
    fn rings_are_bounded() {
        let queue: Arc<dyn Queue> = Arc::new(thumbfarm_shared::queue::MemoryQueue::new(5));
        let board = StatusBoard::new(queue, Arc::new(Metrics::new().unwrap()));
        assert_eq!(
            FailureKind::of_reason("cannot decode: x"),
            FailureKind::Undecodable
        );
        for i in 0..100u32 {
            let hash = AssetHash::of_bytes(&i.to_be_bytes());
            board.record(Event::Failed {
                v: V1,
                hash,
                reason: format!("r{i}"),
                permanent: true,
            });
            board.record(Event::Rendered {
                v: V1,
                hash,
                sizes: vec![Size::Tile100.into()],
                thumbhash: None,
            });
        }
        let s = board.lock();
        assert_eq!(s.failures.len(), RECENT_FAILURES);
        assert_eq!(s.renders.len(), RECENT_RENDERS);
        assert_eq!(s.failures[0].reason, "r99");
        assert_eq!(s.rendered.total, 100);
    }

    #[test]
    fn rates_per_minute() {
        let mut c = RateCounter::default();
        let now = 10_000;
        for _ in 0..30 {
            c.add(now);
        }
        let since = Instant::now() - Duration::from_secs(120);
        assert_eq!(c.per_minute(now, Duration::from_secs(60), since), 30.0);
        assert_eq!(c.per_minute(now + 120, Duration::from_secs(60), since), 0.0);
    }
}
