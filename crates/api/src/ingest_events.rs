//! The ingest planner: consumes `thumbfarm.ingest` and turns "a new original
//! is in a bucket" events into pre-generation jobs.
//!
//! Two shapes arrive on the queue ([`IngestEvent::parse`]):
//! - thumbfarm's own `file.created` (`{"v":1,"hash"?,"bucket"?,"key","media_type"?,"size"?}`);
//! - S3 bucket-notification JSON (`{"Records":[…]}`, as MinIO, Ceph RGW and
//!   Garage-style setups publish it to AMQP): every `s3:ObjectCreated:*`
//!   record becomes work, other event names are ignored. Object keys arrive
//!   URL-encoded (`+` for a space, `%XX`) and are decoded here.
//!
//! For each original:
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
//! [`SourceRef::bucket`]; the worker decides whether it reaches it (a worker
//! whose store is another bucket dead-letters the job with a reason naming
//! the bucket). Notifications about thumbfarm's own outputs (`thumbs/`,
//! `videos/`, `meta/`, `backfill/` in the store's bucket) are ignored, so a
//! bucket that notifies on every write does not loop.
//!
//! A malformed event (bad JSON, wrong version, missing or unsafe key) is
//! dead-lettered with the reason and the planner goes on; a transient store
//! or broker error is retried in place with backoff, then the event goes back
//! to the queue.

use crate::config::parse_seconds;
use crate::metrics::{self, Metrics};
use crate::planner::{self, PlannedJob};
use clap::Args;
use std::collections::{HashMap, VecDeque};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thumbfarm_shared::config::{LogArgs, QueueArgs, SizeArgs, StoreArgs};
use thumbfarm_shared::keys::{KeyKind, KeyLayout, META, THUMBS, VIDEOS};
use thumbfarm_shared::manifest::{media_type_for_extension, Manifest};
use thumbfarm_shared::messages::{
    FileCreated, IngestEvent, RenderJob, S3Notification, SourceRef, TranscodeJob, V1,
};
use thumbfarm_shared::queue::topology::routing;
use thumbfarm_shared::queue::{Delivery, Queue, QueueError, QueueName};
use thumbfarm_shared::sizes::SizeLimits;
use thumbfarm_shared::store::{self, validate_key, Store, StoreError};
use thumbfarm_shared::AssetHash;
use tokio_util::sync::CancellationToken;

/// The folder of backfill state (never an ingest source).
pub const BACKFILL_PREFIX: &str = "backfill/";

/// Default size of the recently-planned set.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 100_000;

/// Planner tuning shared by `thumbfarm-api planner` and `serve --planner on`.
#[derive(Args, Debug, Clone)]
pub struct PlannerTuningArgs {
    /// Ingest events the planner holds unsettled at once.
    #[arg(long, env = "THUMBFARM_PLANNER_PREFETCH", default_value_t = 32)]
    pub planner_prefetch: u16,
    /// Objects remembered as recently planned, to fold bursts of duplicate
    /// events for originals whose hash the event does not give (0: off).
    #[arg(long, env = "THUMBFARM_PLANNER_DEDUPE_CAPACITY", default_value_t = DEFAULT_DEDUPE_CAPACITY)]
    pub planner_dedupe_capacity: usize,
    /// Seconds an object stays in the recently-planned set.
    #[arg(long, env = "THUMBFARM_PLANNER_DEDUPE_WINDOW", default_value = "3600", value_parser = parse_seconds)]
    pub planner_dedupe_window: Duration,
    /// Seconds the planner retries an unavailable store or broker in place
    /// before it gives the event back to the queue.
    #[arg(long, env = "THUMBFARM_PLANNER_RETRY", default_value = "60", value_parser = parse_seconds)]
    pub planner_retry: Duration,
}

impl PlannerTuningArgs {
    /// The planner options for a store layout and size limits.
    pub fn options(&self, layout: KeyLayout, limits: SizeLimits) -> PlannerOptions {
        PlannerOptions {
            layout,
            limits,
            prefetch: self.planner_prefetch.max(1),
            dedupe_capacity: self.planner_dedupe_capacity,
            dedupe_window: self.planner_dedupe_window,
            retry_budget: self.planner_retry,
        }
    }
}

/// Options of `thumbfarm-api planner`.
#[derive(Args, Debug, Clone)]
pub struct PlannerArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub sizes: SizeArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub tuning: PlannerTuningArgs,
    /// Address of the planner's /metrics and /healthz endpoint.
    #[arg(long, env = "THUMBFARM_METRICS_LISTEN", default_value = "0.0.0.0:9092")]
    pub metrics_listen: SocketAddr,
    /// Seconds between polls of the queue depths for /metrics.
    #[arg(long, env = "THUMBFARM_QUEUE_STATS_INTERVAL", default_value = "5", value_parser = parse_seconds)]
    pub queue_stats_interval: Duration,
    /// RabbitMQ management API (`http://user:pass@rabbitmq:15672`) for unacked counts and rates on /metrics; unset: AMQP only.
    #[arg(
        long,
        env = "THUMBFARM_RABBITMQ_MANAGEMENT_URL",
        hide_env_values = true
    )]
    pub rabbitmq_management_url: Option<String>,
}

/// What the planner does.
#[derive(Debug, Clone)]
pub struct PlannerOptions {
    /// The store's key layout.
    pub layout: KeyLayout,
    /// Size limits (the static limit decides what is pre-generated).
    pub limits: SizeLimits,
    /// Unsettled ingest events at once.
    pub prefetch: u16,
    /// Capacity of the recently-planned set (0: no folding).
    pub dedupe_capacity: usize,
    /// How long an object stays in the recently-planned set.
    pub dedupe_window: Duration,
    /// How long a transient error is retried in place.
    pub retry_budget: Duration,
}

impl Default for PlannerOptions {
    fn default() -> Self {
        PlannerOptions {
            layout: KeyLayout::default(),
            limits: SizeLimits::default(),
            prefetch: 32,
            dedupe_capacity: DEFAULT_DEDUPE_CAPACITY,
            dedupe_window: Duration::from_secs(3600),
            retry_budget: Duration::from_secs(60),
        }
    }
}

/// Why an event was not handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The event can never be handled: it goes to `thumbfarm.dead`.
    #[error("{0}")]
    Malformed(String),
    /// The store or the broker is unavailable: the event is retried.
    #[error("{0}")]
    Transient(String),
}

impl From<StoreError> for PlanError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            PlanError::Transient(e.to_string())
        } else {
            PlanError::Malformed(e.to_string())
        }
    }
}

impl From<QueueError> for PlanError {
    fn from(e: QueueError) -> Self {
        PlanError::Transient(e.to_string())
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

/// One original an event names, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestItem {
    /// `file_created` or `s3` (the metrics label).
    pub kind: &'static str,
    /// The asset, when known.
    pub hash: Option<AssetHash>,
    /// Where the original is (`bucket` is `None` for the store's own bucket).
    pub source: SourceRef,
    /// The media type (given, else from the key's extension).
    pub media_type: String,
    /// Bytes, when given.
    pub size: Option<u64>,
    /// The S3 entity tag, when given.
    pub etag: Option<String>,
}

impl IngestItem {
    fn is_video(&self) -> bool {
        self.media_type.starts_with("video/")
    }

    fn dedupe_key(&self) -> String {
        match self.hash {
            Some(h) => format!("h:{h}"),
            None => format!(
                "o:{}\u{0}{}\u{0}{}",
                self.source.bucket.as_deref().unwrap_or(""),
                self.source.key,
                self.etag
                    .clone()
                    .or_else(|| self.size.map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Decodes an S3 notification object key: `+` is a space, `%XX` a byte.
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let pair = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(bytes.get(i + 2).copied().and_then(hex));
                match pair {
                    Some((h, l)) => out.push(h * 16 + l),
                    None => return Err(format!("bad percent escape in object key {raw:?}")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("object key {raw:?} is not UTF-8 once decoded"))
}

/// Whether a media type looks like `type/subtype`.
fn plausible_media_type(m: &str) -> bool {
    m.len() <= 100
        && m.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty()
                && !s.is_empty()
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
        })
}

/// The media type of an original: the given one, else from the extension.
fn media_type_of(given: Option<&str>, key: &str) -> Result<String, String> {
    if let Some(m) = given.map(str::trim).filter(|m| !m.is_empty()) {
        if !plausible_media_type(m) {
            return Err(format!("media_type {:?} is not a media type", truncate(m)));
        }
        return Ok(m.to_ascii_lowercase());
    }
    let ext = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e)
        .unwrap_or("");
    Ok(media_type_for_extension(ext).to_string())
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Turns a parsed event into the originals it names. `own_bucket` is the
/// store's bucket (`None` for a local store). Errors are reasons to
/// dead-letter the whole event.
pub fn items_of(
    event: &IngestEvent,
    own_bucket: Option<&str>,
) -> Result<Vec<Result<IngestItem, String>>, String> {
    match event {
        IngestEvent::FileCreated(fc) => Ok(vec![Ok(file_created_item(fc, own_bucket)?)]),
        IngestEvent::S3(n) => s3_items(n, own_bucket),
    }
}

/// The bucket as stored in a [`SourceRef`]: `None` for the store's own.
fn source_bucket(bucket: Option<&str>, own_bucket: Option<&str>) -> Result<Option<String>, String> {
    match bucket.map(str::trim) {
        None | Some("") => Ok(None),
        Some(b) if Some(b) == own_bucket => Ok(None),
        Some(b) => {
            let ok = b.len() <= 255
                && b.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
            if ok {
                Ok(Some(b.to_string()))
            } else {
                Err(format!("bucket name {:?} is not valid", truncate(b)))
            }
        }
    }
}

/// Whether `key` in the store's bucket is one of thumbfarm's own outputs.
fn is_own_output(key: &str) -> bool {
    [THUMBS, VIDEOS, META]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        || key.starts_with(BACKFILL_PREFIX)
}

/// The hash a key of the store's own `originals/` folder carries.
fn hash_from_original_key(key: &str) -> Option<AssetHash> {
    match KeyLayout::parse(key) {
        Ok((hash, KeyKind::Original(_))) => Some(hash),
        _ => None,
    }
}

fn item(
    kind: &'static str,
    hash: Option<AssetHash>,
    bucket: Option<String>,
    key: String,
    media_type: Option<&str>,
    size: Option<u64>,
    etag: Option<String>,
) -> Result<IngestItem, String> {
    validate_key(&key).map_err(|_| format!("unsafe or empty object key {:?}", truncate(&key)))?;
    let media_type = media_type_of(media_type, &key)?;
    let hash = hash.or_else(|| {
        bucket
            .is_none()
            .then(|| hash_from_original_key(&key))
            .flatten()
    });
    Ok(IngestItem {
        kind,
        hash,
        source: SourceRef { bucket, key },
        media_type,
        size,
        etag,
    })
}

fn file_created_item(fc: &FileCreated, own_bucket: Option<&str>) -> Result<IngestItem, String> {
    let bucket = source_bucket(fc.bucket.as_deref(), own_bucket)?;
    if bucket.is_none() && is_own_output(&fc.key) {
        return Err(format!(
            "key {:?} is one of thumbfarm's own outputs, not an original",
            truncate(&fc.key)
        ));
    }
    item(
        "file_created",
        fc.hash,
        bucket,
        fc.key.clone(),
        fc.media_type.as_deref(),
        fc.size,
        None,
    )
}

fn s3_items(
    n: &S3Notification,
    own_bucket: Option<&str>,
) -> Result<Vec<Result<IngestItem, String>>, String> {
    if n.records.is_empty() {
        return Err("S3 notification without records".into());
    }
    let mut out = Vec::with_capacity(n.records.len());
    for (i, r) in n.records.iter().enumerate() {
        if !r.event_name.starts_with("s3:ObjectCreated:")
            && !r.event_name.starts_with("ObjectCreated:")
        {
            out.push(Err(format!("event {:?}", truncate(&r.event_name))));
            continue;
        }
        let key = decode_s3_key(&r.s3.object.key).map_err(|e| format!("record {i}: {e}"))?;
        let bucket = source_bucket(Some(&r.s3.bucket.name), own_bucket)
            .map_err(|e| format!("record {i}: {e}"))?;
        if bucket.is_none() && is_own_output(&key) {
            out.push(Err(format!("thumbfarm's own output {}", truncate(&key))));
            continue;
        }
        let etag =
            r.s3.object
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_string())
                .filter(|e| !e.is_empty());
        let it = item("s3", None, bucket, key, None, r.s3.object.size, etag)
            .map_err(|e| format!("record {i}: {e}"))?;
        out.push(Ok(it));
    }
    Ok(out)
}

/// The jobs that pre-generate one original.
pub fn jobs_for(limits: &SizeLimits, item: &IngestItem) -> Vec<PlannedJob> {
    let mut jobs = vec![PlannedJob::Render(
        routing::RENDER_BULK,
        RenderJob {
            v: V1,
            hash: item.hash,
            source: item.source.clone(),
            sizes: limits.pregenerated(),
            force: false,
            media_type: Some(item.media_type.clone()).filter(|m| m != "application/octet-stream"),
        },
    )];
    if item.is_video() {
        jobs.push(PlannedJob::Transcode(TranscodeJob {
            v: V1,
            hash: item.hash,
            source: item.source.clone(),
            format: planner::VIDEO_FORMAT.to_string(),
            force: false,
        }));
    }
    jobs
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

/// The planner of one process.
pub struct Planner {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    opts: PlannerOptions,
    own_bucket: Option<String>,
    recent: Mutex<RecentSet>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("store", &self.store.describe())
            .field("queue", &self.queue.describe())
            .field("opts", &self.opts)
            .finish()
    }
}

impl Planner {
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
        Planner {
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
    pub async fn handle(&self, body: &[u8]) -> Result<EventSummary, PlanError> {
        let event = IngestEvent::parse(body).map_err(|e| PlanError::Malformed(e.to_string()))?;
        let items = items_of(&event, self.own_bucket.as_deref()).map_err(PlanError::Malformed)?;
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

    async fn plan_with_retry(&self, item: &IngestItem) -> Result<ItemOutcome, PlanError> {
        let deadline = Instant::now() + self.opts.retry_budget;
        let mut delay = Duration::from_millis(250);
        loop {
            match self.plan(item).await {
                Err(PlanError::Transient(why)) if Instant::now() + delay < deadline => {
                    tracing::warn!(key = %item.source.key, error = %why, retry_in_ms = delay.as_millis() as u64, "planner: backend unavailable, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    async fn plan(&self, item: &IngestItem) -> Result<ItemOutcome, PlanError> {
        let dedupe = item.dedupe_key();
        if self.lock_recent().contains(&dedupe) {
            return Ok(ItemOutcome::Duplicate);
        }
        let jobs = jobs_for(&self.opts.limits, item);
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
                let now = crate::routes::ingest::rfc3339_now();
                let manifest = Manifest {
                    v: V1,
                    hash,
                    original: item.source.clone(),
                    media_type: item.media_type.clone(),
                    bytes: item.size.unwrap_or(0),
                    width: 0,
                    height: 0,
                    duration_ms: None,
                    outputs: Default::default(),
                    created_at: now.clone(),
                    updated_at: now,
                };
                self.store
                    .put(&key, manifest.to_json().into(), "application/json")
                    .await?;
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

    async fn publish(&self, jobs: &[PlannedJob]) -> Result<(), PlanError> {
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
            Err(PlanError::Malformed(reason)) => {
                tracing::warn!(%reason, routing_key = %delivery.routing_key, "planner: dead-lettering malformed ingest event");
                self.metrics.planner_event("malformed", "dead_lettered");
                if let Err(e) = delivery.dead_letter(&reason).await {
                    tracing::warn!(error = %e, "planner: dead-lettering failed");
                }
            }
            Err(PlanError::Transient(reason)) => {
                tracing::warn!(%reason, "planner: backend unavailable; the event goes back to the queue");
                self.metrics.planner_event("any", "retried");
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
            static_limit = self.opts.limits.static_limit(),
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

/// `thumbfarm-api planner`: opens the store and the queue, serves
/// /metrics and /healthz, and plans until `shutdown` resolves.
pub async fn run_standalone<F>(args: &PlannerArgs, shutdown: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let layout = args.store.layout()?;
    let limits = args.sizes.limits();
    let store = args.store.open().await?;
    let queue = args.queue.open().await?;
    let metrics = Arc::new(Metrics::new()?);
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
    }
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.metrics_listen))?;
    let app = {
        use axum::routing::get;
        let m = Arc::clone(&metrics);
        axum::Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = Arc::clone(&m);
                    async move {
                        (
                            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                            m.render(),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }))
    };
    tracing::info!(addr = %args.metrics_listen, "planner metrics listening");
    let http = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let management = crate::broker_stats::from_option(
        args.rabbitmq_management_url.as_deref(),
        args.queue.amqp_url.as_deref(),
    )?;
    let poller = tokio::spawn(metrics::poll_queue_stats(
        Arc::clone(&metrics),
        Arc::clone(&queue),
        management,
        args.queue_stats_interval,
        stop.clone(),
    ));
    let planner = Arc::new(Planner::new(
        store,
        queue,
        metrics,
        args.tuning.options(layout, limits),
    ));
    let result = planner.run(stop.clone()).await;
    stop.cancel();
    poller.abort();
    let _ = http.await;
    result.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_decoded() {
        assert_eq!(decode_s3_key("a+b%20c%2Fd.jpg").unwrap(), "a b c/d.jpg");
        assert_eq!(decode_s3_key("caf%C3%A9.jpg").unwrap(), "café.jpg");
        assert!(decode_s3_key("bad%2").is_err());
        assert!(decode_s3_key("bad%zz").is_err());
        assert!(decode_s3_key("%FF").is_err());
    }

    #[test]
    fn s3_records_become_items() {
        let body = br#"{"Records":[
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ours"},"object":{"key":"in/a+b.JPG","size":5,"eTag":"\"e1\""}}},
            {"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"ours"},"object":{"key":"in/c.jpg"}}},
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ours"},"object":{"key":"thumbs/a/b/c/x.jpg"}}},
            {"eventName":"s3:ObjectCreated:Copy","s3":{"bucket":{"name":"other"},"object":{"key":"v/clip.mov"}}}
        ]}"#;
        let event = IngestEvent::parse(body).unwrap();
        let items = items_of(&event, Some("ours")).unwrap();
        assert_eq!(items.len(), 4);
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.source.key, "in/a b.JPG");
        assert_eq!(a.source.bucket, None);
        assert_eq!(a.media_type, "image/jpeg");
        assert_eq!(a.etag.as_deref(), Some("e1"));
        assert!(items[1].is_err() && items[2].is_err());
        let v = items[3].as_ref().unwrap();
        assert_eq!(v.source.bucket.as_deref(), Some("other"));
        assert!(v.is_video());
        let keys: Vec<_> = jobs_for(&SizeLimits::default(), v)
            .iter()
            .map(PlannedJob::routing_key)
            .collect();
        assert_eq!(keys, vec!["render.bulk", "transcode"]);
    }

    #[test]
    fn unsafe_events_are_malformed() {
        for body in [
            &br#"{"v":1,"key":"../etc/passwd"}"#[..],
            br#"{"v":1,"key":"/abs.jpg"}"#,
            br#"{"v":1,"key":""}"#,
            br#"{"v":1,"key":"thumbs/a/b/c/x.jpg"}"#,
            br#"{"v":1,"key":"a.jpg","media_type":"<script>"}"#,
            br#"{"v":1,"key":"a.jpg","bucket":"b/../c"}"#,
            br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%2F..%2F..%2Fx"}}}]}"#,
            br#"{"Records":[]}"#,
        ] {
            let parsed = IngestEvent::parse(body).unwrap();
            assert!(
                items_of(&parsed, None).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn own_original_keys_carry_their_hash() {
        let h = AssetHash::of_bytes(b"x");
        let key = KeyLayout::default().original(&h, "jpg");
        let body = serde_json::json!({"v":1,"key":key}).to_string();
        let items = items_of(&IngestEvent::parse(body.as_bytes()).unwrap(), None).unwrap();
        assert_eq!(items[0].as_ref().unwrap().hash, Some(h));
    }

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
