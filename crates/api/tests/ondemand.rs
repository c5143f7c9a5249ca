//! On-demand rendering without a worker: one job for many concurrent
//! misses, fake events, deadlines and failures.

mod common;

use axum::http::{header, StatusCode};
use common::*;
use std::time::Duration;
use thumbfarm_shared::messages::{Event, Job, V1};
use thumbfarm_shared::queue::QueueName;
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::tokens::TokenPolicy;

/// Takes the next job from a queue (acknowledging it).
async fn take_job(h: &Harness, queue: QueueName) -> Job {
    let mut consumer = h.queue.consume(queue, 1).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("a job within 5 s")
        .expect("consumer open");
    let job = Job::parse(&delivery.routing_key, &delivery.body).unwrap();
    delivery.ack().await.unwrap();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_misses_make_one_job_and_all_get_the_image() {
    let h = harness();
    let hash = hash_of("concurrent");
    h.put_asset(hash, 4000, 3000).await;
    let uri = thumb_uri(&hash, "public", "fit_1280");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = h.app.clone();
        let uri = uri.clone();
        tasks.push(tokio::spawn(async move {
            send(
                &app,
                axum::http::Request::get(uri)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
        }));
    }
    // Everyone is waiting on one job.
    assert!(
        eventually(5, || async {
            h.ready(QueueName::RenderOnDemand).await >= 1
        })
        .await,
        "a job was published"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.ready(QueueName::RenderOnDemand).await,
        1,
        "exactly one job for 50 requests"
    );
    assert_eq!(h.ready(QueueName::RenderBulk).await, 0);
    assert_eq!(h.state.coordinator().inflight(), 1);

    // The job names the missing size plus the missing pre-generated ones.
    let job_sizes = match take_job(&h, QueueName::RenderOnDemand).await {
        Job::Render(job) => {
            assert_eq!(job.hash, Some(hash));
            assert!(!job.force);
            assert!(job.sizes.contains(&Size::Fit1280.into()));
            assert!(
                job.sizes.contains(&Size::Tile224.into())
                    && job.sizes.contains(&Size::Fit720.into())
            );
            assert_eq!(job.source.key, h.layout.original(&hash, "jpg"));
            job.sizes
        }
        other => panic!("{other:?}"),
    };

    // Play the worker: store the thumbnail, then announce everything the job asked for.
    h.put_thumb(hash, Size::Fit1280, b"rendered").await;
    h.event(&Event::Rendered {
        v: V1,
        hash,
        sizes: job_sizes,
        thumbhash: None,
    })
    .await;
    for task in tasks {
        let (status, headers, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"rendered");
        assert!(headers.get(header::SET_COOKIE).is_none());
    }
    assert_eq!(h.state.coordinator().inflight(), 0);
    let metrics = h.get("/metrics").await.2;
    let text = String::from_utf8_lossy(&metrics);
    assert!(
        text.contains("thumbfarm_ondemand_waits_total{outcome=\"served\"} 50"),
        "{text}"
    );
}

#[tokio::test]
async fn deadline_is_503_with_retry_after() {
    let mut opts = options();
    opts.wait_timeout = Duration::from_millis(300);
    opts.retry_after = Duration::from_secs(7);
    let h = harness_with(TokenPolicy::Public, SizeLimits::default(), opts);
    let hash = hash_of("slow");
    h.put_asset(hash, 4000, 3000).await;
    let started = std::time::Instant::now();
    let (status, headers, body) = h.get(&thumb_uri(&hash, "public", "tile_224")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(headers[header::RETRY_AFTER], "7");
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(body.starts_with(b"<svg"));
    assert_eq!(h.ready(QueueName::RenderOnDemand).await, 1);
    // A second request joins the job in flight instead of publishing again.
    let (status, ..) = h.get(&thumb_uri(&hash, "public", "tile_224")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let metrics = String::from_utf8_lossy(&h.get("/metrics").await.2).into_owned();
    assert!(
        metrics.contains("thumbfarm_ondemand_waits_total{outcome=\"timeout\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn permanent_failure_is_422_with_a_generic_reason() {
    let h = harness();
    let hash = hash_of("broken");
    h.put_asset(hash, 4000, 3000).await;
    let app = h.app.clone();
    let uri = thumb_uri(&hash, "public", "fit_720");
    let request = tokio::spawn(async move {
        send(
            &app,
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    });
    assert!(
        eventually(5, || async {
            h.ready(QueueName::RenderOnDemand).await >= 1
        })
        .await
    );
    h.event(&Event::Failed {
        v: V1,
        hash,
        // What a worker writes: it names the store key and the bucket.
        reason: "original missing: originals/a/b/c/broken.jpg in s3://private-bucket-7".into(),
        permanent: true,
    })
    .await;
    let (status, headers, body) = request.await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Anonymous clients get a generic reason: no key, no bucket.
    assert_eq!(
        headers["x-thumbfarm-reason"],
        "cannot be rendered: original unavailable"
    );
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    let svg = String::from_utf8_lossy(&body);
    assert!(svg.contains("original unavailable"), "{svg}");
    for secret in ["private-bucket-7", "originals/", "broken.jpg"] {
        assert!(!svg.contains(secret), "{svg}");
        assert!(!headers["x-thumbfarm-reason"]
            .to_str()
            .unwrap()
            .contains(secret));
    }
}

#[tokio::test]
async fn transient_failure_is_503() {
    let h = harness();
    let hash = hash_of("flaky");
    h.put_asset(hash, 4000, 3000).await;
    let app = h.app.clone();
    let uri = thumb_uri(&hash, "public", "fit_720");
    let request = tokio::spawn(async move {
        send(
            &app,
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    });
    assert!(
        eventually(5, || async {
            h.ready(QueueName::RenderOnDemand).await >= 1
        })
        .await
    );
    h.event(&Event::Failed {
        v: V1,
        hash,
        reason: "S3 down".into(),
        permanent: false,
    })
    .await;
    let (status, headers, _) = request.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn unknown_dimensions_are_resolved_after_the_event() {
    let h = harness();
    let hash = hash_of("fresh");
    h.put_asset(hash, 0, 0).await;
    let app = h.app.clone();
    let uri = thumb_uri(&hash, "public", "fit_7680");
    let request = tokio::spawn(async move {
        send(
            &app,
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    });
    assert!(
        eventually(5, || async {
            h.ready(QueueName::RenderOnDemand).await >= 1
        })
        .await
    );
    match take_job(&h, QueueName::RenderOnDemand).await {
        Job::Render(job) => assert!(job.sizes.contains(&Size::Fit7680.into()), "{:?}", job.sizes),
        other => panic!("{other:?}"),
    }
    // The worker learns the original is 1000x800, stores fit_1280 and the manifest.
    h.put_asset(hash, 1000, 800).await;
    h.put_thumb(hash, Size::Fit1280, b"small original").await;
    h.event(&Event::Rendered {
        v: V1,
        hash,
        sizes: vec![Size::Fit1280.into()],
        thumbhash: None,
    })
    .await;
    let (status, _, body) = request.await.unwrap();
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"small original"[..])
    );
}

#[tokio::test]
async fn events_of_other_jobs_wake_waiters_that_check_again() {
    let h = harness();
    let hash = hash_of("other");
    h.put_asset(hash, 4000, 3000).await;
    let app = h.app.clone();
    let uri = thumb_uri(&hash, "public", "left_224");
    let request = tokio::spawn(async move {
        send(
            &app,
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    });
    assert!(
        eventually(5, || async {
            h.ready(QueueName::RenderOnDemand).await >= 1
        })
        .await
    );
    // A bulk job finishes something else first: the waiter keeps waiting.
    h.put_thumb(hash, Size::Tile50, b"tile").await;
    h.event(&Event::Rendered {
        v: V1,
        hash,
        sizes: vec![Size::Tile50.into()],
        thumbhash: None,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!request.is_finished());
    assert_eq!(h.ready(QueueName::RenderOnDemand).await, 1, "no second job");
    h.put_thumb(hash, Size::Left224, b"left").await;
    h.event(&Event::Rendered {
        v: V1,
        hash,
        sizes: vec![Size::Left224.into()],
        thumbhash: None,
    })
    .await;
    let (status, _, body) = request.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"left"[..]));
}
