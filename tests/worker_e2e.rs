//! The worker process against the real RabbitMQ and a real S3 server:
//! crash safety (SIGKILL mid-batch), hostile input (dead-lettered with a
//! reason, the worker keeps going, memory bounded), and an S3 outage (jobs
//! wait and complete, nothing dead-lettered).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use thumbfarm_shared::messages::{RenderJob, SourceRef, V1};
use thumbfarm_shared::queue::{publish_json, topology::routing, Exchange, Queue, QueueName};
use thumbfarm_shared::sizes::render_set;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::{AssetHash, KeyLayout, SizeLimits};

/// Uploads `body` under `in/<name>` and returns the job that renders the
/// pre-generated set from it.
async fn upload_job(store: &dyn Store, name: &str, body: Vec<u8>, with_hash: bool) -> RenderJob {
    let hash = AssetHash::of_bytes(&body);
    let key = format!("in/{name}");
    store
        .put(&key, Bytes::from(body), "application/octet-stream")
        .await
        .expect("upload original");
    RenderJob {
        v: V1,
        hash: with_hash.then_some(hash),
        source: SourceRef { bucket: None, key },
        sizes: SizeLimits::default()
            .pregenerated()
            .into_iter()
            .map(Into::into)
            .collect(),
        force: false,
        media_type: None,
    }
}

async fn publish_jobs(queue: &dyn Queue, routing_key: &str, jobs: &[RenderJob]) {
    for job in jobs {
        publish_json(queue, Exchange::Jobs, routing_key, job)
            .await
            .expect("publish job");
    }
}

/// Every output key a 64×48 original must end up with.
fn expected_keys(hash: &AssetHash, w: u32, h: u32) -> Vec<String> {
    let layout = KeyLayout::default();
    let mut keys: Vec<String> = render_set(&SizeLimits::default().pregenerated(), w, h)
        .into_iter()
        .map(|s| layout.thumb(hash, s))
        .collect();
    keys.push(layout.manifest(hash));
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_loses_no_job() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("kill");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;

    const JOBS: u32 = 200;
    let mut jobs = Vec::new();
    let mut hashes = Vec::new();
    for i in 0..JOBS {
        let body = generated_jpeg(i, 64, 48);
        hashes.push(AssetHash::of_bytes(&body));
        jobs.push(upload_job(store.as_ref(), &format!("{i}.jpg"), body, true).await);
    }
    publish_jobs(queue.as_ref(), routing::RENDER_BULK, &jobs).await;

    let mut worker = spawn_worker(&endpoint, &bucket, &[]);
    // Kill it hard once it is well into the batch.
    wait_until(Duration::from_secs(120), "a third of the batch", || async {
        count_under(store.as_ref(), "meta/").await >= (JOBS / 3) as usize
    })
    .await;
    worker.kill();
    let done_before = count_under(store.as_ref(), "meta/").await;
    assert!(
        done_before < JOBS as usize,
        "the kill came too late to test anything"
    );

    let _worker = spawn_worker(&endpoint, &bucket, &[]);
    wait_until(Duration::from_secs(300), "every manifest", || async {
        count_under(store.as_ref(), "meta/").await == JOBS as usize
    })
    .await;
    for hash in &hashes {
        for key in expected_keys(hash, 64, 48) {
            assert!(
                store.head(&key).await.expect("head").is_some(),
                "missing {key}"
            );
        }
    }
    wait_until(
        Duration::from_secs(30),
        "the bulk queue to drain",
        || async { ready_count(QueueName::RenderBulk).await == 0 },
    )
    .await;
    assert_eq!(ready_count(QueueName::RenderOnDemand).await, 0);
    let dead = drain_dead().await;
    assert!(dead.is_empty(), "nothing may be dead-lettered: {dead:?}");
}

/// A PNG whose header claims 100000×100000 pixels (a decompression bomb).
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A tiny IDAT that would inflate to ~30 GB of pixels.
    png.extend_from_slice(&[0, 0, 0, 0, b'I', b'D', b'A', b'T', 0x35, 0xaf, 0x06, 0x1e]);
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_dead_lettered_and_the_worker_keeps_going() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("hostile");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;
    let corpus = corpus();

    let real = std::fs::read(corpus.join("seed/elephants.jpg")).expect("corpus jpeg");
    let mut hostile: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length.jpg", Vec::new()),
        ("truncated.jpg", real[..real.len() / 3].to_vec()),
        ("corrupt.jpg", {
            let mut v = b"\xFF\xD8\xFF\xE0".to_vec();
            v.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
            v
        }),
        ("bomb.png", png_bomb()),
    ];
    for name in [
        "decompression_bomb.gif",
        "Bad_reallybig.bmp",
        "truncated_image.png",
    ] {
        let body = std::fs::read(corpus.join("ext/hostile").join(name)).expect("hostile file");
        hostile.push((name, body));
    }
    // A RAW with neither an embedded preview nor a decoder here.
    let gpr = std::fs::read(corpus.join("raw/gopro_hero8_black.gpr")).expect("gpr");
    hostile.push(("raw.gpr", gpr));

    let mut jobs = Vec::new();
    for (name, body) in &hostile {
        jobs.push(upload_job(store.as_ref(), name, body.clone(), true).await);
    }
    // A job whose original is missing is a permanent failure too.
    let mut missing = jobs[0].clone();
    missing.source.key = "in/never-uploaded.jpg".into();
    missing.hash = Some(AssetHash::of_bytes(b"never uploaded"));
    jobs.push(missing);
    publish_jobs(queue.as_ref(), routing::RENDER_BULK, &jobs).await;
    // A malformed message: not JSON at all.
    queue
        .publish(Exchange::Jobs, routing::RENDER_BULK, b"{not json")
        .await
        .expect("publish junk");
    // And a good job after all of them.
    let good = upload_job(store.as_ref(), "good.jpg", real.clone(), true).await;
    publish_jobs(
        queue.as_ref(),
        routing::RENDER_BULK,
        std::slice::from_ref(&good),
    )
    .await;

    let mut worker = spawn_worker(&endpoint, &bucket, &[]);
    let good_hash = good.hash.expect("hash");
    let layout = KeyLayout::default();
    wait_until(
        Duration::from_secs(120),
        "the good job after the bad ones",
        || async {
            store
                .head(&layout.manifest(&good_hash))
                .await
                .ok()
                .flatten()
                .is_some()
        },
    )
    .await;

    let expected_dead = jobs.len() + 1;
    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dead.len() < expected_dead && std::time::Instant::now() < deadline {
        dead.extend(drain_dead().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dead.len(), expected_dead, "{dead:#?}");
    for d in &dead {
        let reason = d.reason.as_deref().unwrap_or_default();
        assert!(!reason.is_empty(), "dead letter without a reason: {d:?}");
    }
    assert!(dead
        .iter()
        .any(|d| d.body == b"{not json"
            && d.reason.as_deref().is_some_and(|r| r.contains("malformed"))));
    assert!(dead.iter().any(|d| d
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("original missing"))));
    assert!(worker.running(), "the worker must survive hostile input");
    let peak = worker.peak_rss_kib().unwrap_or(0);
    assert!(peak < 1_500_000, "worker peak RSS {peak} KiB");
    // None of the bad files produced an output; each has its failure on
    // record (so that requests for it answer 422 at once).
    for (name, body) in &hostile {
        let h = AssetHash::of_bytes(body);
        let bytes = store
            .get(&layout.manifest(&h))
            .await
            .unwrap_or_else(|e| panic!("{name}: failure record: {e}"));
        let m = thumbfarm_shared::Manifest::from_json(&bytes).expect("manifest json");
        assert!(m.outputs.is_empty(), "{name}: {m:?}");
        assert!(
            m.failures
                .get(thumbfarm_shared::manifest::IMAGE_OUTPUT)
                .is_some_and(|f| !f.reason.is_empty()),
            "{name}: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_mid_batch_delays_but_loses_nothing() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let port = free_port();
    let root = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut s3 = spawn_s3s(port, root.path());
    let bucket = unique_bucket("outage");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;

    const JOBS: u32 = 40;
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let body = generated_jpeg(1000 + i, 640, 480);
        jobs.push(upload_job(store.as_ref(), &format!("{i}.jpg"), body, false).await);
    }
    publish_jobs(queue.as_ref(), routing::RENDER_BULK, &jobs).await;
    let _worker = spawn_worker(&endpoint, &bucket, &[]);

    wait_until(Duration::from_secs(120), "the first outputs", || async {
        count_under(store.as_ref(), "meta/").await >= 3
    })
    .await;
    s3.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _s3 = spawn_s3s(port, root.path());

    wait_until(
        Duration::from_secs(300),
        "every job after the outage",
        || async { count_under(store.as_ref(), "meta/").await == JOBS as usize },
    )
    .await;
    let per_job = render_set(&SizeLimits::default().pregenerated(), 640, 480).len();
    assert_eq!(
        count_under(store.as_ref(), "thumbs/").await,
        JOBS as usize * per_job
    );
    wait_until(
        Duration::from_secs(30),
        "the bulk queue to drain",
        || async { ready_count(QueueName::RenderBulk).await == 0 },
    )
    .await;
    let dead = drain_dead().await;
    assert!(
        dead.is_empty(),
        "an outage must not dead-letter anything: {dead:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ondemand_job_overtakes_a_bulk_backlog() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("prio");
    let store = s3_store(&endpoint, &bucket).await;
    let queue = amqp().await;

    // 200 bulk jobs queued first, then one on-demand job.
    let mut bulk = Vec::new();
    for i in 0..200u32 {
        let mut job = upload_job(
            store.as_ref(),
            &format!("bulk-{i}.jpg"),
            generated_jpeg(5000 + i, 64, 48),
            true,
        )
        .await;
        job.sizes = vec![thumbfarm_shared::sizes::Size::Tile50.into()];
        bulk.push(job);
    }
    let mut urgent = upload_job(
        store.as_ref(),
        "urgent.jpg",
        generated_jpeg(9999, 64, 48),
        true,
    )
    .await;
    urgent.sizes = vec![thumbfarm_shared::sizes::Size::Tile50.into()];
    let urgent_hash = urgent.hash.expect("hash");
    publish_jobs(queue.as_ref(), routing::RENDER_BULK, &bulk).await;
    publish_jobs(
        queue.as_ref(),
        routing::RENDER_ONDEMAND,
        std::slice::from_ref(&urgent),
    )
    .await;
    assert_eq!(ready_count(QueueName::RenderBulk).await, 200);

    // One worker, one job at a time: the order of its `rendered` events is
    // the order it did the jobs in.
    let mut events = queue.subscribe("rendered.*").await.expect("subscribe");
    let _worker = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_CONCURRENCY", "1")]);
    let mut order = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while order.len() < 10 {
        assert!(std::time::Instant::now() < deadline, "events: {order:?}");
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await
        else {
            continue;
        };
        let body: serde_json::Value = serde_json::from_slice(&event.body).expect("event json");
        order.push(body["hash"].as_str().unwrap_or_default().to_string());
    }
    let position = order
        .iter()
        .position(|h| *h == urgent_hash.to_string())
        .unwrap_or_else(|| panic!("the on-demand job was not among the first 10: {order:?}"));
    assert!(
        position < 9,
        "finished before the 10th bulk job: {position}"
    );
}
