//! The status page and the queue-depth metrics against the real RabbitMQ
//! (and the real S3 server as the store), the page rendered by headless
//! Chromium (Debian's `chromium`; `make deps` installs it).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use thumbfarm_api::{ServeArgs, Server};
use thumbfarm_shared::messages::{Event, RenderJob, SourceRef, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, Exchange, Queue, QueueName};
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::AssetHash;

/// The API key of the tests that look at the operator view.
const OPERATOR_KEY: &str = "status-operator-key-0123456789";

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), thumbfarm_api::ServeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("server result");
    }
}

/// The API against the real broker and a fresh bucket, with no worker, so
/// published jobs stay in their queues. Token mode `public` unless `extra`
/// says otherwise.
async fn start_api() -> Running {
    start_api_with(&[]).await
}

/// [`start_api`] with more command-line options.
async fn start_api_with(extra: &[&str]) -> Running {
    s3_credentials();
    let bucket = unique_bucket("status");
    // Make the bucket (the API does not create it).
    let _ = s3_store(&bucket).await;
    let url = amqp_url();
    let endpoint = s3_endpoint();
    let args = ServeArgs::try_from_args(
        [
            "--listen",
            "127.0.0.1:0",
            "--amqp-url",
            url.as_str(),
            "--s3-bucket",
            bucket.as_str(),
            "--s3-endpoint",
            endpoint.as_str(),
            "--s3-path-style",
            "true",
            "--planner",
            "off",
            "--queue-stats-interval",
            "0.2",
        ]
        .into_iter()
        .chain(
            (!extra.contains(&"--token-mode"))
                .then_some(["--token-mode", "public"])
                .into_iter()
                .flatten(),
        )
        .chain(extra.iter().copied()),
    )
    .unwrap();
    let server = Server::bind(&args).await.expect("API starts");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        base: format!("http://{addr}"),
        stop: Some(tx),
        task,
    }
}

/// Publishes `n` render jobs and `t` transcode jobs that wait in their queues.
async fn publish_waiting_jobs(queue: &dyn Queue, n: usize, t: usize) {
    for i in 0..n {
        let job = RenderJob {
            v: V1,
            hash: Some(AssetHash::of_bytes(format!("waiting {i}").as_bytes())),
            source: SourceRef {
                bucket: None,
                key: format!("originals/waiting-{i}.jpg"),
            },
            sizes: vec![Size::Tile100.into()],
            force: false,
            media_type: Some("image/jpeg".into()),
        };
        publish_json(queue, Exchange::Jobs, "render.bulk", &job)
            .await
            .unwrap();
    }
    for i in 0..t {
        let job = TranscodeJob {
            v: V1,
            hash: Some(AssetHash::of_bytes(format!("clip {i}").as_bytes())),
            source: SourceRef {
                bucket: None,
                key: format!("clips/{i}.mp4"),
            },
            format: "avc".into(),
            force: false,
        };
        publish_json(queue, Exchange::Jobs, "transcode", &job)
            .await
            .unwrap();
    }
}

/// The value of `family{queue="<queue>"}` in a Prometheus exposition.
fn gauge(text: &str, family: &str, queue: &str) -> Option<i64> {
    let prefix = format!("{family}{{queue=\"{queue}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the API's gauges show `want` ready messages on render.bulk.
async fn wait_for_gauge(base: &str, want: u32) {
    let ok = eventually(30, || async {
        gauge(
            &metrics_text(base).await,
            "thumbfarm_queue_messages_ready",
            QueueName::RenderBulk.name(),
        ) == Some(i64::from(want))
    })
    .await;
    assert!(
        ok,
        "gauge never showed {want}: {}",
        metrics_text(base).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_depth_gauges_match_the_broker_while_jobs_wait() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let api = start_api().await;
    let queue = amqp().await;
    publish_waiting_jobs(queue.as_ref(), 7, 3).await;
    assert_eq!(broker_count(QueueName::RenderBulk).await, 7);
    wait_for_gauge(&api.base, 7).await;

    let text = metrics_text(&api.base).await;
    for q in QueueName::ALL {
        let broker = broker_count(q).await;
        assert_eq!(
            gauge(&text, "thumbfarm_queue_messages_ready", q.name()),
            Some(i64::from(broker)),
            "{}: {text}",
            q.name()
        );
        assert_eq!(
            gauge(&text, "thumbfarm_queue_consumers", q.name()),
            Some(0),
            "{}",
            q.name()
        );
    }
    assert_eq!(
        gauge(
            &text,
            "thumbfarm_queue_messages_ready",
            QueueName::Transcode.name()
        ),
        Some(3)
    );

    // More jobs arrive: the gauge follows the broker.
    publish_waiting_jobs(queue.as_ref(), 5, 0).await;
    assert_eq!(broker_count(QueueName::RenderBulk).await, 12);
    wait_for_gauge(&api.base, 12).await;

    api.stop().await;
    purge_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unacked_counts_and_rates_come_from_the_management_api() {
    use lapin::options::{BasicConsumeOptions, BasicQosOptions};
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let management = management_url();
    let api = start_api_with(&["--rabbitmq-management-url", management.as_str()]).await;
    let queue = amqp().await;
    publish_waiting_jobs(queue.as_ref(), 6, 0).await;

    // A consumer takes two jobs and holds them without acknowledging.
    let (conn, ch) = raw_channel().await;
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let _consumer = ch
        .basic_consume(
            QueueName::RenderBulk.name(),
            "holds-two",
            BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let bulk = QueueName::RenderBulk.name();
    let ok = eventually(60, || async {
        let text = metrics_text(&api.base).await;
        gauge(&text, "thumbfarm_queue_messages_unacked", bulk) == Some(2)
            && gauge(&text, "thumbfarm_queue_messages_ready", bulk) == Some(4)
            && gauge(&text, "thumbfarm_queue_consumers", bulk) == Some(1)
    })
    .await;
    let text = metrics_text(&api.base).await;
    assert!(
        ok,
        "management stats never showed 4 ready + 2 unacked: {text}"
    );
    assert!(
        text.contains(&format!(
            "thumbfarm_queue_rate{{kind=\"publish\",queue=\"{bulk}\"}}"
        )),
        "{text}"
    );

    let _ = conn.close(200, "done").await;
    api.stop().await;
    purge_all().await;
}

fn chromium() -> PathBuf {
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("headless Chromium is not installed (/usr/bin/chromium): run `make deps` (it installs Debian's `chromium`)");
}

/// The DOM of `url` after its scripts ran, from headless Chromium.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `attr` of the element that has `anchor` (an
/// attribute like `data-queue="x"`).
fn attr_after(dom: &str, anchor: &str, attr: &str) -> Option<String> {
    let start = dom.find(anchor)?;
    let tag_end = dom[start..].find('>')? + start;
    let tag = &dom[start..tag_end];
    let needle = format!("{attr}=\"");
    let v = tag.find(&needle)? + needle.len();
    let end = tag[v..].find('"')? + v;
    Some(tag[v..end].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_page_in_headless_chromium_shows_the_broker_depths() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let chromium_path = chromium();
    let api = start_api_with(&["--api-keys", OPERATOR_KEY]).await;
    let queue: Arc<dyn Queue> = amqp().await;
    publish_waiting_jobs(queue.as_ref(), 9, 2).await;

    // A failure and a render, as workers report them.
    let failed_hash = AssetHash::of_bytes(b"a broken file");
    let rendered_hash = AssetHash::of_bytes(b"a fine file");
    // The page subscribes when the API starts; give the subscription a moment.
    let client = reqwest::Client::new();
    let page = client.get(format!("{}/", api.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("set-cookie").is_none());
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let event_seen = |hash: AssetHash| {
        let client = client.clone();
        let base = api.base.clone();
        async move {
            let doc: serde_json::Value = client
                .get(format!("{base}/api/v1/status"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            doc.to_string().contains(hash.as_str())
        }
    };
    for _ in 0..3 {
        let e = Event::Failed {
            v: V1,
            hash: failed_hash,
            reason: "cannot decode: <b>not an image</b>".into(),
            permanent: true,
        };
        publish_json(queue.as_ref(), Exchange::Events, &e.routing_key(), &e)
            .await
            .unwrap();
        let r = Event::Rendered {
            v: V1,
            hash: rendered_hash,
            sizes: vec![
                Size::Tile50.into(),
                Size::Tile100.into(),
                Size::Fit720.into(),
            ],
            thumbhash: None,
        };
        publish_json(queue.as_ref(), Exchange::Events, &r.routing_key(), &r)
            .await
            .unwrap();
        if eventually(3, || event_seen(failed_hash)).await {
            break;
        }
    }
    // Render events come on their own subscription: they may trail the failure.
    assert!(eventually(5, || event_seen(rendered_hash)).await);
    wait_for_gauge(&api.base, 9).await;

    // The operator view: the key travels in the URL fragment, which the
    // page moves into sessionStorage and sends as a Bearer header.
    let url = format!("{}/#key={OPERATOR_KEY}", api.base);
    let dom = tokio::task::spawn_blocking(move || {
        let _ = chromium_path;
        dump_dom(&url)
    })
    .await
    .unwrap();

    // The script ran and polled the JSON endpoint at least once.
    let polls: u32 = attr_after(&dom, "<body", "data-polls")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(polls >= 1, "the page never polled /api/v1/status:\n{dom}");
    assert_eq!(
        attr_after(&dom, "<body", "data-access").as_deref(),
        Some("operator"),
        "the page did not use the key:\n{dom}"
    );

    // Every queue's depth on the page is the broker's own count.
    for q in QueueName::ALL {
        let anchor = format!("data-queue=\"{}\"", q.name());
        let shown = attr_after(&dom, &anchor, "data-ready")
            .unwrap_or_else(|| panic!("{} not on the page:\n{dom}", q.name()));
        let broker = broker_count(q).await;
        assert_eq!(shown, broker.to_string(), "{}", q.name());
        assert_eq!(
            attr_after(&dom, &anchor, "data-consumers").as_deref(),
            Some("0")
        );
    }
    assert_eq!(
        attr_after(
            &dom,
            &format!("data-queue=\"{}\"", QueueName::RenderBulk.name()),
            "data-ready"
        )
        .as_deref(),
        Some("9")
    );
    // The visible cell too, not just the attribute.
    assert!(
        dom.contains("<td class=\"num ready\">9</td>"),
        "ready cell not rendered:\n{dom}"
    );

    // Recent failures with their reason (escaped, not markup) and recent
    // renders as tile_100 thumbnails with minted URLs.
    assert!(
        dom.contains(&format!("data-hash=\"{failed_hash}\"")),
        "{dom}"
    );
    assert!(
        dom.contains("cannot decode: &lt;b&gt;not an image&lt;/b&gt;"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "src=\"/api/v1/t/{rendered_hash}/public/tile_100\""
        )),
        "{dom}"
    );

    // The JSON agrees (operator view).
    let doc: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/status", api.base))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["access"], "operator");
    assert!(doc["store"].as_str().unwrap().starts_with("s3://"));
    assert_eq!(
        doc["recent_failures"][0]["reason"],
        "cannot decode: <b>not an image</b>"
    );
    // Without the key: the same queues, a generic reason, no store name.
    let anon: serde_json::Value = reqwest::get(format!("{}/api/v1/status", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anon["access"], "anonymous");
    assert!(anon["store"].is_null() && anon["queue"].is_null(), "{anon}");
    assert_eq!(
        anon["recent_failures"][0]["reason"],
        "cannot be rendered: damaged file or not an image"
    );
    assert!(!anon.to_string().contains("tf-status-"), "{anon}");
    // A wrong key is refused, not silently downgraded.
    let wrong = reqwest::Client::new()
        .get(format!("{}/api/v1/status", api.base))
        .bearer_auth("not-the-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bulk = doc["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == QueueName::RenderBulk.name())
        .unwrap();
    assert_eq!(bulk["ready"], 9);
    assert_eq!(doc["recent_failures"][0]["permanent"], true);

    api.stop().await;
    purge_all().await;
}

#[tokio::test]
async fn status_routes_are_documented_and_can_be_turned_off() {
    let doc = thumbfarm_api::openapi::document();
    assert!(doc["paths"]["/"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/status"]["get"].is_object());

    // Turned off: both answer 404, nothing else changes.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let args = ServeArgs::try_from_args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--status-page",
        "false",
        "--planner",
        "off",
    ])
    .unwrap();
    let server = Server::bind(&args).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    for path in ["/", "/api/v1/status"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// Every `/api/v1/t/...` URL in `text`, as (hash, token, size).
fn thumb_urls(text: &str) -> Vec<(String, String, String)> {
    text.match_indices("/api/v1/t/")
        .filter_map(|(i, _)| {
            let rest = &text[i + "/api/v1/t/".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/_-.".contains(c)))
                .unwrap_or(rest.len());
            let mut parts = rest[..end].splitn(3, '/');
            Some((
                parts.next()?.to_string(),
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_mode_status_mints_no_url_without_the_key() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let signing = "k1:a-signing-secret-of-enough-length";
    let api = start_api_with(&[
        "--token-mode",
        "signed",
        "--signing-keys",
        signing,
        "--api-keys",
        OPERATOR_KEY,
    ])
    .await;
    let queue = amqp().await;
    let rendered = AssetHash::of_bytes(b"recently rendered in signed mode");
    let client = reqwest::Client::new();
    let status = |key: Option<&'static str>| {
        let client = client.clone();
        let base = api.base.clone();
        async move {
            let mut req = client.get(format!("{base}/api/v1/status"));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            req.send().await.unwrap().text().await.unwrap()
        }
    };
    // A render, as a worker reports it; wait until the board has seen it.
    let mut seen = false;
    for _ in 0..5 {
        let r = Event::Rendered {
            v: V1,
            hash: rendered,
            sizes: vec![Size::Tile100.into(), Size::Fit720.into()],
            thumbhash: None,
        };
        publish_json(queue.as_ref(), Exchange::Events, &r.routing_key(), &r)
            .await
            .unwrap();
        if eventually(3, || async {
            status(None).await.contains(rendered.as_str())
        })
        .await
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "the render event never reached the status board");

    // The operator view has a working signed URL: that is what an anonymous
    // caller must not get.
    let operator = status(Some(OPERATOR_KEY)).await;
    let minted = thumb_urls(&operator);
    assert!(!minted.is_empty(), "operator view has no URL: {operator}");
    let policy = thumbfarm_shared::tokens::TokenPolicy::Signed(vec![signing
        .parse::<thumbfarm_shared::tokens::SigningKey>()
        .unwrap()]);
    let (h, token, size) = &minted[0];
    assert!(policy.verify(
        &AssetHash::parse(h).unwrap(),
        thumbfarm_shared::tokens::Subject::Thumb(size.parse().unwrap()),
        token
    ));

    // Anonymous: neither the JSON nor the page holds any thumbnail URL, and
    // no token that verifies for the asset appears anywhere in them.
    let anon_json = status(None).await;
    let page = client
        .get(format!("{}/", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (what, text) in [("status JSON", &anon_json), ("page", &page)] {
        assert!(text.contains(rendered.as_str()), "{what} lost the hash");
        assert!(thumb_urls(text).is_empty(), "{what} has a URL: {text}");
        assert!(!text.contains(token.as_str()), "{what} has the token");
        for size in [Size::Tile100, Size::Fit720] {
            let t = policy.mint(
                &rendered,
                thumbfarm_shared::tokens::Subject::Thumb(size.into()),
            );
            assert!(!text.contains(&t), "{what} holds a valid token for {size}");
        }
    }
    api.stop().await;
    purge_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_listen_moves_the_status_page_and_metrics_to_the_operator_port() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let args = ServeArgs::try_from_args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--planner",
        "off",
    ])
    .unwrap();
    let server = Server::bind(&args).await.unwrap();
    let public = format!("http://{}", server.local_addr().unwrap());
    let admin = format!("http://{}", server.admin_addr().expect("admin port bound"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    for path in ["/", "/api/v1/status", "/metrics"] {
        assert_eq!(get(format!("{public}{path}")).await, 404, "public {path}");
        assert_eq!(get(format!("{admin}{path}")).await, 200, "admin {path}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(format!("{public}{path}")).await, 200, "public {path}");
        assert_eq!(get(format!("{admin}{path}")).await, 200, "admin {path}");
    }
    let hash = AssetHash::of_bytes(b"nothing");
    assert_eq!(
        get(format!("{admin}/api/v1/t/{hash}/public/tile_100")).await,
        404,
        "thumbnails are not on the operator port"
    );
    assert_eq!(
        get(format!("{public}/api/v1/t/{hash}/public/tile_100")).await,
        404,
        "unknown asset on the public port"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
