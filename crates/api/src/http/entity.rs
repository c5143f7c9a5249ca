//! Answering a stored entity (a thumbnail, a transcode, a placeholder): its
//! headers (ETag, Last-Modified, Cache-Control, nosniff), and 304 / HEAD /
//! body for a request with or without `If-None-Match`.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use thumbfarm_shared::store::ObjectMeta;

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

/// The headers every served entity (200, 206, 304, HEAD) carries.
pub fn entity_headers(cache_control: &str, meta: &ObjectMeta, headers: &mut HeaderMap) {
    // From an owned String a HeaderValue keeps the buffer instead of copying.
    if let Ok(v) = HeaderValue::try_from(format!("\"{}\"", meta.etag.trim_matches('"'))) {
        headers.insert(header::ETAG, v);
    }
    if let Some(modified) = meta.last_modified {
        if let Ok(v) = HeaderValue::try_from(httpdate::fmt_http_date(modified)) {
            headers.insert(header::LAST_MODIFIED, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Marks an answer whose format was chosen from `Accept`, so that caches
/// keep one copy per format.
fn vary_on_accept(headers: &mut HeaderMap) {
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
}

/// The answer for an entity whose metadata is known: 304 when
/// `If-None-Match` matches, headers only for HEAD, else `body`; with
/// `Vary: Accept` when `vary` (a negotiated format).
pub fn respond(
    cache_control: &str,
    content_type: &'static str,
    vary: bool,
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
        entity_headers(cache_control, meta, response.headers_mut());
        if vary {
            vary_on_accept(response.headers_mut());
        }
        return response;
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        body
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    entity_headers(cache_control, meta, h);
    if vary {
        vary_on_accept(h);
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    response
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
}
