//! The job consumer: takes render jobs from the queue (on-demand ahead of
//! bulk), renders them off the async runtime, stores every output and the
//! manifest, publishes the event, and only then acks.
//!
//! Failure handling (DESIGN.md §5):
//! - malformed message, undecodable or over-limit original, original missing:
//!   permanent, so a `failed.<hash>` event is published and the message is
//!   dead-lettered at once with the reason;
//! - store or broker unavailable: transient, so the job retries in place with
//!   backoff for up to `transient_retry`, then goes back to the queue.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

use thumbfarm_shared::manifest::{Manifest, OutputInfo};
use thumbfarm_shared::messages::{Event, Job, RenderJob, V1};
use thumbfarm_shared::queue::{publish_json, Delivery, Exchange, Queue, QueueError, QueueName};
use thumbfarm_shared::sizes::{self, Size};
use thumbfarm_shared::store::{self, Store, StoreError};
use thumbfarm_shared::{AssetHash, KeyLayout, SizeLimits};

use crate::metrics::WorkerMetrics;
use crate::render::{self, RenderError, RenderOptions};
use crate::video::{self, VideoOptions};

/// A kind of job queue a worker can consume (`--queues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobKind {
    /// `thumbfarm.render.ondemand` and `thumbfarm.render.bulk`.
    Render,
    /// `thumbfarm.transcode`.
    Transcode,
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The job queues consumed (render, transcode or both).
    pub queues: Vec<JobKind>,
    /// Jobs rendered at once (defaults to the number of cores).
    pub concurrency: usize,
    /// Unsettled deliveries per queue.
    pub prefetch: u16,
    /// Encoder settings and input limits.
    pub render: RenderOptions,
    /// Video transcode settings and limits.
    pub video: VideoOptions,
    /// Storage key layout.
    pub layout: KeyLayout,
    /// Size limits.
    pub limits: SizeLimits,
    /// Seconds to finish jobs in hand after a stop signal.
    pub grace_seconds: u64,
    /// How long a job retries an unavailable store or broker in place.
    pub transient_retry: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queues: vec![JobKind::Render, JobKind::Transcode],
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 2,
            render: RenderOptions::default(),
            video: VideoOptions::default(),
            layout: KeyLayout::default(),
            limits: SizeLimits::default(),
            grace_seconds: 60,
            transient_retry: Duration::from_secs(300),
        }
    }
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help: the message goes to the dead-letter queue.
    #[error("{0}")]
    Permanent(String),
    /// The store or broker is unavailable: the message goes back to the queue.
    #[error("{0}")]
    Transient(String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            JobError::Transient(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        JobError::Transient(e.to_string())
    }
}

impl From<RenderError> for JobError {
    fn from(e: RenderError) -> Self {
        if e.is_permanent() {
            JobError::Permanent(e.to_string())
        } else {
            JobError::Transient(e.to_string())
        }
    }
}

/// What a finished render job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOutcome {
    /// The asset.
    pub hash: AssetHash,
    /// Every size now stored for the request (rendered or already there).
    pub stored: Vec<Size>,
    /// The sizes rendered and written by this job.
    pub written: Vec<Size>,
}

/// Everything a job needs.
struct Context {
    opts: WorkerOptions,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    metrics: &'static WorkerMetrics,
}

/// Consumes jobs until `shutdown` resolves, then finishes the jobs in hand
/// (up to the grace period) and returns. Unsettled messages are redelivered
/// by the broker.
pub async fn run(
    opts: WorkerOptions,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let concurrency = opts.concurrency.max(1);
    let prefetch = opts.prefetch.max(1);
    let grace = Duration::from_secs(opts.grace_seconds);
    let ctx = Arc::new(Context {
        opts,
        store,
        queue: queue.clone(),
        metrics: WorkerMetrics::get(),
    });

    // One forwarding task per queue; the select below prefers on-demand work.
    let renders = ctx.opts.queues.contains(&JobKind::Render);
    let transcodes = ctx.opts.queues.contains(&JobKind::Transcode);
    let mut ondemand = forward_if(renders, &queue, QueueName::RenderOnDemand, prefetch).await?;
    let mut bulk = forward_if(renders, &queue, QueueName::RenderBulk, prefetch).await?;
    let mut transcode = forward_if(transcodes, &queue, QueueName::Transcode, prefetch).await?;
    info!(
        concurrency,
        prefetch,
        queues = ?ctx.opts.queues,
        store = %ctx.store.describe(),
        queue = %queue.describe(),
        "worker consuming jobs"
    );

    let slots = Arc::new(Semaphore::new(concurrency));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit?,
        };
        let delivery = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(d) = ondemand.recv() => d,
            Some(d) = transcode.recv() => d,
            Some(d) = bulk.recv() => d,
            else => {
                warn!("all consumers ended");
                break;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ctx.metrics.in_flight.inc();
            handle(&ctx, delivery).await;
            ctx.metrics.in_flight.dec();
            drop(permit);
        });
    }

    info!(
        grace_seconds = grace.as_secs(),
        "stopping: finishing jobs in hand"
    );
    // Stop the forwarders; anything they hold unsettled goes back to the broker.
    ondemand.close();
    bulk.close();
    transcode.close();
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, slots.acquire_many(all)).await {
        Ok(_) => info!("all jobs finished"),
        Err(_) => warn!("grace period over with jobs in hand; the broker will redeliver them"),
    }
    Ok(())
}

/// [`forward`] for a queue this worker consumes; for one it does not, a
/// channel that is already closed (its `select!` branch never fires).
async fn forward_if(
    consumed: bool,
    queue: &Arc<dyn Queue>,
    name: QueueName,
    prefetch: u16,
) -> Result<mpsc::Receiver<Delivery>, QueueError> {
    if consumed {
        forward(Arc::clone(queue), name, prefetch).await
    } else {
        Ok(mpsc::channel(1).1)
    }
}

/// Moves deliveries of one queue into a small channel, so the main loop can
/// choose between queues without cancelling a consumer mid-receive.
async fn forward(
    queue: Arc<dyn Queue>,
    name: QueueName,
    prefetch: u16,
) -> Result<mpsc::Receiver<Delivery>, QueueError> {
    let mut consumer = queue.consume(name, prefetch).await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            if let Err(mpsc::error::SendError(unsent)) = tx.send(delivery).await {
                // Shutting down: hand it straight back.
                let _ = unsent.retry().await;
                break;
            }
        }
        debug!(queue = %name, "consumer ended");
    });
    Ok(rx)
}

/// Works on one delivery and settles it.
async fn handle(ctx: &Context, delivery: Delivery) {
    let started = Instant::now();
    let queue_label = delivery.queue.name();
    let outcome = match Job::parse(&delivery.routing_key, &delivery.body) {
        Err(e) => {
            warn!(queue = queue_label, error = %e, "dead-lettering malformed message");
            settle_dead(&delivery_reason(&e.to_string()), delivery).await;
            "malformed"
        }
        Ok(Job::Transcode(job)) => transcode_and_settle(ctx, job, delivery, started).await,
        Ok(Job::Render(job)) => match render_job(&ctx.opts, ctx.store.as_ref(), &job).await {
            Ok(done) => {
                let event = Event::Rendered {
                    v: V1,
                    hash: done.hash,
                    sizes: done.stored.clone(),
                };
                match publish_event(ctx, &event).await {
                    Ok(()) => {
                        info!(hash = %done.hash, written = done.written.len(), stored = done.stored.len(), ms = started.elapsed().as_millis() as u64, "rendered");
                        settle(delivery.ack().await);
                        if done.written.is_empty() {
                            "skipped"
                        } else {
                            "rendered"
                        }
                    }
                    Err(e) => {
                        warn!(hash = %done.hash, error = %e, "event not published; job goes back to the queue");
                        settle(delivery.retry().await);
                        "retried"
                    }
                }
            }
            Err(JobError::Permanent(reason)) => {
                warn!(key = %job.source.key, %reason, "permanent failure");
                if let Some(hash) = job.hash {
                    let event = Event::Failed {
                        v: V1,
                        hash,
                        reason: reason.clone(),
                        permanent: true,
                    };
                    if let Err(e) = publish_event(ctx, &event).await {
                        warn!(error = %e, "failed event not published");
                    }
                }
                settle_dead(&reason, delivery).await;
                "failed"
            }
            Err(JobError::Transient(reason)) => {
                warn!(key = %job.source.key, %reason, "transient failure; job goes back to the queue");
                settle(delivery.retry().await);
                "retried"
            }
        },
    };
    ctx.metrics
        .jobs
        .with_label_values(&[queue_label, outcome])
        .inc();
    ctx.metrics
        .job_seconds
        .with_label_values(&[queue_label])
        .observe(started.elapsed().as_secs_f64());
}

/// Runs a transcode job and settles its delivery; returns the outcome label.
async fn transcode_and_settle(
    ctx: &Context,
    job: thumbfarm_shared::messages::TranscodeJob,
    delivery: Delivery,
    started: Instant,
) -> &'static str {
    match video::transcode_job(
        &ctx.opts,
        ctx.store.as_ref(),
        Some(ctx.queue.as_ref()),
        &job,
    )
    .await
    {
        Ok(done) => {
            let event = Event::Transcoded {
                v: V1,
                hash: done.hash,
                format: job.format.clone(),
            };
            match publish_event(ctx, &event).await {
                Ok(()) => {
                    info!(hash = %done.hash, skipped = done.skipped(), ms = started.elapsed().as_millis() as u64, "transcoded");
                    settle(delivery.ack().await);
                    if done.skipped() {
                        "skipped"
                    } else {
                        "transcoded"
                    }
                }
                Err(e) => {
                    warn!(hash = %done.hash, error = %e, "event not published; job goes back to the queue");
                    settle(delivery.retry().await);
                    "retried"
                }
            }
        }
        Err(JobError::Permanent(reason)) => {
            warn!(key = %job.source.key, %reason, "permanent transcode failure");
            if let Some(hash) = job.hash {
                let event = Event::Failed {
                    v: V1,
                    hash,
                    reason: reason.clone(),
                    permanent: true,
                };
                if let Err(e) = publish_event(ctx, &event).await {
                    warn!(error = %e, "failed event not published");
                }
            }
            settle_dead(&delivery_reason(&reason), delivery).await;
            "failed"
        }
        Err(JobError::Transient(reason)) => {
            warn!(key = %job.source.key, %reason, "transient transcode failure; job goes back to the queue");
            settle(delivery.retry().await);
            "retried"
        }
    }
}

fn delivery_reason(reason: &str) -> String {
    reason.chars().take(1000).collect()
}

async fn settle_dead(reason: &str, delivery: Delivery) {
    settle(delivery.dead_letter(reason).await);
}

fn settle(result: Result<(), QueueError>) {
    if let Err(e) = result {
        // The broker redelivers what could not be settled.
        warn!(error = %e, "could not settle delivery");
    }
}

async fn publish_event(ctx: &Context, event: &Event) -> Result<(), QueueError> {
    publish_json(
        ctx.queue.as_ref(),
        Exchange::Events,
        &event.routing_key(),
        event,
    )
    .await
}

/// Retries `op` while it fails with a transient store error, with backoff,
/// for up to `budget`.
pub(crate) async fn with_retry<T, F, Fut>(
    budget: Duration,
    what: &str,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(200);
    loop {
        match op().await {
            Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "store unavailable, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// What one render job reads and writes.
struct JobEnv<'a> {
    opts: &'a WorkerOptions,
    store: &'a dyn Store,
    metrics: &'static WorkerMetrics,
}

/// Runs one render job to the end: every output stored and the manifest
/// written. Public so tests and tools can drive a job without a queue.
pub async fn render_job(
    opts: &WorkerOptions,
    store: &dyn Store,
    job: &RenderJob,
) -> Result<RenderOutcome, JobError> {
    let env = JobEnv {
        opts,
        store,
        metrics: WorkerMetrics::get(),
    };
    render_job_in(&env, job).await
}

async fn render_job_in(ctx: &JobEnv<'_>, job: &RenderJob) -> Result<RenderOutcome, JobError> {
    let layout = ctx.opts.layout;
    let budget = ctx.opts.transient_retry;
    if job.sizes.is_empty() {
        return Err(JobError::Permanent("job names no sizes".into()));
    }
    if let Some(bucket) = &job.source.bucket {
        let ours = ctx.store.describe();
        if ours != format!("s3://{bucket}") {
            return Err(JobError::Permanent(format!(
                "original is in bucket {bucket:?}, which this worker's store ({ours}) does not reach"
            )));
        }
    }
    let wanted: Vec<Size> = job
        .sizes
        .iter()
        .copied()
        .filter(|s| ctx.opts.limits.allows_on_request(*s))
        .collect();
    if wanted.is_empty() {
        return Err(JobError::Permanent(
            "every size asked for is above the dynamic size limit".into(),
        ));
    }

    // With a known hash and known dimensions, skip the download when every
    // output is already stored.
    let mut manifest = match job.hash {
        Some(hash) => {
            let key = layout.manifest(&hash);
            with_retry(budget, "read manifest", || {
                store::get_json::<Manifest>(ctx.store, &key)
            })
            .await?
        }
        None => None,
    };
    if let (Some(hash), Some(m), false) = (job.hash, manifest.as_ref(), job.force) {
        if m.has_dimensions() {
            let needed = sizes::render_set(&wanted, m.width, m.height);
            let missing = missing_outputs(ctx, &hash, &needed).await?;
            if missing.is_empty() {
                return Ok(RenderOutcome {
                    hash,
                    stored: needed,
                    written: Vec::new(),
                });
            }
        }
    }

    // Download the original once into a private temporary directory.
    let source_key = job.source.key.clone();
    let meta = with_retry(budget, "head original", || ctx.store.head(&source_key))
        .await?
        .ok_or_else(|| JobError::Permanent(format!("original missing: {source_key}")))?;
    // A video's poster is read frame by frame, not into memory: the video limit applies.
    let is_video_hint = job
        .media_type
        .as_deref()
        .is_some_and(|t| t.starts_with("video/"));
    let max_size = if is_video_hint {
        ctx.opts.video.max_input_bytes
    } else {
        ctx.opts.render.max_file_size
    };
    if meta.size > max_size {
        return Err(JobError::Permanent(format!(
            "original is {} bytes, over the {} byte limit",
            meta.size, max_size
        )));
    }
    let dir = tempfile::tempdir().map_err(|e| JobError::Transient(format!("temp dir: {e}")))?;
    let local = dir.path().join("original");
    let bytes_in = with_retry(budget, "download original", || {
        ctx.store.download(&source_key, &local)
    })
    .await?;
    ctx.metrics.bytes_in.inc_by(bytes_in);

    let hash = match job.hash {
        Some(h) => h,
        None => {
            let h = hash_file(&local).await?;
            let key = layout.manifest(&h);
            manifest = with_retry(budget, "read manifest", || {
                store::get_json::<Manifest>(ctx.store, &key)
            })
            .await?;
            h
        }
    };

    // Decode once and render every wanted size, off the async runtime.
    let render_opts = ctx.opts.render.clone();
    let video_opts = ctx.opts.video.clone();
    let media_hint = job.media_type.clone();
    let path = local.clone();
    let sizes_for_render = wanted.clone();
    let result = tokio::task::spawn_blocking(move || {
        // A video original: its poster frame goes through the image cascade.
        if video::file_looks_like_video(&path, media_hint.as_deref())? {
            video::render_poster_file(&path, &sizes_for_render, &render_opts, &video_opts)
        } else {
            render::render_file(&path, &sizes_for_render, &render_opts)
        }
    })
    .await
    .map_err(|e| JobError::Permanent(format!("renderer crashed: {e}")))??;
    ctx.metrics
        .decode_seconds
        .with_label_values(&[result.media_type])
        .observe(result.decode_millis / 1000.0);

    let stored: Vec<Size> = result.outputs.iter().map(|o| o.size).collect();
    let existing = if job.force {
        Vec::new()
    } else {
        let missing = missing_outputs(ctx, &hash, &stored).await?;
        stored
            .iter()
            .copied()
            .filter(|s| !missing.contains(s))
            .collect()
    };

    let mut outputs = Vec::new();
    let mut written = Vec::new();
    for out in &result.outputs {
        ctx.metrics
            .render_seconds
            .with_label_values(&[out.size.name()])
            .observe(out.millis / 1000.0);
        let key = layout.thumb(&hash, out.size);
        outputs.push((
            out.size.name().to_string(),
            OutputInfo {
                key: key.clone(),
                width: out.width,
                height: out.height,
                bytes: out.bytes.len() as u64,
            },
        ));
        if existing.contains(&out.size) {
            continue;
        }
        let body = Bytes::from(out.bytes.clone());
        let content_type = out.size.format().content_type();
        with_retry(budget, "store output", || {
            ctx.store.put(&key, body.clone(), content_type)
        })
        .await?;
        ctx.metrics.bytes_out.inc_by(out.bytes.len() as u64);
        written.push(out.size);
    }

    // The manifest: created when missing, outputs merged in.
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut m = manifest.unwrap_or_else(|| Manifest {
        v: V1,
        hash,
        original: job.source.clone(),
        media_type: result.media_type.to_string(),
        bytes: bytes_in,
        width: 0,
        height: 0,
        duration_ms: None,
        outputs: Default::default(),
        created_at: now.clone(),
        updated_at: now.clone(),
    });
    m.width = result.width;
    m.height = result.height;
    if m.bytes == 0 {
        m.bytes = bytes_in;
    }
    if m.media_type.is_empty() || m.media_type == "application/octet-stream" {
        m.media_type = result.media_type.to_string();
    }
    m.outputs.extend(outputs);
    m.updated_at = now;
    let manifest_key = layout.manifest(&hash);
    let body = Bytes::from(m.to_json());
    with_retry(budget, "store manifest", || {
        ctx.store
            .put(&manifest_key, body.clone(), "application/json")
    })
    .await?;

    Ok(RenderOutcome {
        hash,
        stored,
        written,
    })
}

/// The sizes among `sizes` whose thumbnail is not stored yet.
async fn missing_outputs(
    ctx: &JobEnv<'_>,
    hash: &AssetHash,
    sizes: &[Size],
) -> Result<Vec<Size>, JobError> {
    let mut missing = Vec::new();
    for &size in sizes {
        let key = ctx.opts.layout.thumb(hash, size);
        let found = with_retry(ctx.opts.transient_retry, "check output", || {
            ctx.store.head(&key)
        })
        .await?;
        if found.is_none() {
            missing.push(size);
        }
    }
    Ok(missing)
}

/// The SHA-1 of a local file, read in chunks off the runtime.
pub(crate) async fn hash_file(path: &Path) -> Result<AssetHash, JobError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = thumbfarm_shared::hash::HashingReader::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok::<_, std::io::Error>(hasher.finish())
    })
    .await
    .map_err(|e| JobError::Transient(format!("hashing task: {e}")))?
    .map_err(|e| JobError::Transient(format!("hashing original: {e}")))
}
