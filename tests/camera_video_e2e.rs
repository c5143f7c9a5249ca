//! Camera videos end to end with the real binaries on RabbitMQ + S3 (issue
//! 11, items 4–6): an HDR10 clip comes back tone-mapped and tagged BT.709, a
//! Pixel motion photo serves its video at the photo's own hash, an Apple Live
//! Photo pair is linked so that the still's preview list offers the MOV's
//! video, and an animated WebP serves a clip. Outputs are checked with
//! `ffprobe`. Inputs: the shared corpus (a missing file fails the test).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use thumbfarm_shared::manifest::{HdrTransfer, Manifest};
use thumbfarm_shared::store;
use thumbfarm_shared::{AssetHash, KeyLayout};

const KEY: &str = "e2e-camera-video-key-0123456789";

fn corpus_file(rel: &str) -> PathBuf {
    let path = corpus().join(rel);
    assert!(
        path.exists(),
        "test input {} is missing: set THUMBFARM_CORPUS to the shared corpus",
        path.display()
    );
    path
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
        ("THUMBFARM_VIDEO_WAIT", "0".into()),
        ("THUMBFARM_RETRY_AFTER", "1".into()),
    ]
}

async fn ingest(client: &reqwest::Client, base: &str, rel: &str) -> (AssetHash, serde_json::Value) {
    let body = std::fs::read(corpus_file(rel)).expect("read corpus file");
    let resp = client
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(KEY)
        .body(body.clone())
        .send()
        .await
        .expect("ingest");
    assert!(
        resp.status().is_success(),
        "ingest {rel}: {}",
        resp.status()
    );
    (AssetHash::of_bytes(&body), resp.json().await.expect("json"))
}

async fn previews(client: &reqwest::Client, base: &str, hash: &AssetHash) -> serde_json::Value {
    client
        .get(format!("{base}/api/v1/previews/{hash}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("previews")
        .json()
        .await
        .expect("json")
}

/// GETs a video URL until it is 200 (202 while the transcode runs); writes it to `out`.
async fn fetch_video(client: &reqwest::Client, url: &str, out: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let resp = client.get(url).send().await.expect("request");
        match resp.status().as_u16() {
            200 => {
                assert_eq!(resp.headers()["content-type"], "video/mp4");
                let body = resp.bytes().await.expect("body");
                std::fs::write(out, &body).expect("write mp4");
                return;
            }
            202 | 503 => {
                assert!(std::time::Instant::now() < deadline, "{url}: never ready");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => panic!("{url}: unexpected status {other}"),
        }
    }
}

fn video_stream(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {}", path.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .expect("a video stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_videos_are_served_at_the_assets_own_urls() {
    let _broker = BROKER_LOCK.lock().await;
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("camvideo");
    let store = s3_store(&endpoint, &bucket).await;
    let (_api, base) = spawn_api(KEY, &s3_env(&endpoint, &bucket));
    let _render = spawn_worker(&endpoint, &bucket, &[("THUMBFARM_QUEUES", "render")]);
    let _transcode = spawn_worker(
        &endpoint,
        &bucket,
        &[
            ("THUMBFARM_QUEUES", "transcode"),
            ("THUMBFARM_VIDEO_PRESET", "ultrafast"),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // HDR10: tone-mapped, tagged BT.709, recorded as HDR.
    let (hdr, _) = ingest(
        &client,
        &base,
        "ext/video/hdr10-video-with-sdr-container.mp4",
    )
    .await;
    let out = dir.path().join("hdr.mp4");
    fetch_video(
        &client,
        &format!("{base}/api/v1/videos/{hdr}/public/avc"),
        &out,
    )
    .await;
    let v = video_stream(&out);
    assert_eq!(
        (
            &v["color_primaries"],
            &v["color_transfer"],
            &v["color_space"]
        ),
        (&"bt709".into(), &"bt709".into(), &"bt709".into()),
        "{v}"
    );
    let manifest =
        store::get_json::<Manifest>(store.as_ref(), &KeyLayout::default().manifest(&hdr))
            .await
            .expect("read manifest")
            .expect("manifest");
    let transfer = manifest.hdr.and_then(|h| h.transfer);
    assert_eq!(transfer, Some(HdrTransfer::Pq));

    // A Pixel motion photo: its video at the photo's hash; the ingest answer says so.
    let (pixel, answer) = ingest(&client, &base, "raw/PXL_20200710_061629144.MP.jpg").await;
    assert_eq!(
        answer["previews"][0]["video"]["kind"], "motion_photo",
        "{answer}"
    );
    let out = dir.path().join("motion.mp4");
    fetch_video(
        &client,
        &format!("{base}/api/v1/videos/{pixel}/public/avc"),
        &out,
    )
    .await;
    let v = video_stream(&out);
    assert_eq!(
        (
            v["codec_name"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("h264"), Some(1024), Some(768))
    );

    // An Apple Live Photo: the still, then the MOV; linked once both are rendered.
    let (still, _) = ingest(&client, &base, "raw/iphone6s_livephoto.jpg").await;
    let (mov, _) = ingest(&client, &base, "raw/iphone6s_livephoto.mov").await;
    wait_until(Duration::from_secs(120), "the Live Photo pair to be linked", || {
        let client = client.clone();
        let base = base.clone();
        async move { previews(&client, &base, &still).await[0]["video"]["kind"] == "live_photo" }
    })
    .await;
    let list = previews(&client, &base, &still).await;
    let href = list[0]["video"]["href"].as_str().expect("href").to_string();
    assert!(
        href.contains(&still.to_string()),
        "{href}: the still's own hash"
    );
    let out = dir.path().join("live.mp4");
    fetch_video(&client, &format!("{base}{href}"), &out).await;
    let v = video_stream(&out);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1440), Some(1080))
    );
    // The same bytes as the MOV's own video.
    let own = dir.path().join("mov.mp4");
    fetch_video(
        &client,
        &format!("{base}/api/v1/videos/{mov}/public/avc"),
        &own,
    )
    .await;
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&own).unwrap());

    // An animated WebP: a clip of every frame.
    let (webp, answer) = ingest(&client, &base, "ext/formats/iss634.webp").await;
    assert_eq!(
        answer["previews"][0]["video"]["kind"], "animation",
        "{answer}"
    );
    let out = dir.path().join("anim.mp4");
    fetch_video(
        &client,
        &format!("{base}/api/v1/videos/{webp}/public/avc"),
        &out,
    )
    .await;
    assert_eq!(video_stream(&out)["codec_name"], "h264");

    let dead = drain_dead().await;
    assert!(
        dead.is_empty(),
        "{:?}",
        dead.iter().map(|d| &d.reason).collect::<Vec<_>>()
    );
}
