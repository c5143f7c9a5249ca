//! `thumbfarm-api serve`: opens the store and the queue, binds the listener,
//! runs the HTTP API (and in single-machine mode the worker) until shutdown.

use crate::app::{router, AppState};
use crate::config::{InProcessWorker, OptionError, PlannerMode, ServeArgs};
use crate::ingest_events::{Planner, PlannerOptions};
use crate::metrics;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_shared::config::ConfigError;
use thumbfarm_shared::queue::Queue;
use thumbfarm_shared::store::Store;
use thumbfarm_worker::consumer::{self, WorkerOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A shared option (store, queue, tokens) is invalid or its backend unreachable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An API option is invalid.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    /// The in-process worker failed.
    #[error("in-process worker: {0}")]
    Worker(String),
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    run_worker: bool,
    worker_options: WorkerOptions,
    planner: Option<PlannerOptions>,
    stats_interval: Duration,
    management: Option<crate::broker_stats::ManagementApi>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("state", &self.state)
            .field("run_worker", &self.run_worker)
            .finish()
    }
}

/// Whether `serve` runs the ingest planner in-process for these options.
pub fn runs_planner(args: &ServeArgs) -> bool {
    match args.api.planner {
        PlannerMode::On => true,
        PlannerMode::Off => false,
        PlannerMode::Auto => !args.store.uses_s3() && !args.queue.uses_amqp(),
    }
}

/// Whether `serve` runs the worker in-process for these options.
pub fn runs_worker(args: &ServeArgs) -> bool {
    match args.api.in_process_worker {
        InProcessWorker::On => true,
        InProcessWorker::Off => false,
        InProcessWorker::Auto => !args.store.uses_s3() && !args.queue.uses_amqp(),
    }
}

impl Server {
    /// Validates the options, opens the store and the queue, and binds the
    /// listener (`--listen 127.0.0.1:0` picks a free port; see
    /// [`Server::local_addr`]).
    pub async fn bind(args: &ServeArgs) -> Result<Server, ServeError> {
        let options = args.api.options()?;
        let tokens = args.tokens.policy()?;
        let layout = args.store.layout()?;
        let limits = args.sizes.limits();
        let store = args.store.open().await?;
        let queue = args.queue.open().await?;
        let run_worker = runs_worker(args);
        let state = AppState::new(
            Arc::clone(&store),
            Arc::clone(&queue),
            tokens,
            limits,
            layout,
            options,
        );
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: args.listen,
                source,
            })?;
        let render = args.render.options()?;
        let worker_options = args.consumer.options(render, layout, limits)?;
        if state.options().api_keys.is_empty() {
            tracing::warn!("no --api-keys configured: the preview list and ingest answer 401");
        }
        if !run_worker && !args.queue.uses_amqp() {
            tracing::warn!(
                "in-process queue without the in-process worker: on-demand requests will time out"
            );
        }
        let planner = runs_planner(args).then(|| args.planner.options(layout, limits));
        Ok(Server {
            listener,
            state,
            run_worker,
            worker_options,
            planner,
            stats_interval: args.api.queue_stats_interval,
            management: crate::broker_stats::from_option(
                args.api.rabbitmq_management_url.as_deref(),
                args.queue.amqp_url.as_deref(),
            )?,
            grace: args.api.shutdown_grace,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Http)
    }

    /// The application state (store, queue, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests and jobs finish (up to the shutdown grace), and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            listener,
            state,
            run_worker,
            worker_options,
            planner,
            stats_interval,
            management,
            grace,
        } = self;
        let worker_grace_seconds = worker_options.grace_seconds;
        let addr = listener.local_addr().map_err(ServeError::Http)?;
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!("shutting down");
                stop.cancel();
            });
        }
        let store: Arc<dyn Store> = Arc::clone(state.store());
        let queue: Arc<dyn Queue> = Arc::clone(state.queue());
        let mode = if run_worker {
            "single-machine (in-process worker)"
        } else {
            "API only (separate workers)"
        };
        tracing::info!(
            %addr,
            mode,
            store = %store.describe(),
            queue = %queue.describe(),
            token_mode = %state.tokens().mode(),
            static_limit = state.limits().static_limit(),
            dynamic_limit = state.limits().dynamic_limit(),
            "thumbfarm-api listening on http://{addr}"
        );

        let poller = tokio::spawn(metrics::poll_queue_stats(
            Arc::clone(state.metrics()),
            Arc::clone(&queue),
            management,
            stats_interval,
            stop.clone(),
        ));
        if let Err(e) = state.coordinator().ensure_listening().await {
            tracing::warn!(error = %e, "cannot subscribe to events yet; will retry on the first miss");
        }
        if let Err(e) = state.status().ensure_listening().await {
            tracing::warn!(error = %e, "status page: cannot subscribe to events yet; will retry when it is opened");
        }
        let planner = planner.map(|opts| {
            let planner = Arc::new(Planner::new(
                Arc::clone(&store),
                Arc::clone(&queue),
                Arc::clone(state.metrics()),
                opts,
            ));
            tokio::spawn(planner.run(stop.clone()))
        });
        let worker = run_worker.then(|| {
            tokio::spawn(consumer::run(
                worker_options,
                Arc::clone(&store),
                Arc::clone(&queue),
                stop.clone().cancelled_owned(),
            ))
        });

        let app = router(state.clone());
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
        tokio::pin!(server);
        let drained = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let http_result = tokio::select! {
            r = &mut server => r.map_err(ServeError::Http),
            _ = drained => {
                tracing::warn!("requests still in flight after the shutdown grace; closing");
                Ok(())
            }
        };
        // Whatever ended the HTTP server ends the rest too.
        stop.cancel();
        state.coordinator().shutdown();
        state.status().shutdown().await;
        poller.abort();
        if let Some(planner) = planner {
            match tokio::time::timeout(grace, planner).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "in-process planner stopped"),
                Ok(Err(join)) => tracing::error!(error = %join, "in-process planner panicked"),
                Ok(Ok(Ok(()))) => {}
                Err(_) => tracing::warn!("in-process planner did not stop within the grace"),
            }
        }
        let mut result = http_result;
        if let Some(worker) = worker {
            let worker_grace = Duration::from_secs(worker_grace_seconds).max(grace);
            match tokio::time::timeout(worker_grace + Duration::from_secs(5), worker).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::error!(error = %e, "in-process worker failed");
                    if result.is_ok() {
                        result = Err(ServeError::Worker(e.to_string()));
                    }
                }
                Ok(Err(join)) => {
                    tracing::error!(error = %join, "in-process worker panicked");
                    if result.is_ok() {
                        result = Err(ServeError::Worker(join.to_string()));
                    }
                }
                Err(_) => tracing::warn!("in-process worker did not stop within the grace"),
            }
        }
        tracing::info!("stopped");
        result
    }
}

/// Binds and serves until `shutdown` resolves (see [`Server`]).
pub async fn serve<F>(args: &ServeArgs, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    Server::bind(args).await?.run(shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
