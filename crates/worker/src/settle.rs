//! Settling a delivery, the same way for every job kind: run the job, then
//! publish its event and ack; record a permanent failure in the asset's
//! manifest, announce it (`failed.<hash>`) and dead-letter it at once (the
//! reason in a header); give a transient failure back to the queue (and
//! record why when the broker is about to dead-letter it at the delivery
//! limit). A store that refuses the worker's configuration keeps the job in
//! hand and retries it after a pause, unready, without burning deliveries.

use crate::health::Health;
use crate::jobs::{self, record_failure, JobContext};
use crate::metrics::WorkerMetrics;
use crate::options::WorkerOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::IMAGE_OUTPUT;
use thumbfarm_shared::messages::{Event, Job, V1};
use thumbfarm_shared::queue::{publish_json, Delivery, Exchange, Queue, QueueError};
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::store::Store;
use tracing::{info, warn};

/// The longest reason kept in the dead-letter header.
pub const MAX_REASON_CHARS: usize = 1000;

/// What the worker's jobs run against.
pub struct Services {
    /// The worker's options.
    pub opts: WorkerOptions,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The queue (deliveries, events).
    pub queue: Arc<dyn Queue>,
    /// The metrics.
    pub metrics: &'static WorkerMetrics,
}

/// Works on one delivery and settles it; counts it in the job metrics.
pub async fn handle(services: &Services, delivery: Delivery) {
    let started = Instant::now();
    let queue_label = delivery.queue.name();
    let outcome = match Job::parse(&delivery.routing_key, &delivery.body) {
        Err(e) => {
            warn!(queue = queue_label, error = %e, "dead-lettering malformed message");
            dead_letter(delivery, &e.to_string()).await;
            "malformed"
        }
        Ok(job) => {
            let ctx = JobContext {
                opts: &services.opts,
                store: services.store.as_ref(),
                queue: Some(services.queue.as_ref()),
                metrics: services.metrics,
            };
            let result = run_until_configured(services, &ctx, &job).await;
            settle(services, &job, delivery, result, started).await
        }
    };
    services
        .metrics
        .jobs
        .with_label_values(&[queue_label, outcome])
        .inc();
    services
        .metrics
        .job_seconds
        .with_label_values(&[queue_label])
        .observe(started.elapsed().as_secs_f64());
}

/// Pause between attempts while the store refuses the configuration.
const CONFIG_PAUSE: Duration = Duration::from_secs(10);

/// Runs the job; while the store refuses the worker's configuration, marks
/// the worker unready and runs it again after a pause (for up to the
/// transient-retry budget; the delivery stays in hand, so its delivery
/// count is not used up), then lets it go back to the queue.
async fn run_until_configured(
    services: &Services,
    ctx: &JobContext<'_>,
    job: &Job,
) -> Result<jobs::Done, WorkError> {
    let deadline = Instant::now() + services.opts.transient_retry;
    loop {
        match jobs::run(ctx, job).await {
            Err(WorkError::Config(cause)) => {
                Health::get().config_error(&cause);
                if Instant::now() + CONFIG_PAUSE >= deadline {
                    return Err(WorkError::Config(cause));
                }
                tokio::time::sleep(CONFIG_PAUSE).await;
            }
            other => {
                Health::get().ok();
                return other;
            }
        }
    }
}

/// What a job is about, for records and logs.
struct About<'a> {
    kind: &'static str,
    hash: Option<thumbfarm_shared::AssetHash>,
    source: &'a thumbfarm_shared::messages::SourceRef,
    media_type: &'a str,
    /// The output a failure record is kept under.
    output: &'static str,
}

fn about(job: &Job) -> About<'_> {
    match job {
        Job::Render(j) => About {
            kind: "render",
            hash: j.hash,
            source: &j.source,
            media_type: j
                .media_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
            output: IMAGE_OUTPUT,
        },
        Job::Transcode(j) => About {
            kind: "transcode",
            hash: j.hash,
            source: &j.source,
            media_type: "application/octet-stream",
            output: AVC,
        },
    }
}

/// Keeps a permanent failure in the asset's manifest (best effort: a store
/// that fails now only costs a second render attempt later).
async fn remember(services: &Services, about: &About<'_>, reason: &str) {
    let Some(hash) = about.hash else { return };
    let ctx = JobContext {
        opts: &services.opts,
        store: services.store.as_ref(),
        queue: None,
        metrics: services.metrics,
    };
    let result = record_failure(
        &ctx,
        hash,
        about.source,
        about.media_type,
        about.output,
        reason,
    )
    .await;
    if let Err(e) = result {
        warn!(%hash, error = %e, "failure not recorded");
    }
}

/// The one settle function: every job kind ends here. Returns the outcome
/// label.
async fn settle(
    services: &Services,
    job: &Job,
    delivery: Delivery,
    result: Result<jobs::Done, WorkError>,
    started: Instant,
) -> &'static str {
    let about = about(job);
    let (kind, hash, key) = (about.kind, about.hash, about.source.key.as_str());
    match result {
        Ok(done) => match publish(services, &done.event).await {
            Ok(()) => {
                let ms = started.elapsed().as_millis() as u64;
                info!(hash = %done.event.hash(), kind, outcome = done.outcome, summary = %done.summary, ms, "job done");
                log_settle(delivery.ack().await);
                done.outcome
            }
            Err(e) => {
                warn!(hash = %done.event.hash(), kind, error = %e, "event not published; job goes back to the queue");
                log_settle(delivery.retry().await);
                "retried"
            }
        },
        Err(WorkError::Permanent(reason)) => {
            warn!(%key, kind, %reason, "permanent failure");
            remember(services, &about, &reason).await;
            if let Some(hash) = hash {
                let event = Event::Failed {
                    v: V1,
                    hash,
                    reason: reason.clone(),
                    permanent: true,
                };
                if let Err(e) = publish(services, &event).await {
                    warn!(error = %e, "failed event not published");
                }
            }
            dead_letter(delivery, &reason).await;
            "failed"
        }
        Err(WorkError::Transient(reason)) => {
            // The broker dead-letters it after this return: say why.
            let last = delivery.delivery_count.saturating_add(1) > services.opts.delivery_limit;
            if last {
                let why = format!(
                    "gave up after {} deliveries: {reason}",
                    delivery.delivery_count.saturating_add(1)
                );
                warn!(%key, kind, reason = %why, "last delivery failed; the broker dead-letters it");
                remember(services, &about, &why).await;
            } else {
                warn!(%key, kind, %reason, "transient failure; job goes back to the queue");
            }
            log_settle(delivery.retry().await);
            "retried"
        }
        Err(WorkError::Config(reason)) => {
            warn!(%key, kind, %reason, "store misconfigured; job goes back to the queue");
            log_settle(delivery.retry().await);
            "retried"
        }
    }
}

/// Dead-letters with the reason (cut to [`MAX_REASON_CHARS`]).
async fn dead_letter(delivery: Delivery, reason: &str) {
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    log_settle(delivery.dead_letter(&reason).await);
}

fn log_settle(result: Result<(), QueueError>) {
    if let Err(e) = result {
        // The broker redelivers what could not be settled.
        warn!(error = %e, "could not settle delivery");
    }
}

async fn publish(services: &Services, event: &Event) -> Result<(), QueueError> {
    publish_json(
        services.queue.as_ref(),
        Exchange::Events,
        &event.routing_key(),
        event,
    )
    .await
}
