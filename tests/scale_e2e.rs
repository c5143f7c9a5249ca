//! Scale: what one thumbnail request costs the store, and one render per
//! miss across a cluster (issue 13). Real RabbitMQ, a real S3 server
//! (s3s-fs) behind a counting proxy, the real binaries, several of each.
//!
//! - A stored thumbnail is served with one store request (a GET), a
//!   revalidation and a HEAD with one HEAD; the manifest is read only when
//!   the rendition asked for is not stored under its own name.
//! - Three API replicas and four workers (prefetch 1), 300 concurrent
//!   requests for one missing `fit_2560` spread over the replicas: every
//!   request 200, one job published across the cluster, one render.
//! - Four identical render jobs taken by four workers at the same moment:
//!   one renders, the others wait for it and skip.
//! - The cluster simulator (`benches/sim/sim.py`) still agrees with queueing
//!   theory on the cases where theory has an answer.

mod common;

use std::time::Duration;

use common::cluster::{api_env, metric_total, spawn_single_slot_workers};
use common::s3_proxy::{CountingProxy, S3Request};
use common::*;
use thumbfarm_shared::messages::{RenderJob, V1};
use thumbfarm_shared::queue::{publish_json, topology::routing, Exchange};
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::{AssetHash, KeyLayout};

const KEY: &str = "e2e-scale-key-0123456789";

/// Waits until every worker's metrics answer (it is consuming by then).
async fn wait_workers(client: &reqwest::Client, urls: &[String]) {
    for url in urls {
        wait_until(Duration::from_secs(60), "a worker's /metrics", || async {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
}

fn thumb_path(bucket: &str, hash: &AssetHash, size: Size) -> String {
    format!("/{bucket}/{}", KeyLayout::default().thumb(hash, size))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_thumbnail_costs_one_store_request() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("count");
    let store = s3_store(&endpoint, &bucket).await;
    let proxy = CountingProxy::start(&endpoint).await;
    // The API talks to the store through the proxy, with its hot cache off;
    // the worker goes straight to the S3 server.
    let (_api, base) = spawn_api(
        KEY,
        &api_env(&proxy.endpoint, &bucket, &[("THUMBFARM_CACHE_BYTES", "0")]),
    );
    let (_workers, _) = spawn_single_slot_workers(&endpoint, &bucket, 1);
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    // 1280×960: fit_1920 and larger are served as fit_1280.
    let photo = generated_jpeg(13, 1280, 960);
    let manifest = store_asset(store.as_ref(), &photo, "jpg", "image/jpeg").await;
    let hash = manifest.hash;
    let url = |size: &str| format!("{base}/api/v1/t/{hash}/public/{size}");
    let first = get_ready(&client, &url("tile_224"), &[]).await;
    assert_eq!(first.status(), 200);
    let etag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_string();
    let body = first.bytes().await.expect("body");
    proxy.take();

    // A hit: one GET of the thumbnail, no manifest.
    let resp = client.get(url("tile_224")).send().await.expect("hit");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.expect("body"), body);
    let tile = thumb_path(&bucket, &hash, Size::Tile224);
    let get = |path: &str| S3Request {
        method: "GET".into(),
        path: path.to_string(),
    };
    let head = |path: &str| S3Request {
        method: "HEAD".into(),
        path: path.to_string(),
    };
    assert_eq!(proxy.take(), vec![get(&tile)], "one GET per hit");

    // A revalidation: one HEAD, 304.
    let resp = client
        .get(url("tile_224"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(resp.status(), 304);
    assert_eq!(proxy.take(), vec![head(&tile)], "one HEAD per revalidation");

    // A stale ETag: the HEAD, then the body.
    let resp = client
        .get(url("tile_224"))
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .expect("stale revalidation");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.expect("body"), body);
    assert_eq!(proxy.take(), vec![head(&tile), get(&tile)]);

    // HEAD: one HEAD, with the length of the body.
    let resp = client.head(url("tile_224")).send().await.expect("head");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(proxy.take(), vec![head(&tile)]);

    // A size the original is too small for is served as the one that is
    // stored: its own name misses, the manifest says which, then that one.
    let fit = get_ready(&client, &url("fit_1920"), &[]).await;
    assert_eq!(fit.status(), 200);
    let decoded = image::load_from_memory(&fit.bytes().await.expect("body")).expect("jpeg");
    assert_eq!((decoded.width(), decoded.height()), (1280, 960));
    proxy.take();
    let resp = client.get(url("fit_1920")).send().await.expect("fit_1920");
    assert_eq!(resp.status(), 200);
    let manifest_path = format!("/{bucket}/{}", KeyLayout::default().manifest(&hash));
    assert_eq!(
        proxy.take(),
        vec![
            get(&thumb_path(&bucket, &hash, Size::Fit1920)),
            get(&manifest_path),
            get(&thumb_path(&bucket, &hash, Size::Fit1280)),
        ]
    );

    // An unknown asset: its thumbnail, then its manifest, then 404.
    let unknown = AssetHash::of_bytes(b"never ingested");
    let resp = client
        .get(format!("{base}/api/v1/t/{unknown}/public/tile_224"))
        .send()
        .await
        .expect("unknown");
    assert_eq!(resp.status(), 404);
    assert_eq!(proxy.take().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_and_four_workers_render_a_miss_once() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("coalesce");
    let store = s3_store(&endpoint, &bucket).await;
    let photo = std::fs::read(corpus_file("photos/jolla.jpg")).expect("photo");
    let manifest = store_asset(store.as_ref(), &photo, "jpg", "image/jpeg").await;
    let hash = manifest.hash;

    let env = api_env(&endpoint, &bucket, &[]);
    let replicas: Vec<(Proc, String)> = (0..3).map(|_| spawn_api(KEY, &env)).collect();
    let (_workers, worker_metrics) = spawn_single_slot_workers(&endpoint, &bucket, 4);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for (_, base) in &replicas {
        wait_healthy(&client, base).await;
    }
    wait_workers(&client, &worker_metrics).await;

    let requests: Vec<_> = (0..300)
        .map(|i| {
            let client = client.clone();
            let url = format!("{}/api/v1/t/{hash}/public/fit_2560", replicas[i % 3].1);
            tokio::spawn(async move {
                let resp = client.get(&url).send().await.expect("request");
                let status = resp.status().as_u16();
                (status, resp.bytes().await.expect("body"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for r in requests {
        answers.push(r.await.expect("task"));
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let first = &answers[0].1;
    assert!(answers.iter().all(|(_, b)| b == first), "one thumbnail");
    let decoded = image::load_from_memory(first).expect("jpeg");
    assert_eq!((decoded.width(), decoded.height()), (2133, 1600));

    let api_metrics: Vec<String> = replicas
        .iter()
        .map(|(_, base)| format!("{base}/metrics"))
        .collect();
    let published = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_jobs_published_total{routing_key=\"render.ondemand\"}",
    )
    .await;
    assert_eq!(published, 1.0, "one job published across three replicas");
    let elsewhere = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_ondemand_claims_total{outcome=\"held_elsewhere\"}",
    )
    .await;
    assert_eq!(elsewhere, 2.0, "the other replicas waited for it");
    // The job's event may reach the test before its ack is counted.
    wait_until(Duration::from_secs(10), "the job to be settled", || async {
        metric_total(
            &client,
            &worker_metrics,
            "thumbfarm_worker_jobs_total{outcome=\"rendered\",queue=\"thumbfarm.render.ondemand\"}",
        )
        .await
            == 1.0
    })
    .await;
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_jobs_taken_at_once_wait_for_the_first_render() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("dupjobs");
    let store = s3_store(&endpoint, &bucket).await;
    let photo = std::fs::read(corpus_file("photos/jolla.jpg")).expect("photo");
    let manifest = store_asset(store.as_ref(), &photo, "jpg", "image/jpeg").await;
    let (_workers, worker_metrics) = spawn_single_slot_workers(&endpoint, &bucket, 4);
    let client = reqwest::Client::new();
    wait_workers(&client, &worker_metrics).await;

    // Four copies of one job (as four API replicas without claims, or a
    // redelivery racing the original, would publish): one per worker.
    let queue = amqp().await;
    let job = RenderJob {
        v: V1,
        hash: Some(manifest.hash),
        source: manifest.original.clone(),
        sizes: vec![Size::Fit2560.into(), Size::Tile500.into()],
        force: false,
        media_type: Some("image/jpeg".into()),
    };
    for _ in 0..4 {
        publish_json(
            queue.as_ref(),
            Exchange::Jobs,
            routing::RENDER_ONDEMAND,
            &job,
        )
        .await
        .expect("publish");
    }
    let settled =
        "thumbfarm_worker_jobs_total{outcome=\"skipped\",queue=\"thumbfarm.render.ondemand\"}";
    wait_until(Duration::from_secs(90), "four jobs settled", || async {
        let rendered = metric_total(
            &client,
            &worker_metrics,
            "thumbfarm_worker_jobs_total{outcome=\"rendered\",queue=\"thumbfarm.render.ondemand\"}",
        )
        .await;
        rendered + metric_total(&client, &worker_metrics, settled).await >= 4.0
    })
    .await;
    let rendered = metric_total(
        &client,
        &worker_metrics,
        "thumbfarm_worker_jobs_total{outcome=\"rendered\",queue=\"thumbfarm.render.ondemand\"}",
    )
    .await;
    assert_eq!(rendered, 1.0, "one render for four identical jobs");
    let waited = metric_total(
        &client,
        &worker_metrics,
        "thumbfarm_worker_render_claim_waits_total",
    )
    .await;
    assert!(waited >= 1.0, "a duplicate waited for the render: {waited}");
    let key = KeyLayout::default().thumb(&manifest.hash, Size::Fit2560);
    let stored = store.get(&key).await.expect("fit_2560 stored");
    let decoded = image::load_from_memory(&stored).expect("jpeg");
    assert_eq!((decoded.width(), decoded.height()), (2133, 1600));
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "{dead:?}");
}

#[test]
fn the_cluster_simulator_passes_its_queueing_theory_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sim = root.join("benches/sim/sim.py");
    assert!(sim.is_file(), "test input missing: {}", sim.display());
    let out = std::process::Command::new("python3")
        .arg(&sim)
        .arg("--self-test")
        .output()
        .expect("python3 (make deps)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("self-test passed"), "{text}");
}
