//! Permanent failures are remembered and concurrent jobs never lose each
//! other's outputs (issue 9, items 2, 3 and 5), with the real binaries on
//! the real RabbitMQ and S3 server:
//! - a corrupt original is rendered at most once however often (and across
//!   an API restart) its thumbnail is asked for; every answer is 422;
//! - the failure is cleared by `POST /api/v1/assets/{hash}/retry` and by
//!   re-ingesting the same bytes; a damaged manifest answers 422 and a
//!   re-ingest repairs it;
//! - 17 render jobs (one per size) and the transcode of one video, run at
//!   once by three workers, all end up in its manifest.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use thumbfarm_shared::manifest::{Manifest, IMAGE_OUTPUT};
use thumbfarm_shared::messages::{RenderJob, SourceRef, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, topology::routing, Exchange, QueueName};
use thumbfarm_shared::sizes::{resolve, Size};
use thumbfarm_shared::store::Store;
use thumbfarm_shared::{AssetHash, KeyLayout};

const KEY: &str = "e2e-failures-key-0123456789";

/// The environment of an API on the shared broker and `bucket`.
fn api_env(endpoint: &str, bucket: &str) -> Vec<(&'static str, String)> {
    let (key, secret) = s3_credentials();
    vec![
        ("THUMBFARM_AMQP_URL", amqp_url()),
        ("THUMBFARM_S3_BUCKET", bucket.to_string()),
        ("THUMBFARM_S3_ENDPOINT", endpoint.to_string()),
        ("THUMBFARM_S3_PATH_STYLE", "true".into()),
        ("THUMBFARM_WAIT_TIMEOUT", "30".into()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

async fn read_manifest(store: &dyn Store, hash: &AssetHash) -> Manifest {
    let bytes = store
        .get(&KeyLayout::default().manifest(hash))
        .await
        .expect("manifest");
    Manifest::from_json(&bytes).expect("manifest json")
}

async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// GETs `url` `n` times at once; returns the statuses.
async fn concurrent_statuses(client: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url.to_string();
            tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task").expect("response"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_rendered_once_and_answered_422_until_cleared() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("fail");
    let store = s3_store(&endpoint, &bucket).await;
    let corrupt = std::fs::read(corpus_file("ext/hostile/corrupt-header.jpg")).expect("read");
    let manifest = store_asset(store.as_ref(), &corrupt, "jpg", "image/jpeg").await;
    let hash = manifest.hash;

    let _worker = spawn_worker(&endpoint, &bucket, &[]);
    let (mut api, base) = spawn_api(KEY, &api_env(&endpoint, &bucket));
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let url = format!("{base}/api/v1/t/{hash}/public/tile_224");

    // 10 at once (they share one job), then 15 one after the other.
    let mut statuses = concurrent_statuses(&client, &url, 10).await;
    for _ in 0..15 {
        let resp = client.get(&url).send().await.expect("request");
        let reason = resp
            .headers()
            .get("x-thumbfarm-reason")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(reason.starts_with("cannot be rendered"), "{reason}");
        assert!(!reason.contains(&bucket) && !reason.contains("originals/"));
        statuses.push(resp.status().as_u16());
    }
    let m = metrics(&client, &base).await;
    assert_eq!(
        metric_value(
            &m,
            "thumbfarm_api_jobs_published_total{routing_key=\"render.ondemand\"}"
        ),
        1.0,
        "one on-demand job, counted:\n{m}"
    );
    assert!(
        metric_value(
            &m,
            "thumbfarm_failed_requests_suppressed_total{output=\"image\"}"
        ) >= 14.0,
        "later requests are answered from the failure record:\n{m}"
    );
    let recorded = read_manifest(store.as_ref(), &hash).await;
    let failure = recorded
        .failures
        .get(IMAGE_OUTPUT)
        .expect("the failure is recorded in the manifest");
    assert!(!failure.reason.is_empty() && !failure.worker_version.is_empty());

    // A restarted API knows it from the manifest: 25 more, no job.
    api.terminate(Duration::from_secs(10));
    let (_api, base) = spawn_api(KEY, &api_env(&endpoint, &bucket));
    wait_healthy(&client, &base).await;
    let url = format!("{base}/api/v1/t/{hash}/public/tile_224");
    statuses.extend(concurrent_statuses(&client, &url, 5).await);
    for _ in 0..20 {
        statuses.push(
            client
                .get(&url)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.len(), 50);
    assert!(statuses.iter().all(|s| *s == 422), "{statuses:?}");
    let m = metrics(&client, &base).await;
    assert_eq!(
        metric_value(
            &m,
            "thumbfarm_api_jobs_published_total{routing_key=\"render.ondemand\"}"
        ),
        0.0,
        "{m}"
    );
    let dead = drain_dead().await;
    assert_eq!(
        dead.len(),
        1,
        "one render attempt for 50 requests: {dead:?}"
    );
    assert_eq!(ready_count(QueueName::RenderOnDemand).await, 0);

    // The preview list marks the failed sizes.
    let list: serde_json::Value = client
        .get(format!("{base}/api/v1/previews/{hash}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("previews")
        .json()
        .await
        .expect("previews json");
    let entries = list.as_array().expect("array");
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["failed"]
            .as_str()
            .is_some_and(|r| r.starts_with("cannot be rendered"))),
        "{list}"
    );

    // Retry: only with the API key; it clears the record and renders again
    // (and fails again: one more dead letter, recorded again).
    let retry = format!("{base}/api/v1/assets/{hash}/retry");
    let resp = client.post(&retry).send().await.expect("retry");
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&retry)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("retry");
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.expect("retry json");
    assert_eq!(body["cleared"], serde_json::json!([IMAGE_OUTPUT]));
    assert_eq!(body["jobs"], 1);
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        dead.extend(drain_dead().await);
        let recorded = !read_manifest(store.as_ref(), &hash)
            .await
            .failures
            .is_empty();
        if !dead.is_empty() && recorded {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the retried job did not fail and record again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].routing_key, routing::RENDER_BULK);

    // Re-ingesting the same bytes clears it too.
    let resp = client
        .post(format!("{base}/api/v1/ingest?name=x.jpg"))
        .bearer_auth(KEY)
        .body(corrupt.clone())
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 200, "a known asset");
    let m = metrics(&client, &base).await;
    assert_eq!(
        metric_value(
            &m,
            "thumbfarm_api_jobs_published_total{routing_key=\"render.bulk\"}"
        ),
        2.0,
        "retry and re-ingest each published one job:\n{m}"
    );
    wait_until(Duration::from_secs(60), "the re-ingested job", || async {
        !drain_dead().await.is_empty()
    })
    .await;

    // Nothing to clear: 200, no job.
    wait_until(
        Duration::from_secs(30),
        "the failure recorded again",
        || {
            let store = store.clone();
            async move {
                !read_manifest(store.as_ref(), &hash)
                    .await
                    .failures
                    .is_empty()
            }
        },
    )
    .await;
    let unknown = AssetHash::of_bytes(b"never ingested");
    let resp = client
        .post(format!("{base}/api/v1/assets/{unknown}/retry"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("retry unknown");
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_manifest_is_a_clear_422_and_reingest_repairs_it() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("dmg");
    let store = s3_store(&endpoint, &bucket).await;
    let photo = generated_jpeg(9, 640, 480);
    let manifest = store_asset(store.as_ref(), &photo, "jpg", "image/jpeg").await;
    let hash = manifest.hash;
    let meta_key = KeyLayout::default().manifest(&hash);
    store
        .put(
            &meta_key,
            Bytes::from_static(b"{\"v\":1,\"hash\":"),
            "application/json",
        )
        .await
        .expect("damage the manifest");

    let _worker = spawn_worker(&endpoint, &bucket, &[]);
    let (_api, base) = spawn_api(KEY, &api_env(&endpoint, &bucket));
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let url = format!("{base}/api/v1/t/{hash}/public/tile_224");
    for _ in 0..3 {
        let resp = client.get(&url).send().await.expect("request");
        assert_eq!(resp.status(), 422, "never an endless 503");
    }
    let resp = client
        .get(format!("{base}/api/v1/previews/{hash}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("previews");
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("re-ingest"),
        "{body}"
    );
    assert_eq!(
        ready_count(QueueName::RenderOnDemand).await,
        0,
        "nothing published"
    );

    // Re-ingest writes a fresh manifest and renders.
    let resp = client
        .post(format!("{base}/api/v1/ingest?name=x.jpg"))
        .bearer_auth(KEY)
        .body(photo)
        .send()
        .await
        .expect("ingest");
    assert!(resp.status().is_success(), "{}", resp.status());
    wait_until(
        Duration::from_secs(60),
        "tile_224 after re-ingest",
        || async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    assert_eq!(read_manifest(store.as_ref(), &hash).await.width, 640);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_of_one_asset_keep_every_output_in_its_manifest() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("race");
    let store = s3_store(&endpoint, &bucket).await;
    let clip = std::fs::read(corpus_file("seed/example.mp4")).expect("read");
    let manifest = store_asset(store.as_ref(), &clip, "mp4", "video/mp4").await;
    let hash = manifest.hash;
    let queue = amqp().await;
    // Every size on its own job, and the transcode, all queued before any
    // worker starts so that they run at the same moments.
    for size in Size::ALL {
        let job = RenderJob {
            v: V1,
            hash: Some(hash),
            source: manifest.original.clone(),
            sizes: vec![size.into()],
            force: false,
            media_type: Some("video/mp4".into()),
        };
        publish_json(queue.as_ref(), Exchange::Jobs, routing::RENDER_BULK, &job)
            .await
            .expect("publish render");
    }
    let transcode = TranscodeJob {
        v: V1,
        hash: Some(hash),
        source: manifest.original.clone(),
        format: "avc".into(),
        force: false,
    };
    publish_json(
        queue.as_ref(),
        Exchange::Jobs,
        routing::TRANSCODE,
        &transcode,
    )
    .await
    .expect("publish transcode");
    let env = [("THUMBFARM_CONCURRENCY", "3"), ("THUMBFARM_PREFETCH", "3")];
    let _workers: Vec<_> = (0..3)
        .map(|_| spawn_worker(&endpoint, &bucket, &env))
        .collect();

    wait_until(Duration::from_secs(240), "every job settled", || async {
        ready_count(QueueName::RenderBulk).await == 0
            && ready_count(QueueName::Transcode).await == 0
            && store
                .head(&KeyLayout::default().video(&hash))
                .await
                .is_ok_and(|m| m.is_some())
    })
    .await;
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "{dead:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (m, expected) = loop {
        let m = read_manifest(store.as_ref(), &hash).await;
        let expected: Vec<String> = Size::ALL
            .iter()
            .filter_map(|s| resolve(*s, m.width, m.height))
            .map(|s| s.name().to_string())
            .chain(std::iter::once("avc".to_string()))
            .collect();
        if m.has_dimensions() && expected.iter().all(|o| m.outputs.contains_key(o)) {
            break (m, expected);
        }
        if std::time::Instant::now() > deadline {
            break (m, expected);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(m.has_dimensions(), "{m:?}");
    for output in &expected {
        assert!(m.outputs.contains_key(output), "{output} lost: {m:?}");
        if output != "avc" {
            let size: Size = output.parse().expect("size");
            let key = KeyLayout::default().thumb(&hash, size);
            assert!(
                store.head(&key).await.expect("head").is_some(),
                "{key} stored"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_configuration_error_holds_the_job_and_makes_the_worker_unready() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let port = free_port();
    let root = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut s3 = spawn_s3s(port, root.path());
    let bucket = unique_bucket("cfg");
    let store = s3_store(&endpoint, &bucket).await;
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let _worker = spawn_worker(
        &endpoint,
        &bucket,
        &[("THUMBFARM_METRICS_LISTEN", metrics_listen.as_str())],
    );
    let client = reqwest::Client::new();
    let readyz = format!("http://{metrics_listen}/readyz");
    wait_until(
        Duration::from_secs(30),
        "the worker to be ready",
        || async {
            client
                .get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;

    let photo = generated_jpeg(77, 320, 240);
    let hash = AssetHash::of_bytes(&photo);
    let key = KeyLayout::default().original(&hash, "jpg");
    store
        .put(&key, Bytes::from(photo), "image/jpeg")
        .await
        .expect("put original");

    // The server's credentials are rotated and the worker's are not (an
    // operator's mistake): InvalidAccessKeyId is a configuration error, not
    // an outage to retry for 300 s per job.
    s3.kill();
    let rotated = spawn_s3s_with_credentials(port, root.path(), "rotated-key", "rotated-secret");
    let job = RenderJob {
        v: V1,
        hash: Some(hash),
        source: SourceRef {
            bucket: None,
            key: key.clone(),
        },
        sizes: vec![Size::Tile224.into()],
        force: false,
        media_type: Some("image/jpeg".into()),
    };
    let queue = amqp().await;
    publish_json(queue.as_ref(), Exchange::Jobs, routing::RENDER_BULK, &job)
        .await
        .expect("publish");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let cause = loop {
        if let Ok(r) = client.get(&readyz).send().await {
            if r.status() == 503 {
                break r.text().await.unwrap_or_default();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not turn unready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        cause.contains(&bucket) && cause.contains("refused"),
        "/readyz names the cause: {cause}"
    );
    assert!(drain_dead().await.is_empty(), "nothing dead-lettered");

    // Fixed: the job held in hand goes through, the worker is ready again.
    drop(rotated);
    let _s3 = spawn_s3s(port, root.path());
    let thumb = KeyLayout::default().thumb(&hash, Size::Tile224);
    wait_until(
        Duration::from_secs(60),
        "the held job to render",
        || async { store.head(&thumb).await.is_ok_and(|m| m.is_some()) },
    )
    .await;
    wait_until(
        Duration::from_secs(10),
        "the worker to be ready again",
        || async {
            client
                .get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    assert!(drain_dead().await.is_empty());
}
