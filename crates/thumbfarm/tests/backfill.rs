//! `thumbfarm-api backfill` against the real S3 server and RabbitMQ, with the
//! real render pipeline producing the outputs.

#[path = "../../api/tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use clap::Parser;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::*;
use thumbfarm_api::background::backfill::{self, BackfillOptions, CURSOR_KEY};
use thumbfarm_api::config::{Cli, Command, ToolCommand};
use thumbfarm_api::planning::PlannedJob;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{Job, RenderJob, SourceRef, V1};
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::store::Store;
use thumbfarm_shared::Rendition;
use thumbfarm_shared::{AssetHash, KeyLayout};
use thumbfarm_worker::jobs::{self, JobContext};
use thumbfarm_worker::{intake, WorkerOptions};

fn opts(limits: SizeLimits) -> BackfillOptions {
    BackfillOptions {
        sizes: limits
            .pregenerated()
            .into_iter()
            .map(Rendition::from)
            .collect(),
        rate: 0.0,
        ..BackfillOptions::default()
    }
}

/// Stores an original and renders its pre-generated set at `limits` with the
/// real pipeline (what ingest does), returning its hash.
async fn ingest(store: &dyn Store, file: &str, limits: SizeLimits) -> AssetHash {
    let bytes = std::fs::read(corpus(file)).unwrap();
    let hash = AssetHash::of_bytes(&bytes);
    let key = KeyLayout::default().original(&hash, "jpg");
    store
        .put(&key, Bytes::from(bytes), "image/jpeg")
        .await
        .unwrap();
    let job = RenderJob {
        v: V1,
        hash: Some(hash),
        source: SourceRef { bucket: None, key },
        sizes: limits
            .pregenerated()
            .into_iter()
            .map(Rendition::from)
            .collect(),
        force: false,
        media_type: Some("image/jpeg".into()),
    };
    let worker = WorkerOptions {
        limits,
        ..Default::default()
    };
    jobs::render_job(&JobContext::new(&worker, store), &job)
        .await
        .expect("render");
    hash
}

/// A manifest of a fake asset with known dimensions and no outputs, written
/// at `manifest_key` (any depth).
async fn fake_asset(store: &dyn Store, seed: &str, manifest_key: Option<String>) -> AssetHash {
    let hash = AssetHash::of_bytes(seed.as_bytes());
    let source = SourceRef {
        bucket: None,
        key: format!("originals/{seed}.jpg"),
    };
    let mut m = Manifest::new(hash, source, "image/jpeg", 1);
    m.width = 800;
    m.height = 600;
    let key = manifest_key.unwrap_or_else(|| KeyLayout::default().manifest(&hash));
    store
        .put(&key, m.to_json().into(), "application/json")
        .await
        .unwrap();
    hash
}

fn render_jobs(jobs: &[PlannedJob]) -> Vec<&RenderJob> {
    jobs.iter()
        .filter_map(|j| match j {
            PlannedJob::Render(_, r) => Some(r),
            PlannedJob::Transcode(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raising_the_static_limit_backfills_exactly_the_new_sizes() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let store = s3_store(&unique_bucket("backfill")).await;
    let queue = amqp().await;
    let layout = KeyLayout::default();

    // Ingest at the default static limit (1920).
    let big = ingest(
        store.as_ref(),
        "seed/6720px_white.jpg",
        SizeLimits::new(1920, 7680),
    )
    .await;
    let small = ingest(
        store.as_ref(),
        "seed/telegram_2020-01-30_09-57-18.jpg",
        SizeLimits::new(1920, 7680),
    )
    .await;
    assert!(store
        .head(&layout.thumb(&big, Size::Fit1920))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .head(&layout.thumb(&big, Size::Fit2560))
        .await
        .unwrap()
        .is_none());

    // Nothing is missing at 1920.
    let r = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &opts(SizeLimits::new(1920, 7680)),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.counts.scanned, r.counts.complete, r.counts.enqueued),
        (2, 2, 0)
    );

    // Raised to 2560: a dry run counts, publishes nothing, leaves no cursor.
    let raised = SizeLimits::new(2560, 7680);
    let dry = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            dry_run: true,
            ..opts(raised)
        },
    )
    .await
    .unwrap();
    assert!(dry.dry_run && dry.finished);
    assert_eq!(dry.counts.enqueued, 1, "{dry}");
    assert_eq!(broker_count(QueueName::RenderBulk).await, 0);
    assert!(store.head(CURSOR_KEY).await.unwrap().is_none());

    // The real run enqueues exactly fit_2560 of the big original; the small
    // one (1280×1022) is served by its fit_1280 at every fit size.
    let run = backfill::run(store.as_ref(), queue.as_ref(), &opts(raised))
        .await
        .unwrap();
    assert!(run.finished);
    assert_eq!(run.counts.scanned, 2);
    assert_eq!(run.counts.complete, 1);
    assert_eq!(run.counts.enqueued, 1);
    assert_eq!(run.counts.sizes_enqueued, 1);
    let jobs = render_jobs(&run.jobs);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].hash, Some(big));
    assert_eq!(jobs[0].sizes, vec![Size::Fit2560.into()]);
    assert_eq!(jobs, render_jobs(&dry.jobs));
    assert_eq!(broker_count(QueueName::RenderBulk).await, 1);
    let _ = small;

    // A worker renders it from the queue.
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(intake::run(
        WorkerOptions {
            limits: raised,
            concurrency: 1,
            ..Default::default()
        },
        Arc::clone(&store),
        Arc::clone(&queue),
        stop.clone().cancelled_owned(),
    ));
    let key = layout.thumb(&big, Size::Fit2560);
    assert!(
        eventually(60, || async {
            store.head(&key).await.ok().flatten().is_some()
        })
        .await,
        "fit_2560 was not rendered; dead: {:?}",
        take_all(QueueName::Dead).await
    );
    stop.cancel();
    worker.await.unwrap().unwrap();
    // Nothing else was written: fit_4096 and up are not pre-generated at 2560.
    for s in [Size::Fit4096, Size::Fit7680, Size::Fit3840, Size::Fit2048] {
        assert!(store.head(&layout.thumb(&big, s)).await.unwrap().is_none());
    }

    // A second run finds nothing to do.
    let again = backfill::run(store.as_ref(), queue.as_ref(), &opts(raised))
        .await
        .unwrap();
    assert_eq!(
        (
            again.counts.scanned,
            again.counts.complete,
            again.counts.enqueued
        ),
        (2, 2, 0),
        "{again}"
    );
    assert_eq!(broker_count(QueueName::RenderBulk).await, 0);
    assert!(store.head(CURSOR_KEY).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_backfill_resumes_from_its_cursor() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let store = s3_store(&unique_bucket("resume")).await;
    let queue = amqp().await;

    // Three assets without outputs; one manifest was written at depth 1.
    let a = fake_asset(store.as_ref(), "resume-a", None).await;
    let b = fake_asset(store.as_ref(), "resume-b", None).await;
    let c_hash = AssetHash::of_bytes(b"resume-c");
    let depth1 = KeyLayout::new(1).unwrap().manifest(&c_hash);
    let c = fake_asset(store.as_ref(), "resume-c", Some(depth1.clone())).await;
    assert_eq!(c, c_hash);

    let first = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            max_manifests: Some(1),
            cursor_every: 1,
            ..opts(SizeLimits::default())
        },
    )
    .await
    .unwrap();
    assert!(!first.finished);
    assert_eq!(first.counts.scanned, 1);
    assert_eq!(first.counts.enqueued, 1);
    let cursor: backfill::Cursor =
        serde_json::from_slice(&store.get(CURSOR_KEY).await.unwrap()).unwrap();
    assert!(cursor.after.starts_with("meta/"), "{cursor:?}");
    assert_eq!(cursor.counts.scanned, 1);

    // The next run continues after the cursor and deletes it at the end.
    let second = backfill::run(store.as_ref(), queue.as_ref(), &opts(SizeLimits::default()))
        .await
        .unwrap();
    assert!(second.finished);
    assert_eq!(second.resumed_after.as_deref(), Some(cursor.after.as_str()));
    assert_eq!(second.counts.scanned, 3, "counts carry over: {second}");
    assert_eq!(second.counts.enqueued, 3);
    assert_eq!(second.jobs.len(), 2);
    assert!(store.head(CURSOR_KEY).await.unwrap().is_none());

    // Each asset got exactly one job, the depth-1 one included, checked
    // against thumbnails at the configured depth.
    let jobs = take_all(QueueName::RenderBulk).await;
    let mut hashes: Vec<AssetHash> = jobs
        .iter()
        .map(|j| match Job::parse(&j.routing_key, &j.body).unwrap() {
            Job::Render(r) => {
                // 800×600: the pre-generated set resolved for it.
                assert!(r.sizes.contains(&Size::Fit1280.into()));
                assert!(!r.sizes.contains(&Size::Fit1920.into()), "{:?}", r.sizes);
                r.hash.unwrap()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    hashes.sort();
    let mut want = vec![a, b, c];
    want.sort();
    assert_eq!(hashes, want);

    // --restart ignores a cursor; other options start over too.
    let partial = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            max_manifests: Some(2),
            ..opts(SizeLimits::default())
        },
    )
    .await
    .unwrap();
    assert!(!partial.finished);
    let restarted = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            restart: true,
            ..opts(SizeLimits::default())
        },
    )
    .await
    .unwrap();
    assert_eq!(restarted.resumed_after, None);
    assert_eq!(restarted.counts.scanned, 3);
    purge_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn since_filters_and_videos_get_a_transcode() {
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let store = s3_store(&unique_bucket("since")).await;
    let queue = amqp().await;
    let hash = AssetHash::of_bytes(b"a clip");
    let source = SourceRef {
        bucket: None,
        key: "clips/a.mp4".into(),
    };
    let mut m = Manifest::new(hash, source, "video/mp4", 1);
    m.width = 640;
    m.height = 416;
    m.duration_ms = Some(3000);
    store
        .put(
            &KeyLayout::default().manifest(&hash),
            m.to_json().into(),
            "application/json",
        )
        .await
        .unwrap();
    // Junk under meta/ is skipped, not fatal.
    store
        .put("meta/README.txt", Bytes::from_static(b"hi"), "text/plain")
        .await
        .unwrap();

    let future = SystemTime::now() + Duration::from_secs(3600);
    let none = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            since: Some(future),
            dry_run: true,
            ..opts(SizeLimits::default())
        },
    )
    .await
    .unwrap();
    assert_eq!(none.counts.enqueued, 0);
    assert_eq!(none.counts.skipped, 2);

    let since = thumbfarm_api::config::parse_since("1h", SystemTime::now()).unwrap();
    let r = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            since: Some(since),
            ..opts(SizeLimits::default())
        },
    )
    .await
    .unwrap();
    assert_eq!(r.counts.scanned, 2);
    assert_eq!(r.counts.skipped, 1);
    assert_eq!(r.counts.enqueued, 2, "{r}");
    assert_eq!(r.counts.transcodes, 1);
    assert_eq!(broker_count(QueueName::Transcode).await, 1);
    assert_eq!(broker_count(QueueName::RenderBulk).await, 1);
    purge_all().await;
}

#[test]
fn backfill_flags_parse_and_validate() {
    let cli = Cli::try_parse_from([
        "thumbfarm-api",
        "backfill",
        "--sizes",
        "fit_720,tile_50",
        "--since",
        "24h",
        "--dry-run",
        "--rate",
        "10",
        "--data-dir",
        "/tmp/x",
    ])
    .unwrap();
    let Command::Tool(ToolCommand::Backfill(args)) = cli.command else {
        panic!("not backfill")
    };
    let o = args.options().unwrap();
    assert_eq!(o.sizes, vec![Size::Fit720.into(), Size::Tile50.into()]);
    assert!(o.dry_run && o.since.is_some());
    assert_eq!(o.rate, 10.0);

    let cli =
        Cli::try_parse_from(["thumbfarm-api", "backfill", "--static-size-limit", "2560"]).unwrap();
    let Command::Tool(ToolCommand::Backfill(args)) = cli.command else {
        panic!()
    };
    assert!(args
        .options()
        .unwrap()
        .sizes
        .contains(&Size::Fit2560.into()));

    for (flag, bad) in [
        ("--sizes", "--sizes=fit_999"),
        ("--since", "--since=last tuesday"),
        ("--rate", "--rate=-1"),
    ] {
        let cli = Cli::try_parse_from(["thumbfarm-api", "backfill", bad]).unwrap();
        let Command::Tool(ToolCommand::Backfill(args)) = cli.command else {
            panic!()
        };
        let e = args.options().unwrap_err().to_string();
        assert!(e.contains(flag), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_assets_are_left_alone_unless_retry_failed() {
    use thumbfarm_shared::manifest::{FailureRecord, IMAGE_OUTPUT};
    let _guard = BROKER_LOCK.lock().await;
    purge_all().await;
    let store = s3_store(&unique_bucket("retryf")).await;
    let queue = amqp().await;
    let ok = fake_asset(store.as_ref(), "retry-ok", None).await;
    let failed = fake_asset(store.as_ref(), "retry-failed", None).await;
    let key = KeyLayout::default().manifest(&failed);
    let mut m = Manifest::from_json(&store.get(&key).await.unwrap()).unwrap();
    m.failures.insert(
        IMAGE_OUTPUT.into(),
        FailureRecord::now("over the limits: 30000x30000 exceeds 100 MP"),
    );
    store
        .put(&key, m.to_json().into(), "application/json")
        .await
        .unwrap();

    // Without --retry-failed: only the healthy asset gets a job.
    let plain = backfill::run(store.as_ref(), queue.as_ref(), &opts(SizeLimits::default()))
        .await
        .unwrap();
    assert_eq!(plain.counts.failed, 1, "{plain}");
    assert_eq!(plain.counts.enqueued, 1, "{plain}");
    let jobs = take_all(QueueName::RenderBulk).await;
    let hashes: Vec<AssetHash> = jobs
        .iter()
        .map(|j| match Job::parse(&j.routing_key, &j.body).unwrap() {
            Job::Render(r) => r.hash.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(hashes, vec![ok]);
    assert!(plain.to_string().contains("1 with failures left alone"));

    // --retry-failed (as parsed from the command line) clears the record
    // and plans the asset again.
    let cli = Cli::try_parse_from(["thumbfarm-api", "backfill", "--retry-failed"]).unwrap();
    let Command::Tool(ToolCommand::Backfill(args)) = cli.command else {
        panic!("backfill command");
    };
    let retry = backfill::run(
        store.as_ref(),
        queue.as_ref(),
        &BackfillOptions {
            rate: 0.0,
            ..args.options().unwrap()
        },
    )
    .await
    .unwrap();
    assert_eq!(retry.counts.failures_cleared, 1, "{retry}");
    assert_eq!(retry.counts.enqueued, 2, "{retry}");
    let cleared = Manifest::from_json(&store.get(&key).await.unwrap()).unwrap();
    assert!(cleared.failures.is_empty(), "{cleared:?}");
    assert_eq!(take_all(QueueName::RenderBulk).await.len(), 2);
}
