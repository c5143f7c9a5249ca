//! `--queues`: a worker consumes only the job queues it is given, so render
//! and transcode workers scale on their own queues. Runs the real consumer
//! over the in-process queue and a local store (the AMQP path is the same
//! code; it is covered by the workspace's end-to-end tests).

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_shared::messages::{RenderJob, SourceRef, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, Exchange, MemoryQueue, Queue, QueueName};
use thumbfarm_shared::store::{LocalStore, Store};
use thumbfarm_shared::{AssetHash, KeyLayout, Size};
use thumbfarm_worker::{intake, JobKind, WorkerOptions};

fn small_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode fixture");
    out.into_inner()
}

async fn depth(queue: &dyn Queue, name: QueueName) -> u64 {
    queue
        .stats()
        .await
        .expect("stats")
        .into_iter()
        .find(|s| s.queue == name.name())
        .map(|s| s.ready + s.unacked)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_worker_leaves_transcode_jobs_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).expect("store"));
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new(5));
    let layout = KeyLayout::default();
    let jpeg = small_jpeg();
    let hash = AssetHash::of_bytes(&jpeg);
    let original = layout.original(&hash, "jpg");
    store
        .put(&original, Bytes::from(jpeg), "image/jpeg")
        .await
        .expect("put original");

    // Declares the queues (the in-process queue keeps what is published to
    // a queue nobody consumes yet).
    let _ = queue.stats().await;
    let source = SourceRef {
        bucket: None,
        key: original.clone(),
    };
    let transcode = TranscodeJob {
        v: V1,
        hash: Some(hash),
        source: source.clone(),
        format: "avc".into(),
        force: false,
    };
    publish_json(queue.as_ref(), Exchange::Jobs, "transcode", &transcode)
        .await
        .expect("publish transcode");
    let render = RenderJob {
        v: V1,
        hash: Some(hash),
        source,
        sizes: vec![Size::Tile50.into(), Size::Fit720.into()],
        force: false,
        media_type: Some("image/jpeg".into()),
    };
    publish_json(queue.as_ref(), Exchange::Jobs, "render.bulk", &render)
        .await
        .expect("publish render");

    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(intake::run(
        WorkerOptions {
            queues: vec![JobKind::Render],
            concurrency: 1,
            ..Default::default()
        },
        Arc::clone(&store),
        Arc::clone(&queue),
        stop.clone().cancelled_owned(),
    ));

    let tile = layout.thumb(&hash, Size::Tile50);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.head(&tile).await.expect("head").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "render job not done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(depth(queue.as_ref(), QueueName::RenderBulk).await, 0);
    assert_eq!(
        depth(queue.as_ref(), QueueName::Transcode).await,
        1,
        "the transcode job waits for a transcode worker"
    );
    assert_eq!(depth(queue.as_ref(), QueueName::Dead).await, 0);
    assert!(store
        .head(&layout.video(&hash))
        .await
        .expect("head")
        .is_none());

    stop.cancel();
    worker.await.expect("join").expect("worker exits cleanly");
}
