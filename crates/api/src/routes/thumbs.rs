//! `GET /api/v1/t/{hash}/{token}/{size}`: thumbnails, rendered on demand.
//!
//! Checks, in this order: a malformed hash is 400; a token that does not
//! grant the URL is 403; an unknown size name is 404; a size above the
//! dynamic limit is 404 with `X-Thumbfarm-Reason: size above dynamic limit`;
//! an unknown asset is 404. In `signed` mode no token can be valid for a size
//! name that is not in the table, so an unknown size name is 403 there (it
//! tells a client without a valid URL nothing); in the other modes the token
//! does not depend on the size, so it is checked first and an unknown size is
//! 404.
//!
//! No cookie is read or set.

use crate::http::error::ThumbError;
use crate::metrics::WaitOutcome;
use crate::routes::manifests::{cached_manifest, load_manifest, unavailable};
use crate::services::hot_cache::{CachedThumb, MAX_ENTRY_BYTES};
use crate::services::ondemand::Signal;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Instant;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::sizes::{self, Size};
use thumbfarm_shared::store::{ObjectMeta, StoreError};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};
use thumbfarm_shared::AssetHash;

/// The thumbnail handler.
pub async fn thumbnail(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    match serve_thumbnail(&state, &method, &headers, path).await {
        Ok(response) => response,
        Err(e) => {
            if matches!(e, ThumbError::Unavailable { .. }) {
                tracing::warn!(error = %e, "thumbnail request failed");
            }
            e.into_response()
        }
    }
}

/// Whether `token` may be used for the size named `size_name` of `hash`.
pub fn token_allows(
    tokens: &TokenPolicy,
    hash: &AssetHash,
    size: Option<Size>,
    token: &str,
) -> bool {
    match (size, tokens) {
        (Some(size), policy) => policy.verify(hash, Subject::Thumb(size), token),
        // A signature over a size that does not exist cannot be checked.
        (None, TokenPolicy::Signed(_)) => false,
        // Public and preview tokens do not depend on the size.
        (None, policy) => policy.verify(hash, Subject::Thumb(Size::Fit720), token),
    }
}

/// The size whose file answers a request for `size`, for what the manifest
/// knows about the original (itself while the dimensions are unknown).
fn target_size(manifest: &Manifest, size: Size) -> Result<Size, ThumbError> {
    if manifest.has_dimensions() {
        sizes::resolve(size, manifest.width, manifest.height).ok_or(ThumbError::NotApplicable)
    } else {
        Ok(size)
    }
}

async fn serve_thumbnail(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ThumbError> {
    let Ok(Path((hash, token, size_name))) = path else {
        return Err(ThumbError::BadHash);
    };
    let hash = AssetHash::parse(&hash).map_err(|_| ThumbError::BadHash)?;
    let size = size_name.parse::<Size>().ok();
    if !token_allows(state.tokens(), &hash, size, &token) {
        return Err(ThumbError::BadToken);
    }
    let size = size.ok_or(ThumbError::UnknownSize)?;
    if !state.limits().allows_on_request(size) {
        return Err(ThumbError::AboveLimit);
    }
    let mut manifest = cached_manifest(state, &hash).await?;
    let mut target = target_size(&manifest, size)?;
    if let Some(response) = try_serve(state, &hash, target, method, headers).await? {
        state.metrics().cache(true);
        return Ok(response);
    }
    state.metrics().cache(false);

    // A miss. An output that failed permanently is not tried again until
    // an operator clears the failure (re-ingest, retry, backfill).
    if let Some(failure) = manifest.failure_for(target.name()) {
        state.metrics().suppressed(failure_output(target.name()));
        return Err(ThumbError::Failed {
            reason: failure.reason.clone(),
        });
    }

    // Render on demand and wait.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + state.options().wait_timeout;
    let finish = |outcome, result| {
        state.metrics().wait(outcome, started.elapsed());
        result
    };
    loop {
        let mut ticket = match state.coordinator().request(&manifest, target).await {
            Ok(ticket) => ticket,
            Err(e) => {
                return finish(
                    WaitOutcome::Failed,
                    Err(unavailable(state, "publishing job", e)),
                )
            }
        };
        let signal = match tokio::time::timeout_at(deadline, ticket.next()).await {
            Ok(signal) => signal,
            Err(_) => {
                tracing::info!(%hash, %target, "on-demand render not ready before the deadline");
                return finish(
                    WaitOutcome::Timeout,
                    Err(ThumbError::Timeout {
                        retry_after: state.options().retry_after,
                    }),
                );
            }
        };
        match signal {
            Signal::Failed {
                reason,
                permanent: true,
            } => {
                // The worker recorded the failure in the manifest: read it
                // again next time, so later requests answer 422 at once.
                state.cache().forget_manifest(&hash);
                return finish(WaitOutcome::Failed, Err(ThumbError::Failed { reason }));
            }
            Signal::Failed {
                reason,
                permanent: false,
            } => {
                return finish(
                    WaitOutcome::Failed,
                    Err(unavailable(state, "render failed", reason)),
                )
            }
            Signal::Rendered(_) | Signal::Pending => {
                // The event may be about another job: look again.
                if !manifest.has_dimensions() {
                    if let Ok(Some(fresh)) = load_manifest(state, &hash).await {
                        manifest = Arc::new(fresh);
                        state.cache().put_manifest(Arc::clone(&manifest));
                    }
                    target = match target_size(&manifest, size) {
                        Ok(t) => t,
                        Err(e) => return finish(WaitOutcome::Failed, Err(e)),
                    };
                }
                match try_serve(state, &hash, target, method, headers).await {
                    Ok(Some(response)) => return finish(WaitOutcome::Served, Ok(response)),
                    Ok(None) => continue,
                    Err(e) => return finish(WaitOutcome::Failed, Err(e)),
                }
            }
        }
    }
}

/// The failure-record output a request for `output` is suppressed by, as a
/// bounded metrics label.
pub(crate) fn failure_output(output: &str) -> &'static str {
    if output == thumbfarm_shared::keys::AVC {
        thumbfarm_shared::keys::AVC
    } else {
        thumbfarm_shared::manifest::IMAGE_OUTPUT
    }
}

/// Whether an `If-None-Match` header matches `etag` (unquoted), with the weak
/// comparison RFC 9110 prescribes for it.
pub fn etag_matches(if_none_match: &HeaderValue, etag: &str) -> bool {
    let Ok(value) = if_none_match.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// The headers every served thumbnail (200, 304, HEAD) carries.
pub(crate) fn entity_headers(state: &AppState, meta: &ObjectMeta, headers: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.etag.trim_matches('"'))) {
        headers.insert(header::ETAG, v);
    }
    if let Some(modified) = meta.last_modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            headers.insert(header::LAST_MODIFIED, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&state.options().cache_control) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The answer for a thumbnail whose metadata is known: 304 when
/// `If-None-Match` matches, headers only for HEAD, else `body`.
fn respond(
    state: &AppState,
    target: Size,
    meta: &ObjectMeta,
    body: Body,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| etag_matches(v, meta.etag.trim_matches('"')))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        entity_headers(state, meta, response.headers_mut());
        return response;
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        body
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    entity_headers(state, meta, h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(target.format().content_type()),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    response
}

/// Answers from memory or the store when the thumbnail of `target` exists;
/// `Ok(None)` when it does not. Small thumbnails read from the store are
/// kept in the hot cache.
async fn try_serve(
    state: &AppState,
    hash: &AssetHash,
    target: Size,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Response>, ThumbError> {
    let key = state.layout().thumb(hash, target);
    if let Some(hit) = state.cache().thumb(&key) {
        let body = Body::from(hit.body);
        return Ok(Some(respond(
            state, target, &hit.meta, body, method, headers,
        )));
    }
    let store = state.store();
    if method == Method::HEAD || headers.contains_key(header::IF_NONE_MATCH) {
        let meta = match store.head(&key).await {
            Ok(Some(meta)) => meta,
            Ok(None) => return Ok(None),
            Err(e) => return Err(unavailable(state, "reading thumbnail", e)),
        };
        let is_match = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| etag_matches(v, meta.etag.trim_matches('"')));
        if is_match || method == Method::HEAD {
            return Ok(Some(respond(
                state,
                target,
                &meta,
                Body::empty(),
                method,
                headers,
            )));
        }
    }
    let (meta, stream) = match store.get_stream(&key, None).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(unavailable(state, "reading thumbnail", e)),
    };
    if meta.size <= MAX_ENTRY_BYTES {
        let chunks: Vec<bytes::Bytes> = stream
            .try_collect()
            .await
            .map_err(|e| unavailable(state, "reading thumbnail", e))?;
        let body = bytes::Bytes::from(chunks.concat());
        let meta = Arc::new(meta);
        state.cache().put_thumb(
            &key,
            CachedThumb {
                meta: Arc::clone(&meta),
                body: body.clone(),
            },
        );
        return Ok(Some(respond(
            state,
            target,
            &meta,
            Body::from(body),
            method,
            headers,
        )));
    }
    let key_for_log = key.clone();
    let body = Body::from_stream(stream.inspect_err(move |e| {
        tracing::warn!(key = %key_for_log, error = %e, "thumbnail stream broke off");
    }));
    Ok(Some(respond(state, target, &meta, body, method, headers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let m = |v: &'static str| etag_matches(&HeaderValue::from_static(v), "abc");
        assert!(m("\"abc\""));
        assert!(m("W/\"abc\""));
        assert!(m("\"x\", \"abc\""));
        assert!(m("*"));
        assert!(!m("\"abcd\""));
        assert!(!m(""));
    }

    #[test]
    fn unknown_sizes_never_pass_signed_tokens() {
        let key = thumbfarm_shared::tokens::SigningKey::new("k1", b"0123456789abcdef").unwrap();
        let policy = TokenPolicy::Signed(vec![key]);
        let h = AssetHash::of_bytes(b"x");
        let t = policy.mint(&h, Subject::Thumb(Size::Fit720));
        assert!(token_allows(&policy, &h, Some(Size::Fit720), &t));
        assert!(!token_allows(&policy, &h, None, &t));
        assert!(token_allows(&TokenPolicy::Public, &h, None, "public"));
        assert!(!token_allows(&TokenPolicy::Public, &h, None, "x"));
    }
}
