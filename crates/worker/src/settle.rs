//! Settling a delivery, the same way for every job kind: run the job, then
//! publish its event and ack; dead-letter a permanent failure at once (with
//! the reason in a header and a `failed.<hash>` event); give a transient
//! failure back to the queue.

use crate::jobs::{self, JobContext};
use crate::metrics::WorkerMetrics;
use crate::options::WorkerOptions;
use std::sync::Arc;
use std::time::Instant;
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
            let result = jobs::run(&ctx, &job).await;
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

/// The one settle function: every job kind ends here. Returns the outcome
/// label.
async fn settle(
    services: &Services,
    job: &Job,
    delivery: Delivery,
    result: Result<jobs::Done, WorkError>,
    started: Instant,
) -> &'static str {
    let (kind, hash, key) = match job {
        Job::Render(j) => ("render", j.hash, j.source.key.as_str()),
        Job::Transcode(j) => ("transcode", j.hash, j.source.key.as_str()),
    };
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
            warn!(%key, kind, %reason, "transient failure; job goes back to the queue");
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
