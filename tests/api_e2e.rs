//! The API end to end in both modes, with the real binaries:
//! - single-machine: `thumbfarm serve` alone (in-process queue and worker,
//!   local directory store);
//! - distributed: `thumbfarm-api serve` on RabbitMQ + S3 and a separate
//!   `thumbfarm-worker` process.
//!
//! A real photo is ingested over HTTP and every size is requested; the
//! answers are checked for status, content type and decoded pixel size.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::sizes::{plan, resolve, Plan, Size};
use thumbfarm_shared::AssetHash;

const KEY: &str = "e2e-api-key-0123456789";

/// Uploads a file through `POST /api/v1/ingest`; returns its hash.
async fn ingest(client: &reqwest::Client, base: &str, path: &Path) -> AssetHash {
    let body = std::fs::read(path).expect("photo");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let resp = client
        .post(format!("{base}/api/v1/ingest?name={name}"))
        .bearer_auth(KEY)
        .body(body.clone())
        .send()
        .await
        .expect("ingest");
    assert!(
        resp.status().is_success(),
        "ingest {}: {}",
        name,
        resp.status()
    );
    let json: serde_json::Value = resp.json().await.expect("ingest json");
    let hash = AssetHash::parse(json["hash"].as_str().unwrap_or_default()).expect("hash");
    assert_eq!(
        hash,
        AssetHash::of_bytes(&body),
        "the hash is the SHA-1 of the bytes"
    );
    hash
}

/// Requests every size and checks status, type and decoded pixel size
/// against the shared geometry for a `w`×`h` original; sizes above
/// `dynamic_limit` must be refused.
async fn check_every_size(
    client: &reqwest::Client,
    base: &str,
    hash: &AssetHash,
    (w, h): (u32, u32),
    dynamic_limit: u32,
) {
    for size in Size::ALL {
        let url = format!("{base}/api/v1/t/{hash}/public/{}", size.name());
        let resp = get_ready(client, &url, &[]).await;
        if size.long_side() > dynamic_limit {
            assert_eq!(resp.status(), 404, "{size} is above the dynamic limit");
            assert!(resp.headers().get("x-thumbfarm-reason").is_some());
            continue;
        }
        let Some(served) = resolve(size, w, h) else {
            assert_eq!(resp.status(), 404, "{size} of a square original");
            continue;
        };
        assert_eq!(resp.status(), 200, "{size}");
        assert!(resp.headers().get("set-cookie").is_none());
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(ct, size.format().content_type(), "{size}");
        let bytes = resp.bytes().await.expect("body");
        let img = image::load_from_memory(&bytes).expect("decodes");
        let Plan::Render(g) = plan(served, w, h) else {
            panic!("{served} must render");
        };
        assert_eq!(
            (img.width(), img.height()),
            (g.width, g.height),
            "{size} served as {served}"
        );
    }
}

async fn check_error_statuses(client: &reqwest::Client, base: &str, hash: &AssetHash) {
    let cases = [
        (format!("/api/v1/t/{}/public/tile_224", "Z".repeat(40)), 400),
        (
            format!("/api/v1/t/{}/public/tile_224", &hash.as_str()[..39]),
            400,
        ),
        (
            "/api/v1/t/..%2F..%2F..%2Fetc%2Fpasswd/public/fit_720".to_string(),
            400,
        ),
        (format!("/api/v1/t/{hash}/wrong-token/tile_224"), 403),
        (format!("/api/v1/t/{hash}/public/tile_225"), 404),
        (format!("/api/v1/t/{hash}/public/..%2F..%2Fmeta"), 404),
        (format!("/api/v1/t/{}/public/tile_224", "0".repeat(40)), 404),
    ];
    for (path, status) in cases {
        let resp = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if status != 404 || path.contains("/t/") {
            assert!(ct.starts_with("image/svg+xml"), "{path}: {ct}");
        }
    }
    // 304 on If-None-Match.
    let url = format!("{base}/api/v1/t/{hash}/public/tile_100");
    let first = client.get(&url).send().await.expect("thumb");
    let etag = first.headers().get("etag").cloned().expect("etag");
    let again = client
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(again.status(), 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_machine_mode_serves_every_size() {
    let data = tempfile::tempdir().expect("tempdir");
    let (_api, base) = spawn_single_machine(
        KEY,
        &[
            ("THUMBFARM_DATA_DIR", data.path().display().to_string()),
            // A small dynamic limit shows the over-limit answer too.
            ("THUMBFARM_DYNAMIC_SIZE_LIMIT", "4096".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;

    // A landscape JPEG, an iPhone HEIC with orientation, a square JPEG.
    let corpus = corpus();
    let elephants = ingest(&client, &base, &corpus.join("seed/elephants.jpg")).await;
    check_every_size(&client, &base, &elephants, (497, 331), 4096).await;
    let square = ingest(&client, &base, &corpus.join("seed/orange_square.jpg")).await;
    check_every_size(&client, &base, &square, (331, 331), 4096).await;
    let heic = ingest(&client, &base, &corpus.join("seed/iphone_7.heic")).await;
    let resp = get_ready(
        &client,
        &format!("{base}/api/v1/t/{heic}/public/fit_720"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let img = image::load_from_memory(&resp.bytes().await.expect("body")).expect("jpeg");
    // EXIF orientation 6 without irot: turned upright once.
    assert_eq!((img.width(), img.height()), (540, 720));

    check_error_statuses(&client, &base, &elephants).await;

    // Ingesting the same bytes again is a no-op with the same hash.
    assert_eq!(
        ingest(&client, &base, &corpus.join("seed/this-is-a-jpeg.png")).await,
        { AssetHash::of_bytes(&std::fs::read(corpus.join("seed/beach_wood.jpg")).expect("file")) }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_mode_with_a_separate_worker() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("api");
    let store = s3_store(&endpoint, &bucket).await;
    let (key, secret) = s3_credentials();
    let (_api, base) = spawn_api(
        KEY,
        &[
            ("THUMBFARM_AMQP_URL", amqp_url()),
            ("THUMBFARM_S3_BUCKET", bucket.clone()),
            ("THUMBFARM_S3_ENDPOINT", endpoint.clone()),
            ("THUMBFARM_S3_PATH_STYLE", "true".into()),
            ("THUMBFARM_WAIT_TIMEOUT", "3".into()),
            ("THUMBFARM_RETRY_AFTER", "7".into()),
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", "us-east-1".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;

    // No worker yet: ingest queues bulk work; a request waits, then 503.
    let photo = corpus().join("photos/jolla.jpg");
    let hash = ingest(&client, &base, &photo).await;
    assert!(store
        .head(&thumbfarm_shared::KeyLayout::default().original(&hash, "jpg"))
        .await
        .expect("head")
        .is_some());
    assert_eq!(ready_count(QueueName::RenderBulk).await, 1);

    // 50 concurrent requests for one missing size: exactly one job.
    let url = format!("{base}/api/v1/t/{hash}/public/tile_224");
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.expect("task").expect("response"));
    }
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert_eq!(
        ready_count(QueueName::RenderOnDemand).await,
        1,
        "one job for 50 requests"
    );
    let resp = client.get(&url).send().await.expect("retry");
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );

    // Once a worker runs, the same request succeeds.
    let _worker = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_LOG", "warn")]);
    wait_until(
        Duration::from_secs(60),
        "tile_224 once a worker runs",
        || async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    check_every_size(&client, &base, &hash, (3264, 2448), 7680).await;
    check_error_statuses(&client, &base, &hash).await;
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "{dead:?}");
}
