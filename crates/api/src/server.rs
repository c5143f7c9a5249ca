//! `thumbfarm-api serve`: opens the store and the queue, binds the
//! listeners, runs the HTTP API and its background processes (the
//! queue-stats poller, the ingest planner when `--planner` says so, and any
//! [`Sidecar`] a composition adds: `thumbfarm serve` runs the worker this
//! way) until shutdown.

use crate::background::ingest_planner::{IngestPlanner, PlannerOptions};
use crate::background::management_api::{from_option, ManagementApi};
use crate::background::queue_stats::poll_queue_stats;
use crate::config::{PlannerMode, ServeArgs};
use crate::router::{router, split_routers};
use crate::state::AppState;
use futures::future::BoxFuture;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_shared::config::ConfigError;
use thumbfarm_shared::queue::Queue;
use thumbfarm_shared::store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An option is invalid or its backend unreachable.
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    /// A sidecar failed.
    #[error("{name}: {message}")]
    Sidecar {
        /// The sidecar's name.
        name: &'static str,
        /// Its error.
        message: String,
    },
}

/// What a sidecar's task ends with.
pub type SidecarResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Starts a sidecar's task over the server's store and queue, with the
/// server's stop token.
pub type SidecarStart = Box<
    dyn FnOnce(
            Arc<dyn Store>,
            Arc<dyn Queue>,
            CancellationToken,
        ) -> BoxFuture<'static, SidecarResult>
        + Send,
>;

/// A task that runs beside the HTTP server over the same store and queue
/// until the stop token is cancelled, then has `grace` to finish.
pub struct Sidecar {
    /// For logs and errors (`in-process worker`).
    pub name: &'static str,
    /// How long it may take to stop after the stop token is cancelled.
    pub grace: Duration,
    /// Starts the task.
    pub start: SidecarStart,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    planner: Option<PlannerOptions>,
    sidecars: Vec<Sidecar>,
    stats_interval: Duration,
    management: Option<ManagementApi>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("state", &self.state)
            .field(
                "sidecars",
                &self.sidecars.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether the options name neither a broker nor a bucket (single-machine
/// mode: in-process queue, local directory).
pub fn single_machine(args: &ServeArgs) -> bool {
    !args.store.uses_s3() && !args.queue.uses_amqp()
}

/// Whether `serve` runs the ingest planner in-process for these options.
pub fn runs_planner(args: &ServeArgs) -> bool {
    match args.api.planner {
        PlannerMode::On => true,
        PlannerMode::Off => false,
        PlannerMode::Auto => single_machine(args),
    }
}

impl Server {
    /// Validates the options, opens the store and the queue, and binds the
    /// listeners (`--listen 127.0.0.1:0` picks a free port; see
    /// [`Server::local_addr`]).
    pub async fn bind(args: &ServeArgs) -> Result<Server, ServeError> {
        let mut options = args.api.options()?;
        options.pregenerate_formats = args.sizes.pregenerate_formats()?;
        let tokens = args.tokens.policy()?;
        let layout = args.store.layout()?;
        let limits = args.sizes.limits();
        let store = args.store.open().await?;
        let queue = args.queue.open().await?;
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
        let admin = match args.api.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        if state.options().api_keys.is_empty() {
            tracing::warn!("no --api-keys configured: the preview list and ingest answer 401");
        }
        let planner =
            runs_planner(args).then(|| args.planner.options(layout, state.pregeneration().clone()));
        Ok(Server {
            listener,
            admin,
            state,
            planner,
            sidecars: Vec::new(),
            stats_interval: args.api.queue_stats.queue_stats_interval,
            management: from_option(
                args.api.queue_stats.rabbitmq_management_url.as_deref(),
                args.queue.amqp_url.as_deref(),
            )?,
            grace: args.api.shutdown_grace,
        })
    }

    /// Adds a task that runs beside the HTTP server (see [`Sidecar`]).
    pub fn with_sidecar(mut self, sidecar: Sidecar) -> Self {
        self.sidecars.push(sidecar);
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Http)
    }

    /// The address of the operator port (`--admin-listen`), if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The application state (store, queue, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests and sidecars finish (up to their grace), and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            listener,
            admin,
            state,
            planner,
            sidecars,
            stats_interval,
            management,
            grace,
        } = self;
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
        let mode = if sidecars.is_empty() {
            "API only (separate workers)".to_string()
        } else {
            let names: Vec<&str> = sidecars.iter().map(|s| s.name).collect();
            format!("with {}", names.join(", "))
        };
        if sidecars.is_empty() && !queue.describe().starts_with("amqp") {
            tracing::warn!(
                "in-process queue and no worker: nothing renders (run `thumbfarm serve` for single-machine mode, or set --amqp-url for separate workers)"
            );
        }
        tracing::info!(
            %addr,
            mode = %mode,
            store = %store.describe(),
            queue = %queue.describe(),
            token_mode = %state.tokens().mode(),
            static_limit = state.limits().static_limit(),
            dynamic_limit = state.limits().dynamic_limit(),
            "thumbfarm-api listening on http://{addr}"
        );

        let poller = tokio::spawn(poll_queue_stats(
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
            let planner = Arc::new(IngestPlanner::new(
                Arc::clone(&store),
                Arc::clone(&queue),
                Arc::clone(state.metrics()),
                opts,
            ));
            tokio::spawn(planner.run(stop.clone()))
        });
        let sidecars: Vec<_> = sidecars
            .into_iter()
            .map(|s| {
                let task = tokio::spawn((s.start)(
                    Arc::clone(&store),
                    Arc::clone(&queue),
                    stop.clone(),
                ));
                (s.name, s.grace, task)
            })
            .collect();

        let app = match admin {
            Some(admin) => {
                let (public, operator) = split_routers(state.clone());
                let admin_addr = admin.local_addr().map_err(ServeError::Http)?;
                tracing::info!(%admin_addr, "status page and /metrics on the operator port");
                let stop = stop.clone();
                tokio::spawn(async move {
                    let served = axum::serve(admin, operator)
                        .with_graceful_shutdown(stop.clone().cancelled_owned())
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "operator port failed");
                        stop.cancel();
                    }
                });
                public
            }
            None => router(state.clone()),
        };
        // Thumbnails are small answers: send them without waiting on Nagle.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
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
        for (name, sidecar_grace, task) in sidecars {
            let wait = sidecar_grace.max(grace) + Duration::from_secs(5);
            let failure = match tokio::time::timeout(wait, task).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(e.to_string()),
                Ok(Err(join)) => Some(format!("panicked: {join}")),
                Err(_) => {
                    tracing::warn!(name, "did not stop within the grace");
                    None
                }
            };
            if let Some(message) = failure {
                tracing::error!(name, error = %message, "sidecar failed");
                if result.is_ok() {
                    result = Err(ServeError::Sidecar { name, message });
                }
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
