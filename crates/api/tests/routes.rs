//! The route list, the OpenAPI document and the operational routes.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use std::collections::BTreeSet;
use thumbfarm_api::router::NO_ROUTE_REASON;
use thumbfarm_api::routes;

/// A concrete URI for a path template.
fn concrete(path: &str) -> String {
    path.replace("{hash}", &hash_of("x").to_string())
        .replace("{token}", "public")
        .replace("{size}", "fit_720")
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes() {
    let h = harness();
    let (status, headers, body) = h.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.to_uppercase()));
        }
    }
    let mut served = BTreeSet::new();
    for route in routes() {
        for method in route.methods {
            served.insert((route.path.to_string(), method.to_string()));
        }
    }
    assert_eq!(documented, served, "OpenAPI paths and router routes differ");

    // Every route really answers its methods (not the fallback, not 405) and
    // refuses others.
    for route in routes() {
        let uri = concrete(route.path);
        for method in route.methods {
            let request = Request::builder()
                .method(*method)
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, headers, _) = h.send(request).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert!(
                headers
                    .get("x-thumbfarm-reason")
                    .is_none_or(|r| r != NO_ROUTE_REASON),
                "{method} {uri} fell through to the fallback"
            );
        }
        let request = Request::builder()
            .method(Method::DELETE)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let (status, ..) = h.send(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "DELETE {uri}");
    }
    let (status, headers, _) = h.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-thumbfarm-reason"], NO_ROUTE_REASON);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let h = harness();
    let (status, _, body) = h.get("/healthz").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let (status, _, body) = h.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let ready: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["queue"], "ok");

    let hash = hash_of("m");
    h.put_asset(hash, 4000, 3000).await;
    h.put_thumb(hash, thumbfarm_shared::sizes::Size::Fit720, b"x")
        .await;
    h.get(&thumb_uri(&hash, "public", "fit_720")).await;
    h.get(&thumb_uri(&hash, "nope", "fit_720")).await;
    let (status, headers, body) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(
        "thumbfarm_http_requests_total{route=\"/api/v1/t/{hash}/{token}/{size}\",status=\"200\"} 1"
    ), "{text}");
    assert!(text.contains(
        "thumbfarm_http_requests_total{route=\"/api/v1/t/{hash}/{token}/{size}\",status=\"403\"} 1"
    ));
    assert!(text.contains("thumbfarm_http_request_duration_seconds_bucket{route=\"/healthz\""));
    assert!(text.contains("thumbfarm_thumb_cache_total{result=\"hit\"} 1"));
}

#[tokio::test]
async fn queue_depths_are_polled_into_gauges() {
    let h = harness();
    let hash = hash_of("q");
    h.put_asset(hash, 4000, 3000).await;
    let mut opts = options();
    opts.wait_timeout = std::time::Duration::from_millis(100);
    // Leave one job on the on-demand queue.
    let h2 = harness_with(
        thumbfarm_shared::tokens::TokenPolicy::Public,
        Default::default(),
        opts,
    );
    h2.put_asset(hash, 4000, 3000).await;
    h2.get(&thumb_uri(&hash, "public", "fit_720")).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let poller = tokio::spawn(thumbfarm_api::background::queue_stats::poll_queue_stats(
        h2.state.metrics().clone(),
        h2.queue.clone(),
        None,
        std::time::Duration::from_millis(50),
        cancel.clone(),
    ));
    let found = eventually(5, || async {
        let text = String::from_utf8_lossy(&h2.get("/metrics").await.2).into_owned();
        text.contains("thumbfarm_queue_messages_ready{queue=\"thumbfarm.render.ondemand\"} 1")
            && text.contains("thumbfarm_queue_consumers{queue=\"thumbfarm.render.ondemand\"} 0")
    })
    .await;
    cancel.cancel();
    poller.await.unwrap();
    assert!(
        found,
        "{}",
        String::from_utf8_lossy(&h2.get("/metrics").await.2)
    );
}
