//! `thumbfarm-api planner`: the ingest planner as its own process, with
//! `/metrics` and `/healthz`.

use crate::background::ingest_planner::IngestPlanner;
use crate::background::management_api::from_option;
use crate::background::queue_stats::poll_queue_stats;
use crate::config::PlannerArgs;
use crate::metrics::Metrics;
use crate::planning::jobs::Pregeneration;
use std::future::IntoFuture;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `thumbfarm-api planner`: opens the store and the queue, serves
/// /metrics and /healthz, and plans until `shutdown` resolves.
pub async fn run<F>(args: &PlannerArgs, shutdown: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let layout = args.store.layout()?;
    let pregen = Pregeneration::new(args.sizes.limits(), &args.sizes.pregenerate_formats()?);
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
    let management = from_option(
        args.queue_stats.rabbitmq_management_url.as_deref(),
        args.queue.amqp_url.as_deref(),
    )?;
    let poller = tokio::spawn(poll_queue_stats(
        Arc::clone(&metrics),
        Arc::clone(&queue),
        management,
        args.queue_stats.queue_stats_interval,
        stop.clone(),
    ));
    let planner = Arc::new(IngestPlanner::new(
        store,
        queue,
        metrics,
        args.tuning.options(layout, pregen),
    ));
    let result = planner.run(stop.clone()).await;
    stop.cancel();
    poller.abort();
    let _ = http.await;
    result.map_err(Into::into)
}
