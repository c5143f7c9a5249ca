//! The thumbnail route: checks, serving, conditional requests, HEAD.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};

fn assert_svg(headers: &axum::http::HeaderMap, body: &[u8]) {
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(
        body.starts_with(b"<svg"),
        "{}",
        String::from_utf8_lossy(body)
    );
    assert!(headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn malformed_hashes_are_400() {
    let h = harness();
    for hash in [
        "nothex",
        "EC952CAB562A55D96DDFF2A2FCC41E875393A27A",
        "ec952cab562a55d96ddff2a2fcc41e875393a27",
        "..%2F..%2Fetc%2Fpasswd",
        "ec952cab562a55d96ddff2a2fcc41e875393a2%2F",
        "%2e%2e",
    ] {
        let (status, headers, body) = h.get(&format!("/api/v1/t/{hash}/public/fit_720")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hash}");
        assert_svg(&headers, &body);
    }
    let (status, ..) = h
        .get("/api/v1/t/..%2F..%2Fetc%2Fpasswd/public/fit_720")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn path_tricks_never_reach_the_store() {
    let h = harness();
    // A hash with a slash or dot segments does not match the route at all.
    for uri in [
        "/api/v1/t/ec952cab562a55d96ddff2a2fcc41e87/5393a27a/public/fit_720",
        "/api/v1/t/../../etc/passwd/public/fit_720",
        "/api/v1/t/%2e%2e/%2e%2e/public/fit_720",
    ] {
        let (status, _, _) = h.get(uri).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{uri}: {status}"
        );
    }
    // A size with traversal is just an unknown size.
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    let (status, ..) = h
        .get(&format!("/api/v1/t/{hash}/public/..%2F..%2Fmeta"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn public_mode_tokens() {
    let h = harness();
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    h.put_thumb(hash, Size::Fit720, b"jpeg").await;
    for token in ["x", "Public", "public%20", "%20public", "publi"] {
        let (status, headers, body) = h.get(&thumb_uri(&hash, token, "fit_720")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
        assert_svg(&headers, &body);
    }
    let (status, ..) = h.get(&thumb_uri(&hash, "public", "fit_720")).await;
    assert_eq!(status, StatusCode::OK);
    // Token before size: a bad token on an unknown size is 403.
    let (status, ..) = h.get(&thumb_uri(&hash, "x", "fit_999")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn preview_tokens_rotate() {
    let tokens = TokenPolicy::PreviewTokens(vec!["newtoken1".into(), "oldtoken0".into()]);
    let h = harness_with(tokens, SizeLimits::default(), options());
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    h.put_thumb(hash, Size::Tile50, b"jpeg").await;
    for (token, expected) in [
        ("newtoken1", StatusCode::OK),
        ("oldtoken0", StatusCode::OK),
        ("public", StatusCode::FORBIDDEN),
        ("newtoken", StatusCode::FORBIDDEN),
        ("retired00", StatusCode::FORBIDDEN),
    ] {
        let (status, ..) = h.get(&thumb_uri(&hash, token, "tile_50")).await;
        assert_eq!(status, expected, "{token}");
    }
    // The rotation ended: the old token no longer works.
    let h2 = harness_with(
        TokenPolicy::PreviewTokens(vec!["newtoken1".into()]),
        SizeLimits::default(),
        options(),
    );
    h2.put_asset(hash, 4000, 3000).await;
    h2.put_thumb(hash, Size::Tile50, b"jpeg").await;
    let (status, ..) = h2.get(&thumb_uri(&hash, "oldtoken0", "tile_50")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Unknown size with a good token: 404.
    let (status, ..) = h2.get(&thumb_uri(&hash, "newtoken1", "fit_999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signed_tokens_are_per_size_and_hash() {
    let policy = signed_policy();
    let h = harness_with(policy.clone(), SizeLimits::default(), options());
    let a = hash_of("a");
    let b = hash_of("b");
    for hash in [a, b] {
        h.put_asset(hash, 8000, 6000).await;
        h.put_thumb(hash, Size::Tile224, b"tile").await;
        h.put_thumb(hash, Size::Fit7680, b"big").await;
    }
    let tile_token = policy.mint(&a, Subject::Thumb(Size::Tile224.into()));
    let (status, ..) = h.get(&thumb_uri(&a, &tile_token, "tile_224")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ..) = h.get(&thumb_uri(&a, &tile_token, "fit_7680")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tile token does not open a larger size"
    );
    let (status, ..) = h.get(&thumb_uri(&b, &tile_token, "tile_224")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor another asset");
    let (status, ..) = h.get(&thumb_uri(&a, "public", "tile_224")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Unknown sizes cannot be signed: 403 in signed mode (documented).
    let (status, ..) = h.get(&thumb_uri(&a, &tile_token, "fit_999")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let big = policy.mint(&a, Subject::Thumb(Size::Fit7680.into()));
    let (status, _, body) = h.get(&thumb_uri(&a, &big, "fit_7680")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"big"[..]));
}

#[tokio::test]
async fn unknown_size_over_limit_and_unknown_asset_are_404() {
    let h = harness_with(TokenPolicy::Public, SizeLimits::new(1920, 2560), options());
    let hash = hash_of("a");
    let (status, headers, body) = h.get(&thumb_uri(&hash, "public", "fit_721")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_svg(&headers, &body);
    let (status, headers, _) = h.get(&thumb_uri(&hash, "public", "fit_4096")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-thumbfarm-reason"], "size above dynamic limit");
    let (status, headers, body) = h.get(&thumb_uri(&hash, "public", "fit_2560")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no manifest");
    assert_eq!(headers["x-thumbfarm-reason"], "unknown asset");
    assert_svg(&headers, &body);
    assert_eq!(
        h.ready(thumbfarm_shared::queue::QueueName::RenderOnDemand)
            .await,
        0
    );
}

#[tokio::test]
async fn existing_thumbnails_are_served_with_cache_headers() {
    let h = harness();
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    h.put_thumb(hash, Size::Fit720, b"0123456789").await;
    h.put_thumb(hash, Size::Colors, b"png").await;
    let (status, headers, body) = h.get(&thumb_uri(&hash, "public", "fit_720")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"0123456789");
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(headers[header::CONTENT_LENGTH], "10");
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    assert!(!etag.starts_with("W/"));
    assert!(headers.contains_key(header::LAST_MODIFIED));
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (_, headers, _) = h.get(&thumb_uri(&hash, "public", "colors")).await;
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");

    // If-None-Match: 304 without a body.
    let request = Request::get(thumb_uri(&hash, "public", "fit_720"))
        .header(header::IF_NONE_MATCH, &etag)
        .header(header::COOKIE, "session=abc")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert!(headers.get(header::SET_COOKIE).is_none());
    let request = Request::get(thumb_uri(&hash, "public", "fit_720"))
        .header(header::IF_NONE_MATCH, "\"other\"")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = h.send(request).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 10));

    // HEAD: the same headers, no body.
    let request = Request::builder()
        .method(Method::HEAD)
        .uri(thumb_uri(&hash, "public", "fit_720"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(headers[header::CONTENT_LENGTH], "10");
    assert_eq!(headers[header::ETAG], etag.as_str());
}

#[tokio::test]
async fn cache_control_is_configurable() {
    let mut opts = options();
    opts.cache_control = "public, max-age=60".into();
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), opts);
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    h.put_thumb(hash, Size::Fit720, b"x").await;
    let (_, headers, _) = h.get(&thumb_uri(&hash, "public", "fit_720")).await;
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=60");
}

#[tokio::test]
async fn larger_fits_are_served_by_the_smallest_containing_fit() {
    let h = harness();
    let hash = hash_of("small");
    h.put_asset(hash, 1000, 800).await;
    h.put_thumb(hash, Size::Fit1280, b"fit1280").await;
    for size in ["fit_1280", "fit_1920", "fit_7680"] {
        let (status, _, body) = h.get(&thumb_uri(&hash, "public", size)).await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"fit1280"[..]),
            "{size}"
        );
    }
}

#[tokio::test]
async fn left_and_right_of_a_square_original_are_404() {
    let h = harness();
    let hash = hash_of("square");
    h.put_asset(hash, 500, 500).await;
    for size in ["left_224", "right_224"] {
        let (status, headers, _) = h.get(&thumb_uri(&hash, "public", size)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{size}");
        assert!(headers["x-thumbfarm-reason"]
            .to_str()
            .unwrap()
            .contains("not applicable"));
    }
    assert_eq!(
        h.ready(thumbfarm_shared::queue::QueueName::RenderOnDemand)
            .await,
        0
    );
}
