//! The router: every route of the API with its handler and listener, in
//! one table ([`route_table`]) that also feeds the OpenAPI check.

use crate::http::error::REASON_HEADER;
use crate::metrics;
use crate::routes::{assets, ingest, ops, previews, status, thumbs, videos};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::sync::Arc;

/// One route of the API: its path (axum syntax, which is also the OpenAPI
/// template syntax) and the methods registered on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The path template.
    pub path: &'static str,
    /// The methods, upper case (`GET` routes also answer `HEAD`).
    pub methods: &'static [&'static str],
    /// Which listener serves it.
    pub listener: Listener,
}

/// Which listener serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public port only (thumbnails, videos, the keyed API).
    Public,
    /// The operator port when `--admin-listen` is set, else the public one
    /// (status page, status JSON, metrics).
    Operator,
    /// Both (the probes).
    Both,
}

/// The path of the thumbnail route.
pub const THUMB_ROUTE: &str = "/api/v1/t/{hash}/{token}/{size}";

/// The path of the video route.
pub const VIDEO_ROUTE: &str = "/api/v1/videos/{hash}/{token}/{format}";

/// Every route, with its handler: the single source of [`router`] and [`routes`].
fn route_table() -> Vec<(RouteInfo, MethodRouter<AppState>)> {
    use Listener::{Both, Operator, Public};
    let r = |path, methods, listener, handler| {
        (
            RouteInfo {
                path,
                methods,
                listener,
            },
            handler,
        )
    };
    vec![
        r(THUMB_ROUTE, &["GET"], Public, get(thumbs::thumbnail)),
        r(VIDEO_ROUTE, &["GET"], Public, get(videos::video)),
        r(
            "/api/v1/previews/{hash}",
            &["GET"],
            Public,
            get(previews::preview_list_route),
        ),
        r(
            "/api/v1/ingest",
            &["POST"],
            Public,
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        ),
        r(
            "/api/v1/assets/{hash}/retry",
            &["POST"],
            Public,
            post(assets::retry_route),
        ),
        r("/api/v1/openapi.json", &["GET"], Public, get(ops::openapi)),
        r("/", &["GET"], Operator, get(status::page)),
        r(
            "/api/v1/status",
            &["GET"],
            Operator,
            get(status::status_json),
        ),
        r("/healthz", &["GET"], Both, get(ops::healthz)),
        r("/readyz", &["GET"], Both, get(ops::readyz)),
        r("/metrics", &["GET"], Operator, get(ops::metrics)),
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
    response
        .headers_mut()
        .insert(REASON_HEADER, HeaderValue::from_static(NO_ROUTE_REASON));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The API router over `state`: every route on one listener.
pub fn router(state: AppState) -> Router {
    build(state, |_| true)
}

/// The routers of a deployment with an operator port (`--admin-listen`):
/// the public one without the status page and metrics, and the operator one
/// with them (both answer the probes).
pub fn split_routers(state: AppState) -> (Router, Router) {
    let public = build(state.clone(), |l| l != Listener::Operator);
    let admin = build(state, |l| l != Listener::Public);
    (public, admin)
}

fn build(state: AppState, keep: impl Fn(Listener) -> bool) -> Router {
    let mut router = Router::new();
    for (info, handler) in route_table() {
        if keep(info.listener) {
            router = router.route(info.path, handler);
        }
    }
    router
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state.metrics()),
            metrics::track,
        ))
        .with_state(state)
}
