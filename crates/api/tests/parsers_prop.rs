//! Property tests of what the API parses from requests: thumbnail and video
//! URL paths (through the real router), `Range` and `If-None-Match` headers,
//! and ingest events turned into originals. Thousands of cases each; no
//! panic, and no answer a client could not act on (never a 500).

mod common;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use common::*;
use proptest::prelude::*;
use std::sync::OnceLock;
use thumbfarm_api::background::ingest_events::items_of;
use thumbfarm_api::http::entity::etag_matches;
use thumbfarm_api::http::range::{parse_range, RangeRequest};
use thumbfarm_shared::messages::IngestEvent;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn harness_once() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let _guard = runtime().enter();
        let h = harness();
        runtime().block_on(h.put_asset(hash_of("prop"), 4000, 3000));
        h
    })
}

/// A path segment: mostly URL-safe text, sometimes percent-escapes, dots
/// and the real values.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._~-]{0,48}",
        "(%[0-9A-Fa-f]{2}|[a-z./]){0,16}",
        Just(hash_of("prop").to_string()),
        Just("public".to_string()),
        Just("..".to_string()),
        Just("tile_224".to_string()),
        Just("avc".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn thumbnail_and_video_paths_never_fail_the_server(
        route in prop_oneof![
            Just("t".to_string()),
            Just("videos".to_string()),
            Just("previews".to_string()),
            "[a-z]{0,6}",
        ],
        a in segment(),
        b in segment(),
        c in segment(),
    ) {
        let uri = format!("/api/v1/{route}/{a}/{b}/{c}");
        let Ok(request) = Request::get(&uri).body(Body::empty()) else {
            return Ok(());
        };
        let (status, _, _) = runtime().block_on(harness_once().send(request));
        prop_assert!(
            !status.is_server_error() || status.as_u16() == 503,
            "{uri}: {status}"
        );
    }

    #[test]
    fn range_headers_give_ranges_inside_the_object(
        value in prop_oneof![
            "bytes=[0-9]{0,20}-[0-9]{0,20}",
            "bytes=-[0-9]{0,20}",
            "bytes=[0-9, -]{0,30}",
            ".{0,40}",
        ],
        size in 0u64..10_000_000,
    ) {
        match parse_range(&value, size) {
            RangeRequest::Partial(r) => {
                prop_assert!(r.start <= r.end && r.end < size, "{value} of {size}: {r:?}");
            }
            RangeRequest::Full | RangeRequest::Unsatisfiable => {}
        }
    }

    #[test]
    fn if_none_match_headers_never_panic(value in "[ -~]{0,120}", etag in "[0-9a-f-]{0,40}") {
        if let Ok(header) = HeaderValue::from_str(&value) {
            let matched = etag_matches(&header, &etag);
            if value.trim() == "*" {
                prop_assert!(matched);
            }
        }
    }

    #[test]
    fn ingest_events_become_originals_or_clear_refusals(
        bucket in ".{0,40}",
        key in "(%[0-9A-Fa-f]{2}|[a-zA-Z0-9+./ _-]){0,120}",
        size in any::<i64>(),
        own in prop_oneof![Just(None), Just(Some("photos"))],
    ) {
        let s3 = serde_json::json!({
            "Records": [{
                "eventName": "s3:ObjectCreated:Put",
                "s3": { "bucket": { "name": bucket }, "object": { "key": key, "size": size } }
            }]
        });
        let file_created = serde_json::json!({
            "v": 1,
            "event": "file.created",
            "source": { "bucket": bucket, "key": key },
            "size": size
        });
        for body in [s3, file_created] {
            if let Ok(event) = IngestEvent::parse(body.to_string().as_bytes()) {
                if let Ok(items) = items_of(&event, own) {
                    for item in items.into_iter().flatten() {
                        prop_assert!(!item.source.key.is_empty());
                    }
                }
            }
        }
    }
}
