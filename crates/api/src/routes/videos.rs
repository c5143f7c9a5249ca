//! `GET /api/v1/videos/{hash}/{token}/{format}`: a video's H.264/AVC MP4,
//! streamed with `Range` support.
//!
//! The hash and token are checked as for thumbnails (400, 403); an unknown
//! format is 404, as is an asset without a video (a video, a GIF, or a still
//! whose manifest names one: motion photo, animation, linked Live Photo,
//! whose MOV's transcode is served). A stored
//! transcode is served with `Accept-Ranges: bytes`: one range is 206 with
//! `Content-Range`, a range past the end is 416, several ranges get the whole
//! file (200). A missing transcode is enqueued on `transcode` (one job per
//! asset and replica); the request waits up to `--video-wait` for videos no
//! longer than `--video-wait-max-duration`, and otherwise answers 202 with
//! `Retry-After`. A transcode that failed for good is 422 with the reason.

use crate::http::entity::{entity_headers, etag_matches};
use crate::http::error::{ThumbError, REASON_HEADER};
use crate::http::range::{
    content_range, if_range_holds, parse_range, unsatisfied_range, RangeRequest,
};
use crate::routes::manifests::cached_manifest;
use crate::routes::manifests::unavailable;
use crate::services::ondemand::Signal;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use std::time::Duration;
use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::{Manifest, VideoKind};
use thumbfarm_shared::store::{ObjectMeta, StoreError};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};
use thumbfarm_shared::AssetHash;

/// The video handler.
pub async fn video(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    match serve_video(&state, &method, &headers, path).await {
        Ok(response) => response,
        Err(e) => {
            if matches!(e, ThumbError::Unavailable { .. }) {
                tracing::warn!(error = %e, "video request failed");
            }
            e.into_response()
        }
    }
}

/// Whether `token` grants the video `format` (known or not) of `hash`.
pub fn video_token_allows(
    tokens: &TokenPolicy,
    hash: &AssetHash,
    format: &str,
    token: &str,
) -> bool {
    match tokens {
        // A signature over a format that does not exist cannot be checked.
        TokenPolicy::Signed(_) if format != AVC => false,
        policy => policy.verify(hash, Subject::Video(AVC), token),
    }
}

/// Whether a transcode of this asset can be made: videos, (animated) GIFs,
/// and stills with a video (motion photos, linked Live Photos, animations).
fn can_transcode(manifest: &Manifest) -> bool {
    manifest.video_kind().is_some()
}

/// The asset whose transcode serves `manifest`'s video: a linked Live
/// Photo's MOV (its video is stored once, under the MOV's hash), else the
/// asset itself.
async fn video_asset(state: &AppState, manifest: Manifest) -> Result<Manifest, ThumbError> {
    let linked = manifest
        .video
        .as_ref()
        .filter(|v| v.kind == VideoKind::LivePhoto)
        .and_then(|v| v.source_hash);
    match linked {
        Some(mov) => Ok((*cached_manifest(state, &mov).await?).clone()),
        None => Ok(manifest),
    }
}

/// Whether a request for a missing transcode of `manifest` waits for it.
fn waits_for(state: &AppState, manifest: &Manifest) -> bool {
    let options = state.options();
    if options.video_wait.is_zero() {
        return false;
    }
    match manifest.duration_ms {
        Some(ms) => Duration::from_millis(ms) <= options.video_wait_max_duration,
        // GIFs and videos not probed yet: the wait is bounded anyway.
        None => true,
    }
}

async fn serve_video(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ThumbError> {
    let Ok(Path((hash, token, format))) = path else {
        return Err(ThumbError::BadHash);
    };
    let hash = AssetHash::parse(&hash).map_err(|_| ThumbError::BadHash)?;
    if !video_token_allows(state.tokens(), &hash, &format, &token) {
        return Err(ThumbError::BadToken);
    }
    if format != AVC {
        return Err(ThumbError::UnknownFormat);
    }
    let manifest = cached_manifest(state, &hash).await?;
    if !can_transcode(&manifest) {
        return Err(ThumbError::NotVideo);
    }
    let manifest = video_asset(state, (*manifest).clone()).await?;
    let hash = manifest.hash;
    let key = state.layout().video(&hash);
    if let Some(meta) = head(state, &key).await? {
        return respond(state, &key, meta, method, headers).await;
    }

    // Missing. A transcode that failed permanently is not tried again
    // until an operator clears the failure.
    if let Some(failure) = manifest.failure_for(AVC) {
        state.metrics().suppressed(AVC);
        return Err(ThumbError::Failed {
            reason: failure.reason.clone(),
        });
    }

    // Enqueue (or join) the transcode.
    let mut ticket = state
        .coordinator()
        .request_transcode(&manifest)
        .await
        .map_err(|e| unavailable(state, "publishing transcode job", e))?;
    if !waits_for(state, &manifest) {
        return Ok(accepted(state));
    }
    let deadline = tokio::time::Instant::now() + state.options().video_wait;
    loop {
        let Ok(signal) = tokio::time::timeout_at(deadline, ticket.next()).await else {
            tracing::info!(%hash, "transcode not ready before the deadline");
            return Ok(accepted(state));
        };
        match signal {
            Signal::Failed {
                reason,
                permanent: true,
            } => {
                state.cache().forget_manifest(&hash);
                return Err(ThumbError::Failed { reason });
            }
            Signal::Failed { reason, .. } => {
                return Err(unavailable(state, "transcode failed", reason))
            }
            Signal::Rendered(_) | Signal::Pending => {
                if let Some(meta) = head(state, &key).await? {
                    return respond(state, &key, meta, method, headers).await;
                }
                if ticket.is_closed() {
                    return Ok(accepted(state));
                }
            }
        }
    }
}

async fn head(state: &AppState, key: &str) -> Result<Option<ObjectMeta>, ThumbError> {
    state
        .store()
        .head(key)
        .await
        .map_err(|e| unavailable(state, "reading video", e))
}

/// 202: the transcode is queued; come back after `Retry-After`.
fn accepted(state: &AppState) -> Response {
    let retry_after = state.options().retry_after.as_secs().max(1);
    let body = serde_json::json!({
        "status": "pending",
        "reason": "transcode queued",
        "retry_after": retry_after,
    });
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(REASON_HEADER, HeaderValue::from_static("transcode queued"));
    response
}

/// Serves the stored transcode: 304, 416, 206 or 200.
async fn respond(
    state: &AppState,
    key: &str,
    meta: ObjectMeta,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ThumbError> {
    let etag = meta.etag.trim_matches('"').to_string();
    let mut base = HeaderMap::new();
    entity_headers(&state.options().cache_control, &meta, &mut base);
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| etag_matches(v, &etag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().extend(base);
        return Ok(response);
    }
    let last_modified = base
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| if_range_holds(v, &etag, last_modified.as_deref()));
    let request = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if if_range_ok => parse_range(value, meta.size),
        _ => RangeRequest::Full,
    };
    let (status, range) = match request {
        RangeRequest::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let h = response.headers_mut();
            h.extend(base);
            if let Ok(v) = HeaderValue::from_str(&unsatisfied_range(meta.size)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(
                REASON_HEADER,
                HeaderValue::from_static("range not satisfiable"),
            );
            return Ok(response);
        }
        RangeRequest::Partial(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
        RangeRequest::Full => (StatusCode::OK, None),
    };
    let length = range.map_or(meta.size, |r| r.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let stream = match state.store().get_stream(key, range).await {
            Ok((_, stream)) => stream,
            Err(StoreError::RangeNotSatisfiable { .. }) | Err(StoreError::NotFound(_)) => {
                // Replaced or deleted since the HEAD: let the client retry.
                return Err(unavailable(state, "reading video", "object changed"));
            }
            Err(e) => return Err(unavailable(state, "reading video", e)),
        };
        let key_for_log = key.to_string();
        Body::from_stream(stream.inspect_err(move |e| {
            tracing::warn!(key = %key_for_log, error = %e, "video stream broke off");
        }))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.extend(base);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(range) = range {
        if let Ok(v) = HeaderValue::from_str(&content_range(range, meta.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::tokens::SigningKey;

    #[test]
    fn signed_tokens_cover_one_format_of_one_asset() {
        let key = SigningKey::new("k1", b"0123456789abcdef").unwrap();
        let policy = TokenPolicy::Signed(vec![key]);
        let h = AssetHash::of_bytes(b"x");
        let other = AssetHash::of_bytes(b"y");
        let t = policy.mint(&h, Subject::Video("avc"));
        assert!(video_token_allows(&policy, &h, "avc", &t));
        assert!(!video_token_allows(&policy, &other, "avc", &t));
        assert!(!video_token_allows(&policy, &h, "hevc", &t));
        let thumb = policy.mint(
            &h,
            Subject::Thumb(thumbfarm_shared::sizes::Size::Fit720.into()),
        );
        assert!(!video_token_allows(&policy, &h, "avc", &thumb));
        assert!(video_token_allows(
            &TokenPolicy::Public,
            &h,
            "hevc",
            "public"
        ));
        assert!(!video_token_allows(&TokenPolicy::Public, &h, "avc", "nope"));
    }
}
