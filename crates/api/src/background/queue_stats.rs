//! The queue-stats poller, a background process: keeps the queue gauges on
//! `/metrics` (and the status page's depths) fresh.

use super::management_api::ManagementApi;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_shared::queue::Queue;

/// Polls the queue depths every `interval` into the queue gauges, until
/// `shutdown` resolves: from RabbitMQ's management API when `management` is
/// set (unacked counts and rates too), else (or when it fails) over AMQP.
pub async fn poll_queue_stats(
    metrics: Arc<Metrics>,
    queue: Arc<dyn Queue>,
    management: Option<ManagementApi>,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Some(api) = &management {
            match api.queues().await {
                Ok(queues) if !queues.is_empty() => {
                    metrics.set_broker_queues(&queues);
                    continue;
                }
                Ok(_) => tracing::debug!("management API lists no thumbfarm queue yet"),
                Err(e) => tracing::debug!(error = %e, "falling back to AMQP queue stats"),
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), queue.stats()).await {
            Ok(Ok(stats)) => metrics.set_queue_stats(&stats),
            Ok(Err(e)) => tracing::debug!(error = %e, "queue stats unavailable"),
            Err(_) => tracing::debug!("queue stats timed out"),
        }
    }
}
