//! The ingest planner against the real RabbitMQ and the real S3 server, with
//! the real worker (render pipeline) in-process where outputs are checked.

#[path = "../../api/tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use thumbfarm_api::background::ingest_planner::{IngestPlanner, PlannerOptions};
use thumbfarm_api::metrics::Metrics;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{FileCreated, Job, V1};
use thumbfarm_shared::queue::{publish_json, Exchange, Queue, QueueName};
use thumbfarm_shared::sizes::{self, SizeLimits};
use thumbfarm_shared::store::{get_json, Store};
use thumbfarm_shared::{AssetHash, KeyLayout};
use thumbfarm_worker::{intake, WorkerOptions};
use tokio_util::sync::CancellationToken;

fn start_planner(
    store: &Arc<dyn Store>,
    queue: &Arc<dyn Queue>,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let planner = Arc::new(IngestPlanner::new(
        Arc::clone(store),
        Arc::clone(queue),
        Arc::clone(metrics),
        PlannerOptions::default(),
    ));
    let stop = stop.clone();
    tokio::spawn(async move {
        planner.run(stop).await.expect("planner");
    })
}

/// Sum of every sample of a counter family in a Prometheus text exposition,
/// optionally only those whose labels contain `filter`.
fn metric_sum(text: &str, family: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn s3_notification(bucket: &str, key_encoded: &str, size: u64, etag: &str) -> Vec<u8> {
    serde_json::json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("{bucket}/{key_encoded}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2024-05-01T12:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": { "key": key_encoded, "size": size, "eTag": etag, "contentType": "image/jpeg", "sequencer": "17C9" }
            }
        }]
    })
    .to_string()
    .into_bytes()
}

async fn publish_ingest(queue: &dyn Queue, routing_key: &str, body: &[u8]) {
    queue
        .publish(Exchange::Ingest, routing_key, body)
        .await
        .expect("publish ingest event");
}

/// Every pre-generated output of `hash` (resolved for its `w`×`h`) exists.
async fn all_outputs_exist(store: &dyn Store, hash: &AssetHash, w: u32, h: u32) -> bool {
    let layout = KeyLayout::default();
    for size in sizes::render_set(&SizeLimits::default().pregenerated(), w, h) {
        if store
            .head(&layout.thumb(hash, size))
            .await
            .ok()
            .flatten()
            .is_none()
        {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_notification_and_native_event_lead_to_every_pregenerated_output() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let bucket = unique_bucket("plan");
    let store = s3_store(&bucket).await;
    let queue = amqp().await;
    let metrics = Arc::new(Metrics::new().unwrap());

    // Two originals already in the bucket: one announced by an S3
    // notification (no hash; a key with a space, URL-encoded), one by
    // thumbfarm's own file.created with its hash.
    let a_bytes = std::fs::read(corpus("seed/telegram_2020-01-30_09-57-18.jpg")).unwrap();
    let a_hash = AssetHash::of_bytes(&a_bytes);
    let a_key = "incoming/2024/telegram photo.jpg";
    store
        .put(a_key, Bytes::from(a_bytes.clone()), "image/jpeg")
        .await
        .unwrap();
    let b_bytes = std::fs::read(corpus("seed/elephants.jpg")).unwrap();
    let b_hash = AssetHash::of_bytes(&b_bytes);
    let b_key = "incoming/elephants.jpg";
    store
        .put(b_key, Bytes::from(b_bytes.clone()), "image/jpeg")
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let planner = start_planner(&store, &queue, &metrics, &stop);
    let worker = tokio::spawn(intake::run(
        WorkerOptions {
            concurrency: 2,
            ..Default::default()
        },
        Arc::clone(&store),
        Arc::clone(&queue),
        stop.clone().cancelled_owned(),
    ));

    publish_ingest(
        queue.as_ref(),
        "s3.objectcreated",
        &s3_notification(
            &bucket,
            "incoming/2024/telegram+photo.jpg",
            a_bytes.len() as u64,
            "\"0123abcd\"",
        ),
    )
    .await;
    let native = FileCreated {
        v: V1,
        hash: Some(b_hash),
        bucket: Some(bucket.clone()),
        key: b_key.into(),
        media_type: Some("image/jpeg".into()),
        size: Some(b_bytes.len() as u64),
    };
    publish_json(queue.as_ref(), Exchange::Ingest, "file.created", &native)
        .await
        .unwrap();

    // Outputs are stored before the manifest merge: wait for both.
    let merged = |hash: AssetHash| {
        let store = Arc::clone(&store);
        async move {
            get_json::<Manifest>(store.as_ref(), &KeyLayout::default().manifest(&hash))
                .await
                .ok()
                .flatten()
                .is_some_and(|m| m.has_dimensions())
        }
    };
    let ok = eventually(90, || async {
        all_outputs_exist(store.as_ref(), &a_hash, 1280, 1022).await
            && all_outputs_exist(store.as_ref(), &b_hash, 497, 331).await
            && merged(a_hash).await
            && merged(b_hash).await
    })
    .await;
    let dead = take_all(QueueName::Dead).await;
    assert!(
        ok,
        "not every pre-generated output appeared; dead letters: {dead:?}"
    );

    // The worker wrote the manifests, with the original where the event said.
    let layout = KeyLayout::default();
    let ma: Manifest = get_json(store.as_ref(), &layout.manifest(&a_hash))
        .await
        .unwrap()
        .expect("manifest of the S3-notified original");
    assert_eq!(ma.original.key, a_key);
    assert_eq!(ma.original.bucket, None);
    assert_eq!((ma.width, ma.height), (1280, 1022));
    let mb: Manifest = get_json(store.as_ref(), &layout.manifest(&b_hash))
        .await
        .unwrap()
        .expect("manifest of the native event");
    assert_eq!(mb.original.key, b_key);
    assert!(mb.has_dimensions());

    // A duplicate of each event enqueues nothing more.
    publish_json(queue.as_ref(), Exchange::Ingest, "file.created", &native)
        .await
        .unwrap();
    let text_before = metrics.render();
    assert_eq!(
        metric_sum(
            &text_before,
            "thumbfarm_planner_events_total",
            "outcome=\"planned\""
        ),
        2.0,
        "{text_before}"
    );
    assert!(
        eventually(20, || async {
            metric_sum(
                &metrics.render(),
                "thumbfarm_planner_events_total",
                "outcome=\"duplicate\"",
            ) >= 1.0
        })
        .await
    );
    assert_eq!(
        metric_sum(&metrics.render(), "thumbfarm_api_jobs_published_total", ""),
        2.0
    );

    stop.cancel();
    planner.await.unwrap();
    worker.await.unwrap().unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_1000_events_for_100_files_enqueues_100_assets_of_jobs() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let bucket = unique_bucket("burst");
    let store = s3_store(&bucket).await;
    let queue = amqp().await;
    let metrics = Arc::new(Metrics::new().unwrap());

    // 50 files announced by S3 notifications (no hash) and 50 by
    // file.created with their hash; every event is sent 10 times, interleaved.
    let mut events: Vec<(String, Vec<u8>)> = Vec::new();
    for round in 0..10 {
        for i in 0..50u32 {
            let key = format!("burst/img%20{i:03}.jpg");
            events.push((
                "s3.put".into(),
                s3_notification(&bucket, &key, 1000 + u64::from(i), &format!("\"etag{i}\"")),
            ));
        }
        for i in 0..50u32 {
            let hash = AssetHash::of_bytes(format!("burst file {i}").as_bytes());
            let body = serde_json::to_vec(&FileCreated {
                v: V1,
                hash: Some(hash),
                bucket: None,
                key: format!("burst/native-{i:03}.png"),
                media_type: None,
                size: Some(2000),
            })
            .unwrap();
            events.push(("file.created".into(), body));
        }
        if round % 2 == 1 {
            events.reverse();
        }
    }
    assert_eq!(events.len(), 1000);
    for (rk, body) in &events {
        publish_ingest(queue.as_ref(), rk, body).await;
    }

    let stop = CancellationToken::new();
    let planner = start_planner(&store, &queue, &metrics, &stop);
    let handled = eventually(120, || async {
        let text = metrics.render();
        metric_sum(&text, "thumbfarm_planner_events_total", "") >= 1000.0
    })
    .await;
    stop.cancel();
    planner.await.unwrap();
    let text = metrics.render();
    assert!(handled, "the planner did not handle 1000 events: {text}");
    assert_eq!(
        metric_sum(
            &text,
            "thumbfarm_planner_events_total",
            "outcome=\"planned\""
        ),
        100.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "thumbfarm_planner_events_total",
            "outcome=\"duplicate\""
        ),
        900.0,
        "{text}"
    );

    // Exactly one pre-generation job per file, nothing else.
    assert_eq!(broker_count(QueueName::RenderBulk).await, 100);
    assert_eq!(broker_count(QueueName::Transcode).await, 0);
    assert_eq!(broker_count(QueueName::Dead).await, 0);
    let jobs = take_all(QueueName::RenderBulk).await;
    let mut keys: Vec<String> = Vec::new();
    let mut with_hash = 0;
    for j in &jobs {
        match Job::parse(&j.routing_key, &j.body).unwrap() {
            Job::Render(r) => {
                assert_eq!(
                    r.sizes,
                    thumbfarm_shared::renditions::pregenerated(
                        &SizeLimits::default(),
                        &[thumbfarm_shared::OutputFormat::Jpeg]
                    )
                );
                assert_eq!(r.source.bucket, None);
                if r.hash.is_some() {
                    with_hash += 1;
                    assert_eq!(r.media_type.as_deref(), Some("image/png"));
                }
                keys.push(r.source.key);
            }
            other => panic!("{other:?}"),
        }
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100);
    assert_eq!(with_hash, 50);
    assert!(keys.contains(&"burst/img 007.jpg".to_string()), "{keys:?}");
    // The 50 announced hashes got a manifest (dimensions unknown yet).
    let m: Manifest = get_json(
        store.as_ref(),
        &KeyLayout::default().manifest(&AssetHash::of_bytes(b"burst file 7")),
    )
    .await
    .unwrap()
    .expect("manifest written by the planner");
    assert!(!m.has_dimensions());
    assert_eq!(m.media_type, "image/png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_events_are_dead_lettered_and_the_planner_keeps_going() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let bucket = unique_bucket("junk");
    let store = s3_store(&bucket).await;
    let queue = amqp().await;
    let metrics = Arc::new(Metrics::new().unwrap());
    let stop = CancellationToken::new();
    let planner = start_planner(&store, &queue, &metrics, &stop);

    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"this is not json".to_vec()),
        ("version", br#"{"v":2,"key":"a.jpg"}"#.to_vec()),
        ("missing key", br#"{"v":1,"bucket":"x"}"#.to_vec()),
        (
            "unsafe key",
            br#"{"v":1,"key":"../../etc/passwd"}"#.to_vec(),
        ),
        (
            "encoded traversal",
            s3_notification(&bucket, "a%2F..%2F..%2Fetc%2Fpasswd", 1, "\"e\""),
        ),
        (
            "own output",
            br#"{"v":1,"key":"thumbs/a/b/c/x_100x100_center.jpg"}"#.to_vec(),
        ),
    ];
    for (_, body) in &bad {
        publish_ingest(queue.as_ref(), "file.created", body).await;
    }
    // A good event after the junk, with an original in another bucket.
    let good = FileCreated {
        v: V1,
        hash: None,
        bucket: Some("someone-elses-bucket".into()),
        key: "pics/ok.jpg".into(),
        media_type: None,
        size: None,
    };
    publish_json(queue.as_ref(), Exchange::Ingest, "file.created", &good)
        .await
        .unwrap();
    // And an S3 notification that is not a creation: ignored, acked.
    let removed = br#"{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x.jpg"}}}]}"#;
    publish_ingest(queue.as_ref(), "s3.removed", removed).await;

    assert!(
        eventually(30, || async {
            broker_count(QueueName::RenderBulk).await >= 1
                && metric_sum(
                    &metrics.render(),
                    "thumbfarm_planner_events_total",
                    "outcome=\"ignored\"",
                ) >= 1.0
        })
        .await,
        "{}",
        metrics.render()
    );
    stop.cancel();
    planner.await.unwrap();

    let dead = take_all(QueueName::Dead).await;
    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for (d, (what, body)) in dead.iter().zip(&bad) {
        assert_eq!(&d.body, body, "{what}");
        let reason = d.reason.as_deref().unwrap_or("");
        assert!(!reason.is_empty(), "{what}: no reason");
    }
    let reasons: Vec<String> = dead.iter().filter_map(|d| d.reason.clone()).collect();
    assert!(reasons[1].contains("version 2"), "{reasons:?}");
    assert!(reasons[2].contains("key"), "{reasons:?}");
    assert!(reasons[3].contains("unsafe"), "{reasons:?}");
    assert!(reasons[5].contains("own outputs"), "{reasons:?}");

    let jobs = take_all(QueueName::RenderBulk).await;
    assert_eq!(jobs.len(), 1);
    match Job::parse(&jobs[0].routing_key, &jobs[0].body).unwrap() {
        Job::Render(r) => {
            assert_eq!(r.source.bucket.as_deref(), Some("someone-elses-bucket"));
            assert_eq!(r.source.key, "pics/ok.jpg");
            assert_eq!(r.hash, None);
            assert_eq!(r.media_type.as_deref(), Some("image/jpeg"));
        }
        other => panic!("{other:?}"),
    }
    let text = metrics.render();
    assert_eq!(
        metric_sum(
            &text,
            "thumbfarm_planner_events_total",
            "outcome=\"dead_lettered\""
        ),
        bad.len() as f64,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_gets_a_transcode_and_a_poster_render() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let bucket = unique_bucket("video");
    let store = s3_store(&bucket).await;
    let queue = amqp().await;
    let metrics = Arc::new(Metrics::new().unwrap());
    let stop = CancellationToken::new();
    let planner = start_planner(&store, &queue, &metrics, &stop);
    let hash = AssetHash::of_bytes(b"a video");
    let event = FileCreated {
        v: V1,
        hash: Some(hash),
        bucket: None,
        key: "clips/holiday.MOV".into(),
        media_type: None,
        size: Some(5),
    };
    publish_json(queue.as_ref(), Exchange::Ingest, "file.created", &event)
        .await
        .unwrap();
    assert!(
        eventually(30, || async {
            broker_count(QueueName::Transcode).await == 1
                && broker_count(QueueName::RenderBulk).await == 1
        })
        .await
    );
    stop.cancel();
    planner.await.unwrap();
    let t = take_all(QueueName::Transcode).await;
    match Job::parse(&t[0].routing_key, &t[0].body).unwrap() {
        Job::Transcode(j) => {
            assert_eq!(j.hash, Some(hash));
            assert_eq!(j.format, "avc");
            assert_eq!(j.source.key, "clips/holiday.MOV");
        }
        other => panic!("{other:?}"),
    }
    let r = take_all(QueueName::RenderBulk).await;
    match Job::parse(&r[0].routing_key, &r[0].body).unwrap() {
        Job::Render(j) => assert_eq!(j.media_type.as_deref(), Some("video/quicktime")),
        other => panic!("{other:?}"),
    }
    let m: Manifest = get_json(store.as_ref(), &KeyLayout::default().manifest(&hash))
        .await
        .unwrap()
        .unwrap();
    assert!(m.is_video());
}

/// `serve` in single-machine mode runs the planner (and the worker) itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_runs_the_planner_in_single_machine_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let args = thumbfarm::SingleMachineArgs::try_from_args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--token-mode",
        "public",
        // Decoder children run this executable, and a test binary is not a
        // thumbfarm binary (tests/isolation_e2e.rs runs the real ones).
        "--isolate-decoders",
        "false",
    ])
    .unwrap();
    assert!(thumbfarm_api::server::runs_planner(&args.serve));
    assert!(args.runs_worker());
    let server = thumbfarm::bind(&args).await.unwrap();
    let store = Arc::clone(server.state().store());
    let queue = Arc::clone(server.state().queue());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let bytes = std::fs::read(corpus("seed/beach_wood.jpg")).unwrap();
    let hash = AssetHash::of_bytes(&bytes);
    store
        .put("dropbox/beach.jpg", Bytes::from(bytes), "image/jpeg")
        .await
        .unwrap();
    queue
        .publish(
            Exchange::Ingest,
            "file.created",
            br#"{"v":1,"key":"dropbox/beach.jpg"}"#,
        )
        .await
        .unwrap();
    assert!(
        eventually(60, || async {
            all_outputs_exist(store.as_ref(), &hash, 240, 180).await
        })
        .await
    );
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
