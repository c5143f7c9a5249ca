//! Ingest: new vs known, empty, too large, auth, jobs.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use thumbfarm_api::routes::ingest::IngestResponse;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::sizes::SizeLimits;
use thumbfarm_shared::tokens::TokenPolicy;
use thumbfarm_shared::AssetHash;

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0fake jpeg body";
const MP4: &[u8] = b"\0\0\0\x18ftypisom\0\0\0\0fake video";

fn upload(body: &'static [u8], key: Option<&str>, query: &str) -> Request<Body> {
    let mut r = Request::post(format!("/api/v1/ingest{query}"));
    if let Some(k) = key {
        r = r.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    r.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn new_then_known() {
    let h = harness();
    let (status, headers, body) = h
        .send(upload(JPEG, Some(API_KEY), "?name=holiday.png"))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    let hash = AssetHash::of_bytes(JPEG);
    assert_eq!(r.hash, hash.to_string());
    assert_eq!(r.media_type, "image/jpeg", "sniffed, not from the name");
    assert!(r.new);
    assert!(!r.previews.is_empty());
    assert_eq!(
        headers[header::LOCATION],
        format!("/api/v1/previews/{hash}")
    );
    // Original and manifest stored; one bulk job.
    let original = h.layout.original(&hash, "jpg");
    assert_eq!(&h.store.get(&original).await.unwrap()[..], JPEG);
    let manifest =
        Manifest::from_json(&h.store.get(&h.layout.manifest(&hash)).await.unwrap()).unwrap();
    assert_eq!(manifest.original.key, original);
    assert_eq!(
        (manifest.width, manifest.height, manifest.bytes),
        (0, 0, JPEG.len() as u64)
    );
    assert_eq!(h.ready(QueueName::RenderBulk).await, 1);
    assert_eq!(h.ready(QueueName::Transcode).await, 0);

    let (status, _, body) = h.send(upload(JPEG, Some(API_KEY), "")).await;
    assert_eq!(status, StatusCode::OK);
    let again: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(again.hash, r.hash);
    assert!(!again.new);
    assert_eq!(
        h.ready(QueueName::RenderBulk).await,
        1,
        "not enqueued again"
    );
}

#[tokio::test]
async fn videos_are_transcoded_too() {
    let h = harness();
    let request = Request::post("/api/v1/ingest")
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"clip.mp4\"",
        )
        .body(Body::from(MP4))
        .unwrap();
    let (status, _, body) = h.send(request).await;
    assert_eq!(status, StatusCode::CREATED);
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.media_type, "video/mp4");
    assert_eq!(h.ready(QueueName::RenderBulk).await, 1);
    assert_eq!(h.ready(QueueName::Transcode).await, 1);
    let hash = AssetHash::of_bytes(MP4);
    assert!(h
        .store
        .head(&h.layout.original(&hash, "mp4"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn unknown_bytes_use_the_name() {
    let h = harness();
    let (status, _, body) = h
        .send(upload(
            b"II*\x00 but not really",
            Some(API_KEY),
            "?name=scan.tiff",
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.media_type, "image/tiff");
    let (status, _, body) = h
        .send(upload(b"\x01\x02 raw", Some(API_KEY), "?name=IMG_1.HEIC"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.media_type, "image/heif");
    let hash = AssetHash::parse(&r.hash).unwrap();
    assert!(h
        .store
        .head(&h.layout.original(&hash, "heic"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn empty_too_large_and_unauthorized() {
    let mut opts = options();
    opts.max_upload_bytes = 16;
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), opts);
    let (status, ..) = h.send(upload(b"", Some(API_KEY), "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = h.send(upload(JPEG, Some(API_KEY), "")).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Without a Content-Length (streamed), the limit still holds.
    let stream = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&JPEG[..10])),
        Ok(bytes::Bytes::from_static(&JPEG[10..])),
    ]);
    let request = Request::post("/api/v1/ingest")
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .body(Body::from_stream(stream))
        .unwrap();
    let (status, ..) = h.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for key in [None, Some("wrong-key-0123456789")] {
        let (status, headers, _) = h.send(upload(b"abc", key, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    assert_eq!(h.ready(QueueName::RenderBulk).await, 0);
    let hash = AssetHash::of_bytes(b"abc");
    assert!(h
        .store
        .head(&h.layout.manifest(&hash))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn no_configured_keys_means_no_access() {
    let mut opts = options();
    opts.api_keys.clear();
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), opts);
    let (status, ..) = h.send(upload(JPEG, Some(API_KEY), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn corpus(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("THUMBFARM_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    let path = dir.join(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test input {} is missing ({e}): set THUMBFARM_CORPUS to the shared corpus",
            path.display()
        )
    })
}

fn upload_bytes(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/ingest")
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn motion_photos_are_transcoded_and_listed_with_their_video() {
    let h = harness();
    let pixel = corpus("raw/PXL_20200710_061629144.MP.jpg");
    let hash = AssetHash::of_bytes(&pixel);
    let (status, _, body) = h.send(upload_bytes(pixel)).await;
    assert_eq!(status, StatusCode::CREATED);
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    let video = r.previews[0]
        .video
        .as_ref()
        .expect("the answer says it has a video");
    assert_eq!(video.kind, "motion_photo");
    assert!(
        video.href.starts_with(&format!("/api/v1/videos/{hash}/")) && video.href.ends_with("/avc")
    );
    let manifest =
        Manifest::from_json(&h.store.get(&h.layout.manifest(&hash)).await.unwrap()).unwrap();
    let v = manifest.video.expect("recorded");
    assert_eq!((v.offset, v.length), (Some(2_728_123), Some(1_317_283)));
    assert_eq!(h.ready(QueueName::RenderBulk).await, 1);
    assert_eq!(
        h.ready(QueueName::Transcode).await,
        1,
        "its video is transcoded at ingest"
    );

    // A motion photo whose video is garbage is a plain still.
    let mut broken = corpus("raw/PXL_20200710_061629144.MP.jpg");
    let n = broken.len();
    broken.truncate(n - 2_000_000);
    let hash = AssetHash::of_bytes(&broken);
    let (status, _, _) = h.send(upload_bytes(broken)).await;
    assert_eq!(status, StatusCode::CREATED);
    let manifest =
        Manifest::from_json(&h.store.get(&h.layout.manifest(&hash)).await.unwrap()).unwrap();
    assert_eq!(manifest.video, None);
    assert_eq!(
        h.ready(QueueName::Transcode).await,
        1,
        "no transcode for it"
    );
}

#[tokio::test]
async fn animated_images_are_listed_with_their_video() {
    let h = harness();
    let (status, _, body) = h
        .send(upload_bytes(corpus("ext/formats/iss634.webp")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        r.previews[0].video.as_ref().map(|v| v.kind.as_str()),
        Some("animation")
    );
    // Clips of animations are made on request, not at ingest.
    assert_eq!(h.ready(QueueName::Transcode).await, 0);
    let (_, _, body) = h
        .send(upload_bytes(corpus("ext/formats/simple-rgb.webp")))
        .await;
    let r: IngestResponse = serde_json::from_slice(&body).unwrap();
    assert!(r.previews.iter().all(|p| p.video.is_none()));
}
