//! `GET /api/v1/t/{hash}/{token}/{size}`: thumbnails, rendered on demand.
//!
//! `{size}` is a size name (`tile_500`: JPEG, PNG for `colors`, or with
//! `--negotiate-format` the first format of `--formats` the `Accept` header
//! names, answered with `Vary: Accept`), or a size name with the format's
//! extension (`tile_500.webp`, `tile_500.avif`, `tile_500.jpg`: that format,
//! never `Vary`, the CDN-safe form), or `thumbhash` (the asset's ThumbHash
//! as a small PNG, [`super::placeholders`]).
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

use crate::http::entity::{self, etag_matches};
use crate::http::error::ThumbError;
use crate::http::negotiate::negotiate;
use crate::metrics::WaitOutcome;
use crate::routes::manifests::{cached_manifest, load_manifest, unavailable};
use crate::services::hot_cache::{CachedThumb, MAX_ENTRY_BYTES};
use crate::services::ondemand::Signal;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Instant;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::renditions::{parse_url_name, OutputFormat, Rendition};
use thumbfarm_shared::sizes::{self, Size};
use thumbfarm_shared::store::{ObjectMeta, StoreError};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};
use thumbfarm_shared::AssetHash;

/// The thumbnail handler. It takes the request whole to read its method
/// and headers in place (the `HeaderMap` extractor would copy them).
pub async fn thumbnail(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (head, _body) = request.into_parts();
    match serve_thumbnail(&state, &head.method, &head.headers, path).await {
        Ok(response) => response,
        Err(e) => {
            if matches!(e, ThumbError::Unavailable { .. }) {
                tracing::warn!(error = %e, "thumbnail request failed");
            }
            e.into_response()
        }
    }
}

/// Whether `token` may be used for `rendition` of `hash` (`None`: a name
/// that is not a rendition). Signed tokens cover the size and the format (a
/// plain URL signs as its classic format, whatever negotiation picks).
pub fn token_allows(
    tokens: &TokenPolicy,
    hash: &AssetHash,
    rendition: Option<Rendition>,
    token: &str,
) -> bool {
    match (rendition, tokens) {
        (Some(r), policy) => policy.verify(hash, Subject::Thumb(r), token),
        // A signature over a size that does not exist cannot be checked.
        (None, TokenPolicy::Signed(_)) => false,
        // Public and preview tokens do not depend on the size or format.
        (None, policy) => policy.verify(hash, Subject::Thumb(Size::Fit720.into()), token),
    }
}

/// What a request asks for: the rendition to serve (size not yet resolved
/// for the original) and whether the answer varies with `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// The size asked for and the format chosen.
    pub rendition: Rendition,
    /// Whether the format was negotiated (the answer carries `Vary: Accept`).
    pub vary: bool,
}

/// The format of a request for `size`: the one its extension names, else
/// with negotiation on the first of `formats` that `Accept` names, else the
/// classic one. `None` when the named format is not served.
pub fn choose_format(
    state: &AppState,
    size: Size,
    named: Option<OutputFormat>,
    headers: &HeaderMap,
) -> Option<Wanted> {
    let options = state.options();
    let (format, vary) = match named {
        Some(f) if f == OutputFormat::Jpeg || options.formats.contains(&f) => (f, false),
        Some(_) => return None,
        None if options.negotiate_format && size != Size::Colors => (
            negotiate(headers.get(header::ACCEPT), &options.formats),
            true,
        ),
        None => (OutputFormat::Jpeg, false),
    };
    Some(Wanted {
        rendition: Rendition::new(size, format)?,
        vary,
    })
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
    if size_name == super::placeholders::NAME {
        return super::placeholders::serve(state, &hash, &token, method, headers).await;
    }
    let parsed = parse_url_name(&size_name);
    // The signed subject: the size in the format the URL names (a plain URL
    // signs as its classic format).
    let subject =
        parsed.and_then(|(size, named)| Rendition::new(size, named.unwrap_or(OutputFormat::Jpeg)));
    if !token_allows(state.tokens(), &hash, subject, &token) {
        return Err(ThumbError::BadToken);
    }
    let (size, named) = parsed.ok_or(ThumbError::UnknownSize)?;
    let wanted = choose_format(state, size, named, headers).ok_or(ThumbError::UnknownSize)?;
    let format = wanted.rendition.format;
    if !state.limits().allows_on_request(size) {
        return Err(ThumbError::AboveLimit);
    }
    let resolve = |m: &Manifest| {
        target_size(m, size).and_then(|t| Rendition::new(t, format).ok_or(ThumbError::UnknownSize))
    };
    let vary = wanted.vary;
    // One store request per hit: a rendition is stored under its own name
    // unless the original is too small for it, so without the manifest in
    // memory the rendition asked for is tried first, and the manifest is
    // read only when it is not there (a miss, or a size served as another).
    let remembered = state.cache().manifest(&hash);
    let first_try = match &remembered {
        Some(m) => resolve(m)?,
        None => wanted.rendition,
    };
    if let Some(response) = try_serve(state, &hash, first_try, vary, method, headers).await? {
        state.metrics().cache(true);
        return Ok(response);
    }
    let mut manifest = match remembered {
        Some(m) => m,
        None => cached_manifest(state, &hash).await?,
    };
    let mut target = resolve(&manifest)?;
    if target != first_try {
        if let Some(response) = try_serve(state, &hash, target, vary, method, headers).await? {
            state.metrics().cache(true);
            return Ok(response);
        }
    }
    state.metrics().cache(false);

    // A miss. An output that failed permanently is not tried again until
    // an operator clears the failure (re-ingest, retry, backfill).
    if let Some(failure) = manifest.failure_for(&target.name()) {
        state.metrics().suppressed(failure_output(&target.name()));
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
                    target = match resolve(&manifest) {
                        Ok(t) => t,
                        Err(e) => return finish(WaitOutcome::Failed, Err(e)),
                    };
                }
                match try_serve(state, &hash, target, vary, method, headers).await {
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

/// [`entity::respond`] for a thumbnail of `target`.
fn respond(
    state: &AppState,
    target: Rendition,
    vary: bool,
    meta: &ObjectMeta,
    body: Body,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let cache_control = &state.options().cache_control;
    entity::respond(
        cache_control,
        target.content_type(),
        vary,
        meta,
        body,
        method,
        headers,
    )
}

/// Answers from memory or the store when the thumbnail of `target` exists;
/// `Ok(None)` when it does not. Small thumbnails read from the store are
/// kept in the hot cache.
async fn try_serve(
    state: &AppState,
    hash: &AssetHash,
    target: Rendition,
    vary: bool,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Response>, ThumbError> {
    let key = state.layout().thumb(hash, target);
    if let Some(hit) = state.cache().thumb(&key) {
        let body = Body::from(hit.body);
        return Ok(Some(respond(
            state, target, vary, &hit.meta, body, method, headers,
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
                vary,
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
        let body = match <[bytes::Bytes; 1]>::try_from(chunks) {
            Ok([one]) => one,
            Err(chunks) => bytes::Bytes::from(chunks.concat()),
        };
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
            vary,
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
    Ok(Some(respond(
        state, target, vary, &meta, body, method, headers,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sizes_never_pass_signed_tokens() {
        let key = thumbfarm_shared::tokens::SigningKey::new("k1", b"0123456789abcdef").unwrap();
        let policy = TokenPolicy::Signed(vec![key]);
        let h = AssetHash::of_bytes(b"x");
        let t = policy.mint(&h, Subject::Thumb(Size::Fit720.into()));
        assert!(token_allows(&policy, &h, Some(Size::Fit720.into()), &t));
        let webp = Rendition::new(Size::Fit720, OutputFormat::Webp);
        assert!(
            !token_allows(&policy, &h, webp, &t),
            "not for another format"
        );
        assert!(!token_allows(&policy, &h, None, &t));
        assert!(token_allows(&TokenPolicy::Public, &h, None, "public"));
        assert!(!token_allows(&TokenPolicy::Public, &h, None, "x"));
    }
}
