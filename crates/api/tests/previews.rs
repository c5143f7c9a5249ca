//! The preview list: shape and API-key auth.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use thumbfarm_api::routes::previews::Preview;
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};

fn request(uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut r = Request::get(uri);
    if let Some(a) = auth {
        r = r.header(header::AUTHORIZATION, a);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn requires_a_valid_api_key() {
    let h = harness();
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    let uri = format!("/api/v1/previews/{hash}");
    for auth in [
        None,
        Some("Bearer wrong-key-0123456789"),
        Some(&format!("Basic {API_KEY}")[..]),
    ] {
        let (status, headers, _) = h.send(request(&uri, auth)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    let (status, ..) = h
        .send(request(&uri, Some(&format!("Bearer {API_KEY}"))))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Other errors come after the key check.
    let bearer = format!("Bearer {API_KEY}");
    let (status, ..) = h
        .send(request("/api/v1/previews/nothex", Some(&bearer)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, ..) = h
        .send(request(
            &format!("/api/v1/previews/{}", hash_of("b")),
            Some(&bearer),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fotoweb_shape_with_signed_hrefs_that_work() {
    let policy = signed_policy();
    let mut opts = options();
    opts.public_url = Some("https://thumbs.example".into());
    let h = harness_with(policy.clone(), SizeLimits::default(), opts);
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    let (status, headers, body) = h
        .send(request(
            &format!("/api/v1/previews/{hash}"),
            Some(&format!("Bearer {API_KEY}")),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for entry in raw.as_array().unwrap() {
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 7, "the FotoWeb fields and the formats: {entry}");
        for k in [
            "name", "size", "width", "height", "href", "square", "formats",
        ] {
            assert!(entry.get(k).is_some(), "{k} in {entry}");
        }
    }
    let list: Vec<Preview> = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.len(), 16);
    let fit = list.iter().find(|p| p.name == "fit_1920").unwrap();
    assert_eq!(
        (fit.width, fit.height, fit.size, fit.square),
        (1600, 1200, 1600, false)
    );
    let fit4096 = list.iter().find(|p| p.name == "fit_4096").unwrap();
    assert_eq!((fit4096.width, fit4096.height), (4000, 3000));
    assert!(
        list.iter().all(|p| p.name != "fit_7680"),
        "served as fit_4096"
    );
    let colors = list.iter().find(|p| p.name == "colors").unwrap();
    assert_eq!((colors.size, colors.square), (3, true));
    // Each href carries its own valid token.
    for p in &list {
        let size: Size = p.name.parse().unwrap();
        let prefix = format!("https://thumbs.example/api/v1/t/{hash}/");
        let rest = p.href.strip_prefix(&prefix).unwrap();
        let (token, name) = rest.split_once('/').unwrap();
        assert_eq!(name, p.name);
        assert!(
            policy.verify(&hash, Subject::Thumb(size.into()), token),
            "{}",
            p.href
        );
        // Every format's href is signed for that format only.
        for (format, entry) in &p.formats {
            let rest = entry.href.strip_prefix(&prefix).unwrap();
            let (token, name) = rest.split_once('/').unwrap();
            let rendition: thumbfarm_shared::Rendition = name.parse().unwrap();
            assert_eq!(rendition.format.name(), format.as_str());
            assert!(
                policy.verify(&hash, Subject::Thumb(rendition), token),
                "{}",
                entry.href
            );
            if format != "jpeg" {
                assert!(!policy.verify(&hash, Subject::Thumb(size.into()), token));
            }
        }
    }
    // A listed href opens the thumbnail once it exists.
    h.put_thumb(hash, Size::Tile224, b"tile").await;
    let tile = list.iter().find(|p| p.name == "tile_224").unwrap();
    let path = tile.href.strip_prefix("https://thumbs.example").unwrap();
    let (status, _, body) = h.get(path).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"tile"[..]));
}

#[tokio::test]
async fn relative_hrefs_and_dynamic_limit() {
    let h = harness_with(TokenPolicy::Public, SizeLimits::new(720, 1280), options());
    let hash = hash_of("a");
    h.put_asset(hash, 4000, 3000).await;
    let (_, _, body) = h
        .send(request(
            &format!("/api/v1/previews/{hash}"),
            Some(&format!("Bearer {API_KEY}")),
        ))
        .await;
    let list: Vec<Preview> = serde_json::from_slice(&body).unwrap();
    assert!(list.iter().all(|p| p.href.starts_with("/api/v1/t/")));
    assert!(list
        .iter()
        .all(|p| p.name.parse::<Size>().unwrap().long_side() <= 1280));
    assert!(list.iter().any(|p| p.name == "fit_1280"));
}
