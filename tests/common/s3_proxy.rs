//! A counting HTTP proxy in front of the S3 server: every request a process
//! sends to the store passes through it unchanged (the `Host` header too, so
//! the SigV4 signature still matches) and is written down, as the S3 server
//! receives it. s3s-fs has no request counters of its own.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use std::sync::{Arc, Mutex};

/// One request the S3 server received: method and path (`/bucket/key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    pub method: String,
    pub path: String,
}

/// A request with how long the S3 server took to answer it (through the
/// proxy), in seconds.
#[derive(Debug, Clone)]
pub struct TimedRequest {
    pub request: S3Request,
    pub seconds: f64,
}

#[derive(Clone)]
struct Forward {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<TimedRequest>>>,
}

/// The proxy; stops when dropped.
pub struct CountingProxy {
    /// The endpoint to give thumbfarm instead of the S3 server's.
    pub endpoint: String,
    seen: Arc<Mutex<Vec<TimedRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one hop, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade"
    )
}

async fn forward(State(f): State<Forward>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let target = format!(
        "{}{}",
        f.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let started = std::time::Instant::now();
    let request = S3Request {
        method: parts.method.to_string(),
        path,
    };
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let mut upstream = f.client.request(parts.method, target);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.body(body).send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    f.seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(TimedRequest {
            request,
            seconds: started.elapsed().as_secs_f64(),
        });
    response
        .body(Body::from(bytes))
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

impl CountingProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Forward {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("proxy client"),
            seen: Arc::clone(&seen),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the counting proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            // Without it, small answers meet Nagle and delayed ACKs (40 ms).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
        CountingProxy {
            endpoint,
            seen,
            task,
        }
    }

    /// The requests answered since the last call (of either kind).
    pub fn take(&self) -> Vec<S3Request> {
        self.take_timed().into_iter().map(|t| t.request).collect()
    }

    /// [`CountingProxy::take`] with the time each request took.
    pub fn take_timed(&self) -> Vec<TimedRequest> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
