//! `POST /api/v1/assets/{hash}/retry` (API key): clears the asset's recorded
//! permanent failures and renders the failed outputs again, e.g. after an
//! operator raised a limit or fixed a decoder.

use crate::http::error::ApiError;
use crate::routes::manifests::keyed_manifest;
use crate::services::failures::{retry_failed, RetryError};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The answer of the retry route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryResponse {
    /// The asset.
    pub hash: String,
    /// The outputs whose failures were cleared (`image`, `avc`, size names).
    pub cleared: Vec<String>,
    /// Jobs published for them.
    pub jobs: usize,
}

/// The retry handler: 202 with the cleared outputs when jobs were published,
/// 200 with an empty list when nothing had failed.
pub async fn retry_handler(
    state: &AppState,
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let manifest = keyed_manifest(state, headers, path).await?;
    let retried = retry_failed(state, &manifest).await.map_err(|e| match e {
        RetryError::Store(e) => ApiError::from_manifest_read(e),
        RetryError::Queue(e) => ApiError::Unavailable(e.to_string()),
    })?;
    let status = if retried.jobs > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = RetryResponse {
        hash: manifest.hash.to_string(),
        cleared: retried.cleared,
        jobs: retried.jobs,
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/v1/assets/{hash}/retry`.
pub async fn retry_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    match retry_handler(&state, &headers, path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}
