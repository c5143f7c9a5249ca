//! The application state and the router.

use crate::config::ApiOptions;
use crate::hot_cache::HotCache;
use crate::metrics::{self, Metrics};
use crate::ondemand::Coordinator;
use crate::routes::status::StatusBoard;
use crate::routes::{ingest, ops, previews, status, thumbs, videos};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::sync::Arc;
use thumbfarm_shared::queue::Queue;
use thumbfarm_shared::sizes::SizeLimits;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::tokens::TokenPolicy;
use thumbfarm_shared::KeyLayout;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    tokens: TokenPolicy,
    limits: SizeLimits,
    layout: KeyLayout,
    options: ApiOptions,
    metrics: Arc<Metrics>,
    coordinator: Coordinator,
    cache: HotCache,
    status: StatusBoard,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .field("queue", &self.queue.describe())
            .field("token_mode", &self.tokens.mode())
            .field("limits", &self.limits)
            .field("layout", &self.layout)
            .field("options", &self.options)
            .finish()
    }
}

impl AppState {
    /// The state of one API replica over any store and queue.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        tokens: TokenPolicy,
        limits: SizeLimits,
        layout: KeyLayout,
        options: ApiOptions,
    ) -> Self {
        // The metric names are literals checked by the unit tests, so
        // registering them cannot fail at run time.
        let metrics = Arc::new(Metrics::new().expect("static metric definitions are valid"));
        let coordinator = Coordinator::new(Arc::clone(&queue), limits, options.wait_timeout);
        let cache = HotCache::new(options.cache_bytes, options.cache_ttl);
        let status = StatusBoard::new(Arc::clone(&queue), Arc::clone(&metrics));
        AppState {
            inner: Arc::new(Inner {
                store,
                queue,
                tokens,
                limits,
                layout,
                options,
                metrics,
                coordinator,
                cache,
                status,
            }),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.inner.queue
    }

    /// The token policy.
    pub fn tokens(&self) -> &TokenPolicy {
        &self.inner.tokens
    }

    /// The size limits.
    pub fn limits(&self) -> &SizeLimits {
        &self.inner.limits
    }

    /// The key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.inner.layout
    }

    /// The API options.
    pub fn options(&self) -> &ApiOptions {
        &self.inner.options
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The on-demand coordinator.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    /// The in-memory cache of hot thumbnails and manifests.
    pub fn cache(&self) -> &HotCache {
        &self.inner.cache
    }

    /// The status page's recent events and rates.
    pub fn status(&self) -> &StatusBoard {
        &self.inner.status
    }
}

/// One route of the API: its path (axum syntax, which is also the OpenAPI
/// template syntax) and the methods registered on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The path template.
    pub path: &'static str,
    /// The methods, upper case (`GET` routes also answer `HEAD`).
    pub methods: &'static [&'static str],
}

/// The path of the thumbnail route.
pub const THUMB_ROUTE: &str = "/api/v1/t/{hash}/{token}/{size}";

/// The path of the video route.
pub const VIDEO_ROUTE: &str = "/api/v1/videos/{hash}/{token}/{format}";

/// Every route, with its handler: the single source of [`router`] and [`routes`].
fn route_table() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    let r = |path, methods, handler| (RouteInfo { path, methods }, handler);
    vec![
        r(THUMB_ROUTE, &["GET"], get(thumbs::thumbnail)),
        r(VIDEO_ROUTE, &["GET"], get(videos::video)),
        r(
            "/api/v1/previews/{hash}",
            &["GET"],
            get(previews::preview_list_route),
        ),
        r(
            "/api/v1/ingest",
            &["POST"],
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        ),
        r("/api/v1/openapi.json", &["GET"], get(ops::openapi)),
        r("/", &["GET"], get(status::page)),
        r("/api/v1/status", &["GET"], get(status::status_json)),
        r("/healthz", &["GET"], get(ops::healthz)),
        r("/readyz", &["GET"], get(ops::readyz)),
        r("/metrics", &["GET"], get(ops::metrics)),
    ]
}

/// Every route the router serves.
pub fn routes() -> Vec<RouteInfo> {
    route_table().into_iter().map(|(info, _)| info).collect()
}

/// The header set on answers of the fallback (no such route).
pub const NO_ROUTE_REASON: &str = "no such route";

async fn fallback() -> Response {
    let body = serde_json::json!({ "error": NO_ROUTE_REASON, "status": 404 });
    let mut response = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    response.headers_mut().insert(
        crate::error::REASON_HEADER,
        HeaderValue::from_static(NO_ROUTE_REASON),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The API router over `state`.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (info, handler) in route_table() {
        router = router.route(info.path, handler);
    }
    router
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state.metrics()),
            metrics::track,
        ))
        .with_state(state)
}
