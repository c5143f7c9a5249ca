//! `S3Store` against a real S3 server (s3s-fs from `scripts/services.sh`).
//!
//! Endpoint and keys come from `THUMBFARM_TEST_S3_ENDPOINT`,
//! `THUMBFARM_TEST_S3_ACCESS_KEY` and `THUMBFARM_TEST_S3_SECRET_KEY`
//! (defaults: `http://127.0.0.1:8014`, `thumbfarm`, `thumbfarm-secret`).
//! These tests fail, never skip, when the server is unreachable.

use bytes::Bytes;
use futures::TryStreamExt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use thumbfarm_shared::store::{
    ByteRange, ListPage, ObjectMeta, S3Settings, S3Store, Store, StoreError,
};

fn endpoint() -> String {
    std::env::var("THUMBFARM_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8014".into())
}

/// Puts the test credentials where the AWS credential chain finds them.
fn credentials() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let access =
            std::env::var("THUMBFARM_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "thumbfarm".into());
        let secret = std::env::var("THUMBFARM_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|_| "thumbfarm-secret".into());
        std::env::set_var("AWS_ACCESS_KEY_ID", access);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

fn settings(bucket: &str, create: bool) -> S3Settings {
    credentials();
    S3Settings {
        bucket: bucket.to_string(),
        endpoint: Some(endpoint()),
        region: "us-east-1".into(),
        path_style: true,
        create_bucket: create,
    }
}

fn bucket_name(test: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("tf-{test}-{}", &id[..12])
}

/// A store on a fresh bucket of its own.
async fn fresh(test: &str) -> S3Store {
    let bucket = bucket_name(test);
    S3Store::connect(settings(&bucket, true))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "S3 server at {} must be up (scripts/services.sh): {e}",
                endpoint()
            )
        })
}

/// Deletes every object, so the server's disk does not fill up.
async fn empty(store: &S3Store) {
    loop {
        let page = store.list("", None, 1000).await.expect("list");
        if page.objects.is_empty() {
            break;
        }
        for object in page.objects {
            store.delete(&object.key).await.expect("delete");
        }
    }
}

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn read_range(store: &S3Store, key: &str, range: Option<ByteRange>) -> (ObjectMeta, Vec<u8>) {
    let (meta, stream) = store.get_stream(key, range).await.expect("get_stream");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("body");
    (meta, chunks.concat())
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|m| m.key.as_str()).collect()
}

#[tokio::test]
async fn round_trip_with_content_type_and_head() {
    let store = fresh("roundtrip").await;
    store.ping().await.expect("ping");
    assert!(store.describe().starts_with("s3://tf-roundtrip-"));

    let data = Bytes::from(body(100_000, 1));
    let put = store
        .put("thumbs/a/b/c/x_720x720_fit.jpg", data.clone(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(put.size, 100_000);
    assert!(
        !put.etag.is_empty() && !put.etag.contains('"'),
        "{:?}",
        put.etag
    );
    assert_eq!(
        store.get("thumbs/a/b/c/x_720x720_fit.jpg").await.unwrap(),
        data
    );

    let head = store
        .head("thumbs/a/b/c/x_720x720_fit.jpg")
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(head.size, 100_000);
    assert_eq!(head.etag, put.etag);
    assert_eq!(head.content_type.as_deref(), Some("image/jpeg"));
    assert!(head.last_modified.is_some());

    let (meta, all) = read_range(&store, "thumbs/a/b/c/x_720x720_fit.jpg", None).await;
    assert_eq!(all, data.as_ref());
    assert_eq!(meta.size, 100_000);
    assert_eq!(meta.etag, put.etag);
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));

    // New content, new etag.
    let put2 = store
        .put(
            "thumbs/a/b/c/x_720x720_fit.jpg",
            Bytes::from(body(100_000, 2)),
            "image/jpeg",
        )
        .await
        .unwrap();
    assert_ne!(put2.etag, put.etag);

    store
        .put(
            "meta/m.json",
            Bytes::from_static(b"{\"v\":1}"),
            "application/json",
        )
        .await
        .unwrap();
    let head = store.head("meta/m.json").await.unwrap().unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/json"));

    assert!(matches!(
        store.put("../x", Bytes::new(), "x/y").await,
        Err(StoreError::InvalidKey(_))
    ));
    empty(&store).await;
}

#[tokio::test]
async fn ranged_reads() {
    let store = fresh("ranges").await;
    let data = body(300_000, 9);
    store
        .put("videos/a/v.avc.mp4", Bytes::from(data.clone()), "video/mp4")
        .await
        .unwrap();
    let r = |start, end| Some(ByteRange { start, end });
    let key = "videos/a/v.avc.mp4";

    let (meta, first) = read_range(&store, key, r(0, 0)).await;
    assert_eq!(meta.size, 300_000, "size is the whole object's");
    assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(first, &data[..1]);

    let (meta, head) = read_range(&store, key, r(0, 1023)).await;
    assert_eq!(meta.size, 300_000);
    assert_eq!(head, &data[..1024]);

    let (_, middle) = read_range(&store, key, r(100_000, 200_000)).await;
    assert_eq!(middle, &data[100_000..=200_000]);

    let (meta, tail) = read_range(&store, key, r(299_000, 10_000_000)).await;
    assert_eq!(meta.size, 300_000);
    assert_eq!(tail, &data[299_000..]);

    let (_, open) = read_range(&store, key, r(299_990, u64::MAX)).await;
    assert_eq!(open, &data[299_990..]);

    for start in [300_000, 1_000_000] {
        match store.get_stream(key, r(start, start + 10)).await {
            Err(StoreError::RangeNotSatisfiable { size, .. }) => assert_eq!(size, 300_000),
            other => panic!(
                "expected RangeNotSatisfiable, got {:?}",
                other.map(|(m, _)| m)
            ),
        }
    }
    assert!(matches!(
        store.get_stream("videos/nope.mp4", r(0, 10)).await,
        Err(StoreError::NotFound(_))
    ));
    empty(&store).await;
}

#[tokio::test]
async fn missing_keys_and_delete() {
    let store = fresh("missing").await;
    assert!(matches!(
        store.get("meta/a/b/c/none.json").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_stream("none", None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.head("none").await.unwrap().is_none());
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        store.download("none", &dir.path().join("out")).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete("none")
        .await
        .expect("deleting a missing key is fine");

    store
        .put("a/b", Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    assert!(store.head("a/b").await.unwrap().is_some());
    store.delete("a/b").await.unwrap();
    assert!(store.head("a/b").await.unwrap().is_none());
    assert!(matches!(
        store.get("a/b").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list("", None, 10).await.unwrap().objects.is_empty());
}

#[tokio::test]
async fn listing_with_paging_and_start_after() {
    let store = fresh("list").await;
    let all_keys = [
        "a-b",
        "a/b",
        "a/c-d",
        "a/c/d",
        "a0",
        "thumbs/e/c/9/h_100x100_center.jpg",
        "thumbs/e/c/9/h_720x720_fit.jpg",
        "thumbs/e/c/9a",
        "thumbs/e/d/1/y.jpg",
        "thumbs/f/0/0/z.jpg",
    ];
    for k in all_keys {
        store
            .put(k, Bytes::from(k.as_bytes().to_vec()), "x/y")
            .await
            .unwrap();
    }
    let mut sorted = all_keys.to_vec();
    sorted.sort();

    let page = store.list("", None, 1000).await.unwrap();
    assert_eq!(keys(&page), sorted);
    assert!(page.next.is_none());
    assert_eq!(page.objects[0].size, 3);
    // s3s-fs leaves ETags out of listings; when present they are unquoted.
    assert!(!page.objects[0].etag.contains('"'));

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list("", after.as_deref(), 3).await.unwrap();
        assert!(page.objects.len() <= 3);
        pages += 1;
        paged.extend(page.objects.iter().map(|m| m.key.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, sorted);
    assert!(pages >= 4);

    let page = store.list("thumbs/", None, 2).await.unwrap();
    assert_eq!(
        keys(&page),
        [
            "thumbs/e/c/9/h_100x100_center.jpg",
            "thumbs/e/c/9/h_720x720_fit.jpg"
        ]
    );
    assert_eq!(page.next.as_deref(), Some("thumbs/e/c/9/h_720x720_fit.jpg"));
    let page = store
        .list("thumbs/", page.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(keys(&page), ["thumbs/e/c/9a", "thumbs/e/d/1/y.jpg"]);
    let page = store
        .list("thumbs/", page.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(keys(&page), ["thumbs/f/0/0/z.jpg"]);
    assert!(page.next.is_none());

    assert_eq!(
        keys(&store.list("a", None, 100).await.unwrap()),
        ["a-b", "a/b", "a/c-d", "a/c/d", "a0"]
    );
    assert_eq!(
        keys(&store.list("a/c", None, 100).await.unwrap()),
        ["a/c-d", "a/c/d"]
    );
    assert_eq!(
        keys(&store.list("", Some("a/c"), 2).await.unwrap()),
        ["a/c-d", "a/c/d"]
    );
    assert!(store
        .list("zzz", None, 10)
        .await
        .unwrap()
        .objects
        .is_empty());
    empty(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_leave_one_whole_body() {
    let store = Arc::new(fresh("race").await);
    const SIZE: usize = 256 * 1024;
    let bodies: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; SIZE])).collect();
    let tasks: Vec<_> = bodies
        .iter()
        .cloned()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.put("thumbs/c/c/c/same.jpg", b, "image/jpeg").await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store.get("thumbs/c/c/c/same.jpg").await.unwrap();
    assert_eq!(got.len(), SIZE);
    assert!(bodies.contains(&got), "final content is a mix of bodies");
    empty(&store).await;
}

#[tokio::test]
async fn put_file_and_download() {
    let store = fresh("files").await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("original.tif");
    let data = body(5 * 1024 * 1024 + 123, 5);
    std::fs::write(&src, &data).unwrap();

    let meta = store
        .put_file("originals/a/b/c/o.tif", &src, "image/tiff")
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let head = store.head("originals/a/b/c/o.tif").await.unwrap().unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.content_type.as_deref(), Some("image/tiff"));

    let out = dir.path().join("copy.tif");
    assert_eq!(
        store.download("originals/a/b/c/o.tif", &out).await.unwrap(),
        data.len() as u64
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "downloaded copy differs"
    );

    let missing = dir.path().join("missing");
    assert!(matches!(
        store.put_file("originals/x", &missing, "image/tiff").await,
        Err(StoreError::Io(_))
    ));
    empty(&store).await;
}

#[tokio::test]
async fn multipart_put_file() {
    let store = fresh("multipart")
        .await
        .with_multipart(5 * 1024 * 1024, 5 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.mp4");
    let data = body(12 * 1024 * 1024 + 7, 11);
    std::fs::write(&src, &data).unwrap();

    let meta = store
        .put_file("videos/big.mp4", &src, "video/mp4")
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let head = store.head("videos/big.mp4").await.unwrap().unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.content_type.as_deref(), Some("video/mp4"));
    assert!(
        store.get("videos/big.mp4").await.unwrap() == data,
        "multipart content differs"
    );
    let (_, part) = read_range(
        &store,
        "videos/big.mp4",
        Some(ByteRange {
            start: 5 * 1024 * 1024 - 10,
            end: 5 * 1024 * 1024 + 9,
        }),
    )
    .await;
    assert_eq!(part, &data[5 * 1024 * 1024 - 10..5 * 1024 * 1024 + 10]);
    empty(&store).await;
}

#[tokio::test]
async fn missing_bucket_without_create_is_a_clear_error() {
    let bucket = bucket_name("absent");
    let err = match S3Store::connect(settings(&bucket, false)).await {
        Ok(_) => panic!("connected to a bucket that does not exist"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&bucket) && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(
        matches!(err, StoreError::Config(_)),
        "a missing bucket is a configuration error, not retried: {err:?}"
    );

    // With creation allowed, connecting twice is fine.
    S3Store::connect(settings(&bucket, true))
        .await
        .expect("create");
    S3Store::connect(settings(&bucket, true))
        .await
        .expect("already there");
    S3Store::connect(settings(&bucket, false))
        .await
        .expect("exists now");
}

#[tokio::test]
async fn dead_endpoint_fails_quickly() {
    credentials();
    let started = Instant::now();
    let result = S3Store::connect(S3Settings {
        bucket: "thumbfarm".into(),
        endpoint: Some("http://127.0.0.1:1".into()),
        region: "us-east-1".into(),
        path_style: true,
        create_bucket: true,
    })
    .await;
    let took = started.elapsed();
    let err = match result {
        Ok(_) => panic!("connected to a dead endpoint"),
        Err(e) => e,
    };
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// Virtual-host-style addressing (`http://<bucket>.s3.localhost:8015/<key>`)
/// against an s3s-fs that serves the `s3.localhost` domain
/// (`scripts/services.sh` starts it and maps the bucket's host name to
/// loopback). The bucket name is fixed because its host name must resolve.
#[tokio::test]
async fn virtual_host_addressing_with_a_custom_endpoint() {
    credentials();
    let endpoint = std::env::var("THUMBFARM_TEST_S3_VHOST_ENDPOINT")
        .unwrap_or_else(|_| "http://s3.localhost:8015".into());
    let store = S3Store::connect(S3Settings {
        bucket: "thumbfarm-vhost".into(),
        endpoint: Some(endpoint.clone()),
        region: "us-east-1".into(),
        path_style: false,
        create_bucket: true,
    })
    .await
    .unwrap_or_else(|e| panic!("virtual-host S3 at {endpoint} (scripts/services.sh): {e}"));
    let prefix = format!("vhost-{}", uuid::Uuid::new_v4().simple());
    let key = format!("{prefix}/thumbs/a/b/c/x_720x720_fit.jpg");
    let data = body(100_000, 7);
    store
        .put(&key, Bytes::from(data.clone()), "image/jpeg")
        .await
        .expect("put over virtual-host addressing");
    assert_eq!(
        store.get(&key).await.expect("get").as_ref(),
        data.as_slice()
    );
    let (meta, stream) = store
        .get_stream(&key, Some(ByteRange { start: 10, end: 19 }))
        .await
        .expect("ranged get");
    assert_eq!(meta.size, 100_000);
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("range body");
    assert_eq!(chunks.concat(), &data[10..20]);
    let page = store.list(&prefix, None, 10).await.expect("list");
    assert_eq!(page.objects.len(), 1);
    store.delete(&key).await.expect("delete");
    assert!(store.head(&key).await.expect("head").is_none());
}

#[tokio::test]
async fn conditional_writes_refuse_a_stale_version() {
    let store = fresh("cas").await;
    let key = "meta/a/b/c/cas.json";
    store
        .put_if(
            key,
            Bytes::from_static(b"{\"n\":1}"),
            "application/json",
            None,
        )
        .await
        .expect("create when missing");
    let again = store
        .put_if(
            key,
            Bytes::from_static(b"{\"n\":0}"),
            "application/json",
            None,
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "create-if-missing on an existing key: {again:?}"
    );
    let (body, etag) = store.get_versioned(key).await.expect("get_versioned");
    assert_eq!(body.as_ref(), b"{\"n\":1}");
    store
        .put_if(
            key,
            Bytes::from_static(b"{\"n\":2}"),
            "application/json",
            Some(&etag),
        )
        .await
        .expect("write on the version read");
    let stale = store
        .put_if(
            key,
            Bytes::from_static(b"{\"n\":3}"),
            "application/json",
            Some(&etag),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict(_))),
        "a write on a stale version: {stale:?}"
    );
    assert_eq!(store.get(key).await.expect("get").as_ref(), b"{\"n\":2}");
    empty(&store).await;
}

/// 24 jobs of one process change one manifest at once: they take turns on
/// the key, so none is lost on any server. (Writers in different processes
/// rest on the server's conditional write, which AWS S3 and MinIO check in
/// one step with the write; s3s-fs 0.14 checks `If-Match` before it starts
/// writing, so two processes can both pass it. The refusal of a stale
/// version is `conditional_writes_refuse_a_stale_version` above.)
#[tokio::test]
async fn concurrent_manifest_updates_lose_nothing() {
    use thumbfarm_shared::manifest::{update_manifest, Manifest, OutputInfo};
    use thumbfarm_shared::messages::SourceRef;
    use thumbfarm_shared::AssetHash;
    let store = Arc::new(fresh("merge").await);
    let hash = AssetHash::of_bytes(b"merge");
    let key = "meta/x/y/z/merge.json".to_string();
    let writers: Vec<_> = (0..24)
        .map(|i| {
            let store = Arc::clone(&store);
            let key = key.clone();
            tokio::spawn(async move {
                let create = || {
                    let source = SourceRef {
                        bucket: None,
                        key: "originals/merge.jpg".into(),
                    };
                    Some(Manifest::new(hash, source, "image/jpeg", 1))
                };
                update_manifest(store.as_ref(), &key, create, |m| {
                    m.outputs.insert(
                        format!("out_{i}"),
                        OutputInfo {
                            key: format!("thumbs/{i}.jpg"),
                            width: i,
                            height: i,
                            bytes: 1,
                        },
                    );
                })
                .await
            })
        })
        .collect();
    for w in writers {
        w.await.expect("task").expect("update");
    }
    let (m, _) = thumbfarm_shared::store::get_json_versioned::<Manifest>(store.as_ref(), &key)
        .await
        .expect("read")
        .expect("manifest");
    assert_eq!(m.outputs.len(), 24, "every writer's output kept: {m:?}");
    empty(&store).await;
}

#[tokio::test]
async fn a_manifest_that_is_not_json_is_corrupt_not_unavailable() {
    let store = fresh("corrupt").await;
    let key = "meta/a/b/c/bad.json";
    store
        .put(key, Bytes::from_static(b"{\"v\":1,"), "application/json")
        .await
        .expect("put");
    let read = thumbfarm_shared::store::get_json::<serde_json::Value>(&store, key).await;
    match read {
        Err(StoreError::Corrupt { key: k, message }) => {
            assert_eq!(k, key);
            assert!(message.contains("not valid JSON"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    empty(&store).await;
}
