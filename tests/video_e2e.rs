//! Video end to end with the real binaries on RabbitMQ + S3: an API, a render
//! worker (`--queues render`) and a transcode worker (`--queues transcode`).
//! Real corpus videos are ingested over HTTP; the AVC MP4 is fetched through
//! `GET /api/v1/videos/…/avc` (whole and by range) and checked with
//! `ffprobe`, and the poster thumbnails are fetched by the video's hash.
//! Hostile videos end in `thumbfarm.dead` with a reason.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::{AssetHash, KeyLayout, Manifest};

const KEY: &str = "e2e-video-key-0123456789";

/// `ffprobe -show_format -show_streams` of a file, as JSON.
fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe {}", path.display());
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

fn duration(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

/// The top-level MP4 box types, in order.
fn top_level_boxes(data: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut i = 0usize;
    while i + 8 <= data.len() {
        let size = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as u64;
        let size = match size {
            1 if i + 16 <= data.len() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[i + 8..i + 16]);
                u64::from_be_bytes(b)
            }
            0 => (data.len() - i) as u64,
            s => s,
        };
        boxes.push(String::from_utf8_lossy(&data[i + 4..i + 8]).to_string());
        if size < 8 {
            break;
        }
        i += size as usize;
    }
    boxes
}

async fn ingest(client: &reqwest::Client, base: &str, path: &Path) -> AssetHash {
    let body = std::fs::read(path).expect("video");
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
        "ingest {name}: {}",
        resp.status()
    );
    let hash = AssetHash::of_bytes(&body);
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(json["hash"], hash.to_string());
    hash
}

/// GETs the video URL until it is 200 (202 while the transcode runs).
async fn fetch_video(client: &reqwest::Client, url: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let resp = client.get(url).send().await.expect("request");
        match resp.status().as_u16() {
            200 => {
                let headers = resp.headers().clone();
                return (headers, resp.bytes().await.expect("body").to_vec());
            }
            202 => {
                assert!(resp.headers().contains_key("retry-after"));
                assert!(std::time::Instant::now() < deadline, "{url}: still 202");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => panic!("{url}: unexpected status {other}"),
        }
    }
}

async fn ranged(
    client: &reqwest::Client,
    url: &str,
    range: &str,
) -> (u16, Option<String>, Vec<u8>) {
    let resp = client
        .get(url)
        .header("range", range)
        .send()
        .await
        .expect("range request");
    let status = resp.status().as_u16();
    let content_range = resp
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        status,
        content_range,
        resp.bytes().await.expect("body").to_vec(),
    )
}

/// The decoded pixel size of a thumbnail, fetched until it is 200.
async fn thumb_size(client: &reqwest::Client, url: &str) -> (u32, u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let resp = client.get(url).send().await.expect("thumb");
        if resp.status() == 200 {
            assert_eq!(resp.headers()["content-type"], "image/jpeg");
            let body = resp.bytes().await.expect("body");
            let img = image::load_from_memory(&body).expect("decodable thumbnail");
            return (img.width(), img.height());
        }
        assert_eq!(resp.status(), 503, "{url}");
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: never rendered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn s3_env(endpoint: &str, bucket: &str) -> Vec<(&'static str, String)> {
    let (key, secret) = s3_credentials();
    vec![
        ("THUMBFARM_AMQP_URL", amqp_url()),
        ("THUMBFARM_S3_BUCKET", bucket.to_string()),
        ("THUMBFARM_S3_ENDPOINT", endpoint.to_string()),
        ("THUMBFARM_S3_PATH_STYLE", "true".into()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_are_transcoded_streamed_by_range_and_get_posters() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("video");
    // Creates the bucket.
    let _store = s3_store(&endpoint, &bucket).await;
    let mut env = s3_env(&endpoint, &bucket);
    env.push(("THUMBFARM_VIDEO_WAIT", "0".into()));
    env.push(("THUMBFARM_RETRY_AFTER", "2".into()));
    let (_api, base) = spawn_api(KEY, &env);
    let _render = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "render")]);
    let _transcode = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "transcode")]);
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;

    let dir = tempfile::tempdir().expect("tempdir");
    // An H.264 MP4 (remuxed), an AVI and a MOV with AAC audio.
    for name in ["christmas.mp4", "earth.avi", "earth.mov"] {
        let src = corpus().join("seed").join(name);
        let hash = ingest(&client, &base, &src).await;
        let url = format!("{base}/api/v1/videos/{hash}/public/avc");
        let (headers, body) = fetch_video(&client, &url).await;
        assert_eq!(headers["content-type"], "video/mp4", "{name}");
        assert_eq!(headers["accept-ranges"], "bytes", "{name}");

        // It plays: H.264, yuv420p, same duration, moov before mdat.
        let boxes = top_level_boxes(&body);
        let moov = boxes.iter().position(|b| b == "moov");
        let mdat = boxes.iter().position(|b| b == "mdat");
        assert!(
            matches!((moov, mdat), (Some(m), Some(d)) if m < d),
            "{name}: {boxes:?}"
        );
        let out = dir.path().join(format!("{name}.mp4"));
        std::fs::write(&out, &body).expect("write mp4");
        let probe = ffprobe(&out);
        let video = probe["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
            .cloned()
            .expect("video stream");
        assert_eq!(video["codec_name"], "h264", "{name}");
        assert_eq!(video["pix_fmt"], "yuv420p", "{name}");
        let (want, got) = (duration(&ffprobe(&src)), duration(&probe));
        assert!((want - got).abs() <= 0.1, "{name}: {got} s vs {want} s");

        // Range requests on the real file.
        let len = body.len();
        let (status, cr, part) = ranged(&client, &url, "bytes=0-99").await;
        assert_eq!((status, part.as_slice()), (206, &body[..100]), "{name}");
        assert_eq!(cr.as_deref(), Some(format!("bytes 0-99/{len}").as_str()));
        let mid = len / 2;
        let (status, _, part) = ranged(&client, &url, &format!("bytes={mid}-{}", mid + 999)).await;
        assert_eq!(
            (status, part.as_slice()),
            (206, &body[mid..mid + 1000]),
            "{name}"
        );
        let (status, _, part) = ranged(&client, &url, "bytes=-500").await;
        assert_eq!(
            (status, part.as_slice()),
            (206, &body[len - 500..]),
            "{name}"
        );
        let (status, cr, _) = ranged(&client, &url, &format!("bytes={len}-")).await;
        assert_eq!(status, 416, "{name}");
        assert_eq!(cr.as_deref(), Some(format!("bytes */{len}").as_str()));
        let (status, _, part) = ranged(&client, &url, "bytes=0-1,5-9").await;
        assert_eq!((status, part.len()), (200, len), "{name}: several ranges");

        // Poster thumbnails, keyed by the video's own hash.
        let tile = format!("{base}/api/v1/t/{hash}/public/tile_500");
        assert_eq!(thumb_size(&client, &tile).await, (500, 500), "{name}");
        let fit = format!("{base}/api/v1/t/{hash}/public/fit_720");
        let (w, h) = thumb_size(&client, &fit).await;
        let (vw, vh) = (
            video["width"].as_u64().unwrap_or(0) as u32,
            video["height"].as_u64().unwrap_or(0) as u32,
        );
        // These clips are smaller than 720 px: the poster is never upscaled.
        assert_eq!((w, h), (vw, vh), "{name}");
    }
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(ready_count(QueueName::Transcode).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_videos_are_dead_lettered_with_a_reason() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("badvideo");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    let layout = KeyLayout::default();

    let mov = std::fs::read(corpus().join("seed/earth.mov")).expect("mov");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.mov", mov[..mov.len() / 2].to_vec()),
        ("empty.mp4", Vec::new()),
        ("notes.mp4", b"this is not a video\n".repeat(200)),
    ];
    let mut hashes = Vec::new();
    for (name, body) in cases
        .iter()
        .map(|(n, b)| (n.to_string(), b.clone()))
        .chain([(
            "good.mp4".to_string(),
            std::fs::read(corpus().join("seed/christmas.mp4")).expect("mp4"),
        )])
    {
        let hash = upload_video(store.as_ref(), body).await;
        publish_transcode(queue.as_ref(), hash).await;
        hashes.push((name, hash));
    }
    let mut worker = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "transcode")]);
    let good = hashes.last().map(|(_, h)| *h).expect("good");
    wait_until(Duration::from_secs(120), "the good transcode", || async {
        store
            .head(&layout.video(&good))
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dead.len() < cases.len() && std::time::Instant::now() < deadline {
        dead.extend(drain_dead().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), cases.len(), "{dead:#?}");
    for d in &dead {
        assert_eq!(d.routing_key, "transcode");
        assert!(
            d.reason.as_deref().is_some_and(|r| !r.is_empty()),
            "no reason: {d:?}"
        );
    }
    for (name, hash) in &hashes[..cases.len()] {
        assert!(
            store
                .head(&layout.video(hash))
                .await
                .expect("head")
                .is_none(),
            "{name}: nothing under the final key"
        );
    }
    assert!(worker.running(), "the worker survives hostile videos");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_transcode_redoes_it_and_never_shows_a_partial_file() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("killvideo");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    let layout = KeyLayout::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = synthetic_clip(dir.path(), "clip");
    let body = std::fs::read(&clip).expect("clip");
    let hash = upload_video(store.as_ref(), body).await;

    // Progress events tell when the transcode is under way.
    let mut progress = queue
        .subscribe(&format!("progress.{hash}"))
        .await
        .expect("subscribe");
    publish_transcode(queue.as_ref(), hash).await;
    let mut worker = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "transcode")]);
    let first = tokio::time::timeout(Duration::from_secs(120), progress.next())
        .await
        .expect("a progress event within 120 s")
        .expect("subscription open");
    let event: serde_json::Value = serde_json::from_slice(&first.body).expect("event json");
    assert_eq!(event["event"], "progress");
    let percent = event["percent"].as_u64().unwrap_or(100);
    assert!(percent < 100, "{event}");

    // Killed mid-transcode: nothing appears under the final key.
    worker.kill();
    let video_key = layout.video(&hash);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        store.head(&video_key).await.expect("head").is_none(),
        "a partial transcode is visible"
    );

    // The broker redelivers the job; a new worker does it from scratch.
    let mut percents = Vec::new();
    let _worker = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "transcode")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while store.head(&video_key).await.ok().flatten().is_none() {
        assert!(std::time::Instant::now() < deadline, "never redone");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), progress.next()).await
        {
            let e: serde_json::Value = serde_json::from_slice(&m.body).expect("event json");
            percents.push(e["percent"].as_u64().unwrap_or(0));
        }
    }
    assert!(
        percents.first().is_some_and(|p| *p <= percent),
        "the redelivered job starts again from the beginning: {percents:?}"
    );
    let out = dir.path().join("out.mp4");
    let bytes = store.get(&video_key).await.expect("get video");
    std::fs::write(&out, &bytes).expect("write");
    let probe = ffprobe(&out);
    assert!((duration(&probe) - 20.0).abs() <= 0.1, "{probe}");
    assert!(drain_dead().await.is_empty());
}

/// Starts the transcode of a 20 s clip on a fresh worker with `grace`
/// seconds to finish after SIGTERM, and waits for its first progress event
/// (the job is in hand). Returns the worker, the store, the hash and the
/// video key.
async fn transcode_in_hand(
    tag: &str,
    grace: &str,
    dir: &Path,
) -> (Proc, Arc<dyn Store>, AssetHash, String) {
    let endpoint = s3_endpoint();
    let bucket = unique_bucket(tag);
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    let clip = synthetic_clip(dir, "clip");
    let hash = upload_video(store.as_ref(), std::fs::read(&clip).expect("clip")).await;
    let mut progress = queue
        .subscribe(&format!("progress.{hash}"))
        .await
        .expect("subscribe");
    publish_transcode(queue.as_ref(), hash).await;
    let worker = spawn_worker(
        &endpoint,
        &bucket,
        &[
            ("THUMBFARM_QUEUES", "transcode"),
            ("THUMBFARM_GRACE_SECONDS", grace),
        ],
    );
    let first = tokio::time::timeout(Duration::from_secs(120), progress.next())
        .await
        .expect("a progress event within 120 s")
        .expect("subscription open");
    let event: serde_json::Value = serde_json::from_slice(&first.body).expect("event json");
    assert!(
        event["percent"].as_u64().unwrap_or(100) < 100,
        "still in hand: {event}"
    );
    let key = KeyLayout::default().video(&hash);
    (worker, store, hash, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_job_in_hand_and_acks_it() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut worker, store, hash, key) = transcode_in_hand("termok", "120", dir.path()).await;
    assert!(
        store.head(&key).await.expect("head").is_none(),
        "not done yet"
    );

    // SIGTERM while the transcode runs: it is finished, stored and acked
    // before the worker exits 0.
    let status = worker
        .terminate(Duration::from_secs(150))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        store.head(&key).await.expect("head").is_some(),
        "the job in hand finished before exit"
    );
    let manifest = Manifest::from_json(
        &store
            .get(&KeyLayout::default().manifest(&hash))
            .await
            .expect("manifest"),
    )
    .expect("manifest json");
    assert!(manifest.outputs.contains_key("avc"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ready_count(QueueName::Transcode).await,
        0,
        "acked, not given back"
    );
    assert!(drain_dead().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_gives_the_job_back_without_a_failure() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut worker, store, hash, key) = transcode_in_hand("termgrace", "1", dir.path()).await;

    // One second of grace cannot finish a 20 s transcode: the worker exits
    // and the broker gets the job back, not as a failure.
    let status = worker
        .terminate(Duration::from_secs(30))
        .expect("exit after SIGTERM and the grace period");
    assert!(status.success(), "{status:?}");
    wait_until(
        Duration::from_secs(10),
        "the job back on its queue",
        || async { ready_count(QueueName::Transcode).await == 1 },
    )
    .await;
    assert!(store.head(&key).await.expect("head").is_none());
    assert!(drain_dead().await.is_empty(), "not dead-lettered");
    if let Ok(bytes) = store.get(&KeyLayout::default().manifest(&hash)).await {
        let manifest = Manifest::from_json(&bytes).expect("manifest json");
        assert!(
            manifest.failures.is_empty(),
            "no failure recorded: {manifest:?}"
        );
    }
}
