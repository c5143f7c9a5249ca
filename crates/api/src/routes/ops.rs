//! Operations: `/healthz`, `/readyz`, `/metrics`, `/api/v1/openapi.json`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

/// How long a readiness check waits for the store and the queue.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /healthz`: 200 whenever the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the store and the queue answer their pings, else
/// 503 naming what failed.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (store, queue) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, state.store().ping()),
        tokio::time::timeout(READY_TIMEOUT, state.queue().ping()),
    );
    let store = match store {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let queue = match queue {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let ready = store.is_ok() && queue.is_ok();
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    if !ready {
        tracing::warn!(store = %describe(&store), queue = %describe(&queue), "not ready");
    }
    let body = serde_json::json!({
        "ready": ready,
        "store": describe(&store),
        "queue": describe(&queue),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3 document.
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}
