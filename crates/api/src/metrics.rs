//! Prometheus metrics of the API, in a registry of its own, and the
//! middleware that records every HTTP request.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use thumbfarm_shared::queue::QueueStats;

/// Outcomes of an on-demand wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The thumbnail was rendered in time and served.
    Served,
    /// The deadline passed.
    Timeout,
    /// The render failed.
    Failed,
}

impl WaitOutcome {
    fn label(self) -> &'static str {
        match self {
            WaitOutcome::Served => "served",
            WaitOutcome::Timeout => "timeout",
            WaitOutcome::Failed => "failed",
        }
    }
}

/// The API's metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    cache: IntCounterVec,
    waits: IntCounterVec,
    wait_duration: HistogramVec,
    jobs: IntCounterVec,
    claims: IntCounterVec,
    ingests: IntCounterVec,
    queue_ready: IntGaugeVec,
    queue_unacked: IntGaugeVec,
    queue_consumers: IntGaugeVec,
    queue_rate: GaugeVec,
    planner_events: IntCounterVec,
    suppressed: IntCounterVec,
    /// Every job published (all routing keys), for the status page's rates.
    jobs_total: AtomicU64,
    /// The last `Queue::stats()` answer and when it came.
    last_queue_stats: Mutex<Option<(SystemTime, Vec<QueueStats>)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Registering a metric failed (a programming error: duplicate names).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "thumbfarm_http_requests_total",
                "HTTP requests by route and status.",
            ),
            &["route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "thumbfarm_http_request_duration_seconds",
                "HTTP request latency by route (until the response head).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route"],
        )?;
        let cache = IntCounterVec::new(
            Opts::new(
                "thumbfarm_thumb_cache_total",
                "Thumbnail requests answered from the store (hit) or needing a render (miss).",
            ),
            &["result"],
        )?;
        let waits = IntCounterVec::new(
            Opts::new(
                "thumbfarm_ondemand_waits_total",
                "On-demand waits by outcome.",
            ),
            &["outcome"],
        )?;
        let wait_duration = HistogramVec::new(
            HistogramOpts::new(
                "thumbfarm_ondemand_wait_seconds",
                "Time a request waited for an on-demand render, by outcome.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
            ]),
            &["outcome"],
        )?;
        let jobs = IntCounterVec::new(
            Opts::new(
                "thumbfarm_api_jobs_published_total",
                "Jobs published by the API, by routing key.",
            ),
            &["routing_key"],
        )?;
        let claims = IntCounterVec::new(
            Opts::new(
                "thumbfarm_api_ondemand_claims_total",
                "Cluster-wide claims of on-demand jobs, by outcome: taken (this replica publishes), held_elsewhere (another replica published it; this one waits for its event), error (broker did not answer; published anyway).",
            ),
            &["outcome"],
        )?;
        let ingests = IntCounterVec::new(
            Opts::new(
                "thumbfarm_ingest_total",
                "Uploads through the ingest route, by result.",
            ),
            &["result"],
        )?;
        let queue_ready = IntGaugeVec::new(
            Opts::new(
                "thumbfarm_queue_messages_ready",
                "Messages ready for delivery, per queue.",
            ),
            &["queue"],
        )?;
        let queue_unacked = IntGaugeVec::new(
            Opts::new(
                "thumbfarm_queue_messages_unacked",
                "Messages delivered and not yet settled, per queue.",
            ),
            &["queue"],
        )?;
        let queue_consumers = IntGaugeVec::new(
            Opts::new(
                "thumbfarm_queue_consumers",
                "Consumers attached, per queue.",
            ),
            &["queue"],
        )?;
        let queue_rate = GaugeVec::new(
            Opts::new(
                "thumbfarm_queue_rate",
                "Messages per second per queue as the broker measures them, by kind (publish, deliver, ack); only with --rabbitmq-management-url.",
            ),
            &["queue", "kind"],
        )?;
        let planner_events = IntCounterVec::new(
            Opts::new(
                "thumbfarm_planner_events_total",
                "Ingest events handled by the planner, by kind (file_created, s3, malformed) and outcome (planned, duplicate, ignored, dead_lettered, retried).",
            ),
            &["kind", "outcome"],
        )?;
        let suppressed = IntCounterVec::new(
            Opts::new(
                "thumbfarm_failed_requests_suppressed_total",
                "Requests answered 422 from a recorded permanent failure instead of rendering again, by output (image, avc).",
            ),
            &["output"],
        )?;
        registry.register(Box::new(suppressed.clone()))?;
        registry.register(Box::new(planner_events.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(cache.clone()))?;
        registry.register(Box::new(waits.clone()))?;
        registry.register(Box::new(wait_duration.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(claims.clone()))?;
        registry.register(Box::new(ingests.clone()))?;
        registry.register(Box::new(queue_ready.clone()))?;
        registry.register(Box::new(queue_unacked.clone()))?;
        registry.register(Box::new(queue_consumers.clone()))?;
        registry.register(Box::new(queue_rate.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            cache,
            waits,
            wait_duration,
            jobs,
            claims,
            ingests,
            queue_ready,
            queue_unacked,
            queue_consumers,
            queue_rate,
            planner_events,
            suppressed,
            jobs_total: AtomicU64::new(0),
            last_queue_stats: Mutex::new(None),
        })
    }

    /// Records one HTTP request.
    pub fn observe_request(&self, route: &str, status: StatusCode, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a thumbnail found in the store (`hit`) or not (`miss`).
    pub fn cache(&self, hit: bool) {
        self.cache
            .with_label_values(&[if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// Records the end of an on-demand wait.
    pub fn wait(&self, outcome: WaitOutcome, waited: Duration) {
        self.waits.with_label_values(&[outcome.label()]).inc();
        self.wait_duration
            .with_label_values(&[outcome.label()])
            .observe(waited.as_secs_f64());
    }

    /// Records a request answered from a recorded failure (`output`:
    /// `image` or `avc`).
    pub fn suppressed(&self, output: &str) {
        self.suppressed.with_label_values(&[output]).inc();
    }

    /// Records an on-demand job claim (`taken`, `held_elsewhere`, `error`).
    pub fn claim(&self, outcome: &str) {
        self.claims.with_label_values(&[outcome]).inc();
    }

    /// Records a published job.
    pub fn job_published(&self, routing_key: &str) {
        self.jobs.with_label_values(&[routing_key]).inc();
        self.jobs_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs published since start, all routing keys together.
    pub fn jobs_published_total(&self) -> u64 {
        self.jobs_total.load(Ordering::Relaxed)
    }

    /// Records one ingest event (or S3 record) handled by the planner.
    pub fn planner_event(&self, kind: &str, outcome: &str) {
        self.planner_events
            .with_label_values(&[kind, outcome])
            .inc();
    }

    /// The last queue depths set by [`Metrics::set_queue_stats`] and when.
    pub fn queue_stats_snapshot(&self) -> Option<(SystemTime, Vec<QueueStats>)> {
        self.last_queue_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records an upload (`new`, `known`, `rejected`, `error`).
    pub fn ingest(&self, result: &str) {
        self.ingests.with_label_values(&[result]).inc();
    }

    /// Sets the queue gauges from one `Queue::stats()` answer.
    pub fn set_queue_stats(&self, stats: &[QueueStats]) {
        *self
            .last_queue_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), stats.to_vec()));
        for s in stats {
            let q = [s.queue.as_str()];
            self.queue_ready
                .with_label_values(&q)
                .set(i64::try_from(s.ready).unwrap_or(i64::MAX));
            self.queue_unacked
                .with_label_values(&q)
                .set(i64::try_from(s.unacked).unwrap_or(i64::MAX));
            self.queue_consumers
                .with_label_values(&q)
                .set(i64::from(s.consumers));
        }
    }

    /// Sets the queue gauges and rates from the management API's answer.
    pub fn set_broker_queues(&self, queues: &[crate::background::management_api::BrokerQueue]) {
        let stats: Vec<QueueStats> = queues.iter().map(|q| q.stats.clone()).collect();
        self.set_queue_stats(&stats);
        for q in queues {
            for (kind, rate) in [
                ("publish", q.publish_rate),
                ("deliver", q.deliver_rate),
                ("ack", q.ack_rate),
            ] {
                self.queue_rate
                    .with_label_values(&[q.stats.queue.as_str(), kind])
                    .set(rate);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The registry, to add metrics of an embedding program.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Middleware: counts every request by its route template and status, and
/// times it.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    // MatchedPath is a shared string: cloning it allocates nothing.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.observe_request(route, response.status(), start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new().unwrap();
        m.observe_request("/healthz", StatusCode::OK, Duration::from_millis(3));
        m.cache(true);
        m.cache(false);
        m.wait(WaitOutcome::Timeout, Duration::from_secs(10));
        m.set_queue_stats(&[QueueStats {
            queue: "thumbfarm.render.ondemand".into(),
            ready: 7,
            unacked: 1,
            consumers: 2,
        }]);
        let text = m.render();
        assert!(
            text.contains("thumbfarm_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("thumbfarm_thumb_cache_total{result=\"miss\"} 1"));
        assert!(text.contains("thumbfarm_ondemand_waits_total{outcome=\"timeout\"} 1"));
        assert!(
            text.contains("thumbfarm_queue_messages_ready{queue=\"thumbfarm.render.ondemand\"} 7")
        );
        assert!(text.contains("thumbfarm_queue_consumers{queue=\"thumbfarm.render.ondemand\"} 2"));
    }
}
