//! Test harness: the router over a `LocalStore` in a temporary directory and
//! the in-process queue.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_api::{router, ApiOptions, AppState};
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{Event, SourceRef, V1};
use thumbfarm_shared::queue::{publish_json, Exchange, MemoryQueue, Queue, QueueName};
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::store::{LocalStore, Store};
use thumbfarm_shared::tokens::{SigningKey, TokenPolicy};
use thumbfarm_shared::{AssetHash, KeyLayout};
use tower::ServiceExt;

pub const API_KEY: &str = "test-api-key-0123456789";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub state: AppState,
    pub app: Router,
    pub layout: KeyLayout,
}

pub fn options() -> ApiOptions {
    ApiOptions {
        api_keys: vec![API_KEY.to_string()],
        wait_timeout: Duration::from_secs(5),
        retry_after: Duration::from_secs(7),
        ..ApiOptions::default()
    }
}

pub fn signed_policy() -> TokenPolicy {
    TokenPolicy::Signed(vec![
        SigningKey::new("k2", b"a-new-secret-of-32-bytes-length!").unwrap(),
        SigningKey::new("k1", b"the-old-secret-16").unwrap(),
    ])
}

pub fn harness_with(tokens: TokenPolicy, limits: SizeLimits, options: ApiOptions) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new(5));
    let layout = KeyLayout::default();
    let state = AppState::new(
        store.clone(),
        queue.clone(),
        tokens,
        limits,
        layout,
        options,
    );
    let app = router(state.clone());
    Harness {
        dir,
        store,
        queue,
        state,
        app,
        layout,
    }
}

pub fn harness() -> Harness {
    harness_with(TokenPolicy::Public, SizeLimits::default(), options())
}

pub fn hash_of(seed: &str) -> AssetHash {
    AssetHash::of_bytes(seed.as_bytes())
}

impl Harness {
    /// Stores a manifest for an asset of `w`×`h` (0 = unknown).
    pub async fn put_asset(&self, hash: AssetHash, w: u32, h: u32) -> Manifest {
        let manifest = Manifest {
            v: V1,
            hash,
            original: SourceRef {
                bucket: None,
                key: self.layout.original(&hash, "jpg"),
            },
            media_type: "image/jpeg".into(),
            bytes: 100,
            width: w,
            height: h,
            duration_ms: None,
            hdr: None,
            video: None,
            outputs: BTreeMap::new(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        self.store
            .put(
                &self.layout.manifest(&hash),
                manifest.to_json().into(),
                "application/json",
            )
            .await
            .unwrap();
        manifest
    }

    /// Stores a fake thumbnail.
    pub async fn put_thumb(&self, hash: AssetHash, size: Size, body: &[u8]) {
        self.store
            .put(
                &self.layout.thumb(&hash, size),
                Bytes::copy_from_slice(body),
                size.format().content_type(),
            )
            .await
            .unwrap();
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        send(&self.app, request).await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// Messages ready in a queue.
    pub async fn ready(&self, queue: QueueName) -> u64 {
        self.queue
            .stats()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.queue == queue.name())
            .map(|s| s.ready + s.unacked)
            .unwrap_or(0)
    }

    /// Publishes a worker event.
    pub async fn event(&self, event: &Event) {
        publish_json(
            self.queue.as_ref(),
            Exchange::Events,
            &event.routing_key(),
            event,
        )
        .await
        .unwrap();
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body)
}

pub fn thumb_uri(hash: &AssetHash, token: &str, size: &str) -> String {
    format!("/api/v1/t/{hash}/{token}/{size}")
}

/// Waits until `cond` holds, polling, for at most `secs`.
pub async fn eventually<F, Fut>(secs: u64, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
