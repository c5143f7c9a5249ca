//! Prometheus metrics of the worker and its small HTTP server (`/metrics`,
//! `/healthz`). Metrics live in the process-wide default registry, so an API
//! running the worker in-process exposes them on its own `/metrics` too.

use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, TextEncoder,
};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The worker's metrics.
pub struct WorkerMetrics {
    /// Jobs settled, by queue and outcome (`rendered`, `skipped`, `failed`, `retried`, `malformed`).
    pub jobs: IntCounterVec,
    /// Whole-job duration by queue.
    pub job_seconds: HistogramVec,
    /// Per-size resize+encode duration.
    pub render_seconds: HistogramVec,
    /// Decode duration by media type.
    pub decode_seconds: HistogramVec,
    /// Bytes of originals read.
    pub bytes_in: IntCounter,
    /// Bytes of outputs written.
    pub bytes_out: IntCounter,
    /// Outputs (thumbnails, transcodes) written.
    pub outputs_written: IntCounter,
    /// Jobs being worked on now.
    pub in_flight: IntGauge,
    /// Render jobs that found their asset being rendered by another job
    /// and waited for it.
    pub claim_waits: IntCounter,
    /// How long those jobs waited.
    pub claim_wait_seconds: Histogram,
}

const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

impl WorkerMetrics {
    fn register() -> prometheus::Result<Self> {
        Ok(WorkerMetrics {
            jobs: register_int_counter_vec!(
                "thumbfarm_worker_jobs_total",
                "Jobs settled by the worker, by queue and outcome",
                &["queue", "outcome"]
            )?,
            job_seconds: register_histogram_vec!(
                "thumbfarm_worker_job_duration_seconds",
                "Time from taking a job to settling it",
                &["queue"],
                SECONDS_BUCKETS.to_vec()
            )?,
            render_seconds: register_histogram_vec!(
                "thumbfarm_worker_render_duration_seconds",
                "Resize and encode time of one output size",
                &["size"],
                SECONDS_BUCKETS.to_vec()
            )?,
            decode_seconds: register_histogram_vec!(
                "thumbfarm_worker_decode_duration_seconds",
                "Decode time of an original, by media type",
                &["media_type"],
                SECONDS_BUCKETS.to_vec()
            )?,
            bytes_in: register_int_counter!(
                "thumbfarm_worker_bytes_in_total",
                "Bytes of originals read from the store"
            )?,
            bytes_out: register_int_counter!(
                "thumbfarm_worker_bytes_out_total",
                "Bytes of outputs written to the store"
            )?,
            outputs_written: register_int_counter!(
                "thumbfarm_worker_outputs_written_total",
                "Thumbnails written to the store (a key written twice is a duplicate render)"
            )?,
            in_flight: register_int_gauge!(
                "thumbfarm_worker_jobs_in_flight",
                "Jobs being worked on now"
            )?,
            claim_waits: register_int_counter!(
                "thumbfarm_worker_render_claim_waits_total",
                "Render jobs that found their asset being rendered by another job and waited for it"
            )?,
            claim_wait_seconds: register_histogram!(
                "thumbfarm_worker_render_claim_wait_seconds",
                "How long a render job waited for another job's render of the same asset",
                SECONDS_BUCKETS.to_vec()
            )?,
        })
    }

    /// The process-wide metrics, registered on first use.
    pub fn get() -> &'static WorkerMetrics {
        static METRICS: OnceLock<WorkerMetrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            // Registration only fails on a duplicate name, which cannot happen
            // behind the OnceLock.
            WorkerMetrics::register().unwrap_or_else(|e| panic!("worker metrics: {e}"))
        })
    }
}

/// Everything in the default registry, in Prometheus text format.
pub fn render_text() -> String {
    TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap_or_default()
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    render_text(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                match crate::health::Health::get().readiness() {
                    Ok(()) => (axum::http::StatusCode::OK, "ready\n".to_string()),
                    Err(cause) => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {cause}\n"),
                    ),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "worker metrics listening");
    axum::serve(listener, app).await
}
