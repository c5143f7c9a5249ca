//! Decoders in supervised children (`--isolate-decoders`, the default),
//! with the real worker binary on the real RabbitMQ and S3 server and the
//! real FFmpeg: a child killed mid-render (SIGSEGV) or mid-transcode
//! (SIGKILL) and a pixel bomb under a low `--job-memory-limit` each fail
//! their job with a clear reason, the worker lives on and does the next job.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use thumbfarm_shared::messages::{RenderJob, SourceRef, V1};
use thumbfarm_shared::queue::{publish_json, topology::routing, Exchange, Queue};
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::{AssetHash, KeyLayout, Manifest};

/// Uploads `body` as an original and returns its render job of `sizes`.
async fn job_for(store: &dyn Store, body: Vec<u8>, sizes: Vec<Size>) -> RenderJob {
    let hash = AssetHash::of_bytes(&body);
    let key = KeyLayout::default().original(&hash, "jpg");
    store
        .put(&key, Bytes::from(body), "image/jpeg")
        .await
        .expect("upload");
    RenderJob {
        v: V1,
        hash: Some(hash),
        source: SourceRef { bucket: None, key },
        sizes: sizes.into_iter().map(Into::into).collect(),
        force: false,
        media_type: Some("image/jpeg".into()),
    }
}

async fn publish(queue: &dyn Queue, job: &RenderJob) {
    publish_json(queue, Exchange::Jobs, routing::RENDER_BULK, job)
        .await
        .expect("publish");
}

/// The decoder children of `parent` (pids).
fn decoder_children(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid …
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("__decoder-child")
        })
        .collect()
}

/// Kibibytes resident of `pid`.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A decoder child of `parent` that is at work: over `min_kib` resident
/// (children are started idle ahead of the first job).
fn busy_child(parent: u32, min_kib: u64) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = decoder_children(parent)
            .into_iter()
            .find(|pid| rss_kib(*pid) >= min_kib)
        {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no decoder child of {parent} at work"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Waits for the manifest of `hash` to have dimensions.
async fn rendered(store: &dyn Store, hash: &AssetHash) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if let Ok(bytes) = store.get(&KeyLayout::default().manifest(hash)).await {
            if Manifest::from_json(&bytes)
                .is_ok_and(|m| m.has_dimensions() && !m.outputs.is_empty())
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Waits for `n` dead letters.
async fn dead_letters(n: usize) -> Vec<DeadLetter> {
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dead.len() < n && std::time::Instant::now() < deadline {
        dead.extend(drain_dead().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dead
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_killed_mid_job_fails_that_job_and_the_next_renders() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("iso");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    // A full-size decode and two large encodes: long enough to be caught.
    let big = job_for(
        store.as_ref(),
        generated_jpeg(41, 8000, 6000),
        vec![Size::Fit7680, Size::Fit4096],
    )
    .await;
    let small = job_for(
        store.as_ref(),
        generated_jpeg(42, 640, 480),
        vec![Size::Tile224],
    )
    .await;
    let mut worker = spawn_worker(
        &endpoint,
        &bucket,
        &[
            ("THUMBFARM_ISOLATE_DECODERS", "true"),
            ("THUMBFARM_CONCURRENCY", "1"),
        ],
    );
    publish(queue.as_ref(), &big).await;

    // The child doing the job (decoding 48 MP: over 100 MB resident) is
    // killed mid-decode.
    kill(busy_child(worker.pid(), 100 * 1024), "-SEGV");

    let dead = dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("decoder crashed: SIGSEGV"),
        "{dead:?}"
    );
    assert!(worker.running(), "the worker outlives its decoder");

    // The next job gets a fresh child and renders.
    publish(queue.as_ref(), &small).await;
    assert!(rendered(store.as_ref(), &small.hash.expect("hash")).await);
    let big_manifest = store
        .get(&KeyLayout::default().manifest(&big.hash.expect("hash")))
        .await
        .expect("failure record");
    let m = Manifest::from_json(&big_manifest).expect("manifest");
    assert_eq!(
        m.failures.get("image").map(|f| f.reason.as_str()),
        Some("decoder crashed: SIGSEGV")
    );
    assert!(worker.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcoder_killed_mid_job_fails_that_job_and_the_next_transcodes() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("isovid");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = |title| std::fs::read(synthetic_clip(dir.path(), title)).expect("clip");
    let first_hash = upload_video(store.as_ref(), clip("first")).await;
    let second_hash = upload_video(store.as_ref(), clip("second")).await;
    // A transcode-only worker: its only decoder child is the transcoder.
    let mut worker = spawn_worker(
        &endpoint,
        &bucket,
        &[
            ("THUMBFARM_QUEUES", "transcode"),
            ("THUMBFARM_CONCURRENCY", "1"),
        ],
    );
    publish_transcode(queue.as_ref(), first_hash).await;

    // FFmpeg at work in the child (x264's buffers: tens of MB): killed.
    kill(busy_child(worker.pid(), 60 * 1024), "-KILL");

    let dead = dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("decoder crashed: SIGKILL"),
        "{dead:?}"
    );
    assert!(worker.running(), "the worker outlives its transcoder");
    let layout = KeyLayout::default();
    let m = Manifest::from_json(
        &store
            .get(&layout.manifest(&first_hash))
            .await
            .expect("failure record"),
    )
    .expect("manifest");
    assert_eq!(
        m.failures.get("avc").map(|f| f.reason.as_str()),
        Some("decoder crashed: SIGKILL")
    );
    assert!(
        store
            .head(&layout.video(&first_hash))
            .await
            .expect("head")
            .is_none(),
        "no MP4 of the killed transcode"
    );

    // The next job gets a fresh child and its MP4 is stored.
    publish_transcode(queue.as_ref(), second_hash).await;
    let second_key = layout.video(&second_hash);
    wait_until(Duration::from_secs(120), "the next transcode", || async {
        store.head(&second_key).await.is_ok_and(|h| h.is_some())
    })
    .await;
    let mp4 = store.get(&second_key).await.expect("mp4");
    assert!(
        mp4.len() > 10_000 && &mp4[4..8] == b"ftyp",
        "an MP4 was stored"
    );
    assert!(worker.running());
}

/// A real 64×64 JPEG whose frame header claims `w`×`h`: it passes the
/// header check, and its decode asks for the memory of that many pixels.
fn pixel_bomb_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = generated_jpeg(7, 64, 64);
    let sof = jpeg
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline SOF0 marker");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pixel_bomb_under_a_low_memory_limit_fails_cleanly_and_the_worker_goes_on() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("isomem");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    // 65000×65000 passes --max-pixels raised to 5 G; even decoded at 1/8
    // scale it needs about 200 MB on top of the program, over a 600 MiB
    // job limit.
    let bomb = job_for(
        store.as_ref(),
        pixel_bomb_jpeg(65000, 65000),
        vec![Size::Fit7680],
    )
    .await;
    let small = job_for(
        store.as_ref(),
        generated_jpeg(43, 640, 480),
        vec![Size::Tile224],
    )
    .await;
    let mut worker = spawn_worker(
        &endpoint,
        &bucket,
        &[
            ("THUMBFARM_ISOLATE_DECODERS", "true"),
            ("THUMBFARM_CONCURRENCY", "1"),
            ("THUMBFARM_MAX_PIXELS", "5000000000"),
            ("THUMBFARM_JOB_MEMORY_LIMIT", "629145600"),
        ],
    );
    publish(queue.as_ref(), &bomb).await;
    publish(queue.as_ref(), &small).await;

    let dead = dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0].reason.clone().unwrap_or_default();
    assert_eq!(reason, "over the job memory limit (600 MiB)");
    assert!(rendered(store.as_ref(), &small.hash.expect("hash")).await);
    assert!(worker.running(), "the worker outlives the bomb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_machine_mode_keeps_serving_when_its_decoder_dies() {
    const KEY: &str = "e2e-isolation-key-0123456789";
    let data = tempfile::tempdir().expect("tempdir");
    let (mut server, base) = spawn_single_machine(
        KEY,
        &[
            ("THUMBFARM_DATA_DIR", data.path().display().to_string()),
            ("THUMBFARM_ISOLATE_DECODERS", "true".into()),
            ("THUMBFARM_CONCURRENCY", "1".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let ingest = |body: Vec<u8>| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client
                .post(format!("{base}/api/v1/ingest?name=x.jpg"))
                .bearer_auth(KEY)
                .body(body)
                .send()
                .await
                .expect("ingest");
            assert!(resp.status().is_success(), "{}", resp.status());
        }
    };
    let first = generated_jpeg(51, 640, 480);
    let first_url = format!(
        "{base}/api/v1/t/{}/public/tile_224",
        AssetHash::of_bytes(&first)
    );
    ingest(first).await;
    wait_until(Duration::from_secs(60), "the first thumbnail", || async {
        client
            .get(&first_url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Its decoder child dies (a segfault in a C decoder): the process that
    // serves the API lives on, answers probes and cached thumbnails, and the
    // next upload renders in a new child.
    let children = decoder_children(server.pid());
    assert!(!children.is_empty(), "a decoder child of the server");
    for pid in &children {
        let _ = std::process::Command::new("kill")
            .args(["-SEGV", &pid.to_string()])
            .status();
    }
    assert!(server.running(), "the server outlives its decoder");
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let cached = client.get(&first_url).send().await.expect("cached");
    assert_eq!(cached.status(), 200);
    let second = generated_jpeg(52, 640, 480);
    let second_url = format!(
        "{base}/api/v1/t/{}/public/tile_224",
        AssetHash::of_bytes(&second)
    );
    ingest(second).await;
    wait_until(Duration::from_secs(60), "the next thumbnail", || async {
        client
            .get(&second_url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(server.running());
}
