//! `GET /api/v1/videos/{hash}/{token}/avc` over the local store and the
//! in-process queue: checks in order, Range requests (first bytes, middle,
//! suffix, past the end, several ranges), conditional requests, and the
//! transcode enqueued for a missing video (202, then served once stored).
//! The real transcode and the real broker are exercised in the workspace's
//! end-to-end tests.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bytes::Bytes;
use common::*;
use std::time::Duration;
use thumbfarm_api::ApiOptions;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{Event, Job, V1};
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::tokens::{Subject, TokenPolicy};
use thumbfarm_shared::AssetHash;

/// 100 000 bytes whose every position can be checked: byte `i` is `i % 251`.
fn body() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

async fn put_video_asset(h: &Harness, hash: AssetHash, media_type: &str, duration_ms: Option<u64>) {
    let mut m: Manifest = h.put_asset(hash, 1920, 1080).await;
    m.media_type = media_type.to_string();
    m.duration_ms = duration_ms;
    h.store
        .put(
            &h.layout.manifest(&hash),
            m.to_json().into(),
            "application/json",
        )
        .await
        .unwrap();
}

async fn put_video(h: &Harness, hash: AssetHash) {
    h.store
        .put(&h.layout.video(&hash), Bytes::from(body()), "video/mp4")
        .await
        .unwrap();
}

fn video_uri(hash: &AssetHash, token: &str, format: &str) -> String {
    format!("/api/v1/videos/{hash}/{token}/{format}")
}

async fn ranged(h: &Harness, uri: &str, range: &str) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    h.send(
        Request::get(uri)
            .header(header::RANGE, range)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn whole_video_is_streamed_with_range_support() {
    let h = harness();
    let hash = hash_of("video-whole");
    put_video_asset(&h, hash, "video/mp4", Some(5000)).await;
    put_video(&h, hash).await;
    let (status, headers, got) = h.get(&video_uri(&hash, "public", "avc")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(headers[header::CONTENT_LENGTH], "100000");
    assert!(headers.contains_key(header::ETAG));
    assert!(!headers.contains_key(header::SET_COOKIE));
    assert_eq!(got.as_ref(), body().as_slice());

    // HEAD: the same headers, no body.
    let (status, headers, got) = h
        .send(
            Request::head(video_uri(&hash, "public", "avc"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], "100000");
    assert!(got.is_empty());
}

#[tokio::test]
async fn range_requests_first_middle_suffix_past_end_and_several() {
    let h = harness();
    let hash = hash_of("video-ranges");
    put_video_asset(&h, hash, "video/quicktime", Some(5000)).await;
    put_video(&h, hash).await;
    let uri = video_uri(&hash, "public", "avc");
    let all = body();

    let (status, headers, got) = ranged(&h, &uri, "bytes=0-1023").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 0-1023/100000");
    assert_eq!(headers[header::CONTENT_LENGTH], "1024");
    assert_eq!(got.as_ref(), &all[..1024]);

    let (status, headers, got) = ranged(&h, &uri, "bytes=50000-50099").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 50000-50099/100000");
    assert_eq!(got.as_ref(), &all[50_000..50_100]);

    let (status, headers, got) = ranged(&h, &uri, "bytes=-500").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 99500-99999/100000");
    assert_eq!(got.as_ref(), &all[99_500..]);

    let (status, headers, got) = ranged(&h, &uri, "bytes=99990-").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 99990-99999/100000");
    assert_eq!(got.len(), 10);

    // An end past the object is clamped.
    let (status, headers, _) = ranged(&h, &uri, "bytes=99000-200000").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 99000-99999/100000");

    let (status, headers, got) = ranged(&h, &uri, "bytes=100000-").await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes */100000");
    assert!(got.is_empty());
    let (status, _, _) = ranged(&h, &uri, "bytes=-0").await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);

    // Several ranges and malformed ones: the whole file, cleanly.
    for value in ["bytes=0-9,100-199", "bytes=9-1", "bytes=abc", "pages=1-2"] {
        let (status, headers, got) = ranged(&h, &uri, value).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        assert!(!headers.contains_key(header::CONTENT_RANGE), "{value}");
        assert_eq!(got.len(), 100_000, "{value}");
    }
}

#[tokio::test]
async fn conditional_requests() {
    let h = harness();
    let hash = hash_of("video-conditional");
    put_video_asset(&h, hash, "video/mp4", Some(5000)).await;
    put_video(&h, hash).await;
    let uri = video_uri(&hash, "public", "avc");
    let (_, headers, _) = h.get(&uri).await;
    let etag = headers[header::ETAG].to_str().unwrap().to_string();

    let (status, _, got) = h
        .send(
            Request::get(&uri)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(got.is_empty());

    // If-Range with the current ETag: the range; with another: everything.
    let (status, _, got) = h
        .send(
            Request::get(&uri)
                .header(header::RANGE, "bytes=0-9")
                .header(header::IF_RANGE, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.len(), 10);
    let (status, _, got) = h
        .send(
            Request::get(&uri)
                .header(header::RANGE, "bytes=0-9")
                .header(header::IF_RANGE, "\"stale\"")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got.len(), 100_000);
}

#[tokio::test]
async fn checks_in_order_hash_token_format_asset_kind() {
    let policy = signed_policy();
    let h = harness_with(policy.clone(), SizeLimits::default(), options());
    let hash = hash_of("video-checks");
    put_video_asset(&h, hash, "video/mp4", Some(5000)).await;
    put_video(&h, hash).await;
    let good = policy.mint(&hash, Subject::Video("avc"));

    let cases = [
        (
            format!("/api/v1/videos/NOTAHASH/{good}/avc"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/videos/..%2F..%2Fetc/{good}/avc"),
            StatusCode::BAD_REQUEST,
        ),
        (video_uri(&hash, "public", "avc"), StatusCode::FORBIDDEN),
        // A thumbnail's token does not open the video.
        (
            video_uri(
                &hash,
                &policy.mint(&hash, Subject::Thumb(Size::Fit720.into())),
                "avc",
            ),
            StatusCode::FORBIDDEN,
        ),
        // Another asset's video token does not either.
        (
            video_uri(
                &hash,
                &policy.mint(&hash_of("other"), Subject::Video("avc")),
                "avc",
            ),
            StatusCode::FORBIDDEN,
        ),
        // In signed mode an unknown format cannot carry a valid token.
        (video_uri(&hash, &good, "hevc"), StatusCode::FORBIDDEN),
        (video_uri(&hash, &good, "avc"), StatusCode::OK),
    ];
    for (uri, want) in cases {
        let (status, headers, _) = h.get(&uri).await;
        assert_eq!(status, want, "{uri}");
        if status != StatusCode::OK {
            assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml", "{uri}");
            assert!(headers.contains_key("x-thumbfarm-reason"), "{uri}");
        }
    }

    // Public mode: an unknown format is 404, an unknown asset 404, a photo 404.
    let h = harness();
    let photo = hash_of("a-photo");
    h.put_asset(photo, 4000, 3000).await;
    let video = hash_of("video-public");
    put_video_asset(&h, video, "video/mp4", Some(5000)).await;
    for (uri, reason) in [
        (video_uri(&video, "public", "hevc"), "unknown video format"),
        (
            video_uri(&hash_of("nobody"), "public", "avc"),
            "unknown asset",
        ),
        (video_uri(&photo, "public", "avc"), "asset is not a video"),
    ] {
        let (status, headers, _) = h.get(&uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(headers["x-thumbfarm-reason"], reason, "{uri}");
    }
    assert_eq!(h.ready(QueueName::Transcode).await, 0, "nothing enqueued");
}

fn no_wait() -> ApiOptions {
    ApiOptions {
        video_wait: Duration::ZERO,
        ..options()
    }
}

#[tokio::test]
async fn missing_long_video_is_enqueued_once_and_answered_202() {
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), no_wait());
    let hash = hash_of("video-missing");
    put_video_asset(&h, hash, "video/mp4", Some(600_000)).await;
    let uri = video_uri(&hash, "public", "avc");
    for _ in 0..3 {
        let (status, headers, body) = h.get(&uri).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "pending");
    }
    assert_eq!(
        h.ready(QueueName::Transcode).await,
        1,
        "one job for three requests"
    );
    let mut consumer = h.queue.consume(QueueName::Transcode, 1).await.unwrap();
    let delivery = consumer.next().await.unwrap();
    match Job::parse(&delivery.routing_key, &delivery.body).unwrap() {
        Job::Transcode(job) => {
            assert_eq!(job.hash, Some(hash));
            assert_eq!(job.format, "avc");
            assert_eq!(job.source.key, h.layout.original(&hash, "jpg"));
        }
        other => panic!("not a transcode: {other:?}"),
    }
    delivery.ack().await.unwrap();

    // Once the worker stored it, the same URL serves it.
    put_video(&h, hash).await;
    let (status, _, got) = h.get(&uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got.len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_video_request_waits_for_the_transcode() {
    let h = harness();
    let hash = hash_of("video-short");
    put_video_asset(&h, hash, "video/mp4", Some(3000)).await;
    let uri = video_uri(&hash, "public", "avc");
    let app = h.app.clone();
    let waiting =
        tokio::spawn(
            async move { send(&app, Request::get(uri).body(Body::empty()).unwrap()).await },
        );
    assert!(eventually(5, || async { h.ready(QueueName::Transcode).await == 1 }).await);
    put_video(&h, hash).await;
    h.event(&Event::Transcoded {
        v: V1,
        hash,
        format: "avc".into(),
    })
    .await;
    let (status, headers, got) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(got.len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_transcode_failure_is_422_with_a_generic_reason() {
    let h = harness();
    let hash = hash_of("video-broken");
    put_video_asset(&h, hash, "video/x-msvideo", None).await;
    let uri = video_uri(&hash, "public", "avc");
    let app = h.app.clone();
    let waiting =
        tokio::spawn(
            async move { send(&app, Request::get(uri).body(Body::empty()).unwrap()).await },
        );
    assert!(eventually(5, || async { h.ready(QueueName::Transcode).await == 1 }).await);
    h.event(&Event::Failed {
        v: V1,
        hash,
        reason: "cannot decode video: invalid data found when processing videos/x/y.avi".into(),
        permanent: true,
    })
    .await;
    let (status, headers, _) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        headers["x-thumbfarm-reason"],
        "cannot be rendered: damaged file or not an image"
    );
}

#[tokio::test]
async fn gif_can_be_requested_as_avc() {
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), no_wait());
    let hash = hash_of("an-animated-gif");
    put_video_asset(&h, hash, "image/gif", None).await;
    let (status, _, _) = h.get(&video_uri(&hash, "public", "avc")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.ready(QueueName::Transcode).await, 1);
}
