//! Shared harness of the end-to-end tests: the real RabbitMQ, a real S3
//! server (s3s-fs, started by `scripts/services.sh` or by a test itself) and
//! the real binaries. Nothing here is mocked; a service that is down fails
//! the test.
#![allow(dead_code)]

pub mod cluster;
pub mod s3_proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicGetOptions, QueuePurgeOptions};
use lapin::{Connection, ConnectionProperties};
use thumbfarm_shared::messages::{SourceRef, TranscodeJob, V1};
use thumbfarm_shared::queue::{publish_json, AmqpQueue, AmqpSettings, Exchange, Queue, QueueName};
use thumbfarm_shared::store::{S3Settings, S3Store, Store};
use thumbfarm_shared::{AssetHash, KeyLayout};

/// Tests that use the shared broker's fixed queue names run one at a time.
pub static BROKER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test corpus (`../shared/corpus`, or `THUMBFARM_CORPUS`).
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    assert!(
        dir.is_dir(),
        "test input missing: corpus not found at {} (set THUMBFARM_CORPUS)",
        dir.display()
    );
    dir
}

/// A file of the corpus; fails the test, naming `THUMBFARM_CORPUS`, when it
/// is missing (a test never passes without its input).
pub fn corpus_file(rel: &str) -> PathBuf {
    let path = corpus().join(rel);
    assert!(
        path.is_file(),
        "test input missing: {} (set THUMBFARM_CORPUS to the corpus folder)",
        path.display()
    );
    path
}

/// The value of one Prometheus sample (`name{labels}`, labels as written by
/// the exporter) in a `/metrics` text; 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The broker URL.
pub fn amqp_url() -> String {
    std::env::var("THUMBFARM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// The shared S3 server's endpoint.
pub fn s3_endpoint() -> String {
    std::env::var("THUMBFARM_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:8014".to_string())
}

/// Credentials of the S3 test server, exported for the SDK and child processes.
pub fn s3_credentials() -> (String, String) {
    static CREDS: OnceLock<(String, String)> = OnceLock::new();
    CREDS
        .get_or_init(|| {
            let key = std::env::var("THUMBFARM_TEST_S3_ACCESS_KEY")
                .unwrap_or_else(|_| "thumbfarm".to_string());
            let secret = std::env::var("THUMBFARM_TEST_S3_SECRET_KEY")
                .unwrap_or_else(|_| "thumbfarm-secret".to_string());
            // Set once, before any SDK client reads the environment.
            std::env::set_var("AWS_ACCESS_KEY_ID", &key);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", &secret);
            std::env::set_var("AWS_REGION", "us-east-1");
            (key, secret)
        })
        .clone()
}

/// A unique bucket name.
pub fn unique_bucket(tag: &str) -> String {
    format!(
        "tf-{tag}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new bucket on `endpoint`, opened as a store.
pub async fn s3_store(endpoint: &str, bucket: &str) -> Arc<dyn Store> {
    s3_credentials();
    let store = S3Store::connect(S3Settings {
        bucket: bucket.to_string(),
        endpoint: Some(endpoint.to_string()),
        region: "us-east-1".to_string(),
        path_style: true,
        create_bucket: true,
    })
    .await
    .unwrap_or_else(|e| panic!("S3 server at {endpoint} (run scripts/services.sh): {e}"));
    Arc::new(store)
}

/// The broker, topology declared.
pub async fn amqp() -> Arc<dyn Queue> {
    let q = AmqpQueue::connect(AmqpSettings {
        url: amqp_url(),
        delivery_limit: 5,
    })
    .await
    .unwrap_or_else(|e| panic!("RabbitMQ at {} (run scripts/services.sh): {e}", amqp_url()));
    Arc::new(q)
}

async fn raw_channel() -> (Connection, lapin::Channel) {
    let conn = Connection::connect(
        &amqp_url(),
        ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio),
    )
    .await
    .expect("raw AMQP connection");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// Empties every thumbfarm queue (the broker is shared between tests).
pub async fn purge_all() {
    // On a fresh broker the queues do not exist until the topology is declared.
    drop(amqp().await);
    let (conn, ch) = raw_channel().await;
    for q in QueueName::ALL {
        ch.queue_purge(q.name(), QueuePurgeOptions::default())
            .await
            .expect("purge");
    }
    let _ = conn.close(200, "done").await;
}

/// Ready messages in a queue (passive declare).
pub async fn ready_count(queue: QueueName) -> u32 {
    let (conn, ch) = raw_channel().await;
    let q = ch
        .queue_declare(
            queue.name(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("passive declare");
    let _ = conn.close(200, "done").await;
    q.message_count()
}

/// A dead-lettered message: its body and the reason header.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub routing_key: String,
    pub reason: Option<String>,
}

/// Takes (and acks) every message now in `thumbfarm.dead`.
pub async fn drain_dead() -> Vec<DeadLetter> {
    let (conn, ch) = raw_channel().await;
    let mut out = Vec::new();
    while let Some(msg) = ch
        .basic_get(QueueName::Dead.name(), BasicGetOptions::default())
        .await
        .expect("basic_get")
    {
        let reason = msg
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(thumbfarm_shared::queue::REASON_HEADER))
            .and_then(|v| match v {
                lapin::types::AMQPValue::LongString(s) => Some(s.to_string()),
                lapin::types::AMQPValue::ShortString(s) => Some(s.to_string()),
                _ => None,
            });
        out.push(DeadLetter {
            body: msg.delivery.data.clone(),
            routing_key: msg.delivery.routing_key.to_string(),
            reason,
        });
        msg.delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = conn.close(200, "done").await;
    out
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of a workspace binary, building it when a lone `cargo test -p
/// thumbfarm-e2e` did not.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    let _guard = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building {name}");
    }
    path
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `thumbfarm-api serve` on a free port with `api_key` and extra
/// environment; returns the process and its base URL.
pub fn spawn_api(api_key: &str, env: &[(&str, String)]) -> (Proc, String) {
    spawn_server("thumbfarm-api", api_key, env)
}

/// Starts `thumbfarm serve` (the API with the worker in-process) on a free
/// port, like [`spawn_api`].
pub fn spawn_single_machine(api_key: &str, env: &[(&str, String)]) -> (Proc, String) {
    spawn_server("thumbfarm", api_key, env)
}

fn spawn_server(name: &str, api_key: &str, env: &[(&str, String)]) -> (Proc, String) {
    let port = free_port();
    let mut cmd = Command::new(binary(name, name));
    cmd.arg("serve")
        .env("THUMBFARM_LISTEN", format!("127.0.0.1:{port}"))
        .env("THUMBFARM_API_KEYS", api_key)
        .env("THUMBFARM_LOG", "warn")
        .env("THUMBFARM_QUEUE_STATS_INTERVAL", "0.5")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    (
        Proc {
            child,
            name: name.into(),
        },
        format!("http://127.0.0.1:{port}"),
    )
}

/// GETs `url` with `headers`, again every half second while the API answers
/// 503 (an on-demand render still running), for up to 90 s.
pub async fn get_ready(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut req = client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        if resp.status() != 503 || Instant::now() > deadline {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the API at `base` answers `/healthz`.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) {
    wait_until(Duration::from_secs(60), "the API to listen", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// Starts a worker process against the broker and an S3 bucket.
pub fn spawn_worker(endpoint: &str, bucket: &str, extra_env: &[(&str, &str)]) -> Proc {
    let (key, secret) = s3_credentials();
    let mut cmd = Command::new(binary("thumbfarm-worker", "thumbfarm-worker"));
    cmd.arg("run")
        .env("THUMBFARM_AMQP_URL", amqp_url())
        .env("THUMBFARM_S3_BUCKET", bucket)
        .env("THUMBFARM_S3_ENDPOINT", endpoint)
        .env("THUMBFARM_S3_PATH_STYLE", "true")
        .env("THUMBFARM_METRICS_LISTEN", "127.0.0.1:0")
        .env("THUMBFARM_CONCURRENCY", "2")
        .env("THUMBFARM_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn worker");
    Proc {
        child,
        name: "thumbfarm-worker".into(),
    }
}

/// Starts a private s3s-fs on `port`, storing under `root`.
pub fn spawn_s3s(port: u16, root: &Path) -> Proc {
    let (key, secret) = s3_credentials();
    spawn_s3s_with_credentials(port, root, &key, &secret)
}

/// [`spawn_s3s`] accepting only `key`/`secret` (e.g. rotated credentials
/// that the running processes do not have).
pub fn spawn_s3s_with_credentials(port: u16, root: &Path, key: &str, secret: &str) -> Proc {
    std::fs::create_dir_all(root).expect("s3s root");
    let exe = which("s3s-fs").expect("s3s-fs on PATH or in ~/.cargo/bin (make deps)");
    let child = Command::new(exe)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", key, "--secret-key", secret])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn s3s-fs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc {
        child,
        name: "s3s-fs".into(),
    }
}

/// Finds a program on PATH or in ~/.cargo/bin.
pub fn which(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Polls `check` every 100 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts objects under a prefix.
pub async fn count_under(store: &dyn Store, prefix: &str) -> usize {
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let Ok(page) = store.list(prefix, after.as_deref(), 1000).await else {
            return n;
        };
        n += page.objects.len();
        match page.next {
            Some(next) => after = Some(next),
            None => return n,
        }
    }
}

/// A small distinct JPEG (a gradient tinted by `seed`).
pub fn generated_jpeg(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            (seed.wrapping_mul(37) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// Stores a video original under its hash; returns the hash.
pub async fn upload_video(store: &dyn Store, body: Vec<u8>) -> AssetHash {
    let hash = AssetHash::of_bytes(&body);
    store
        .put(
            &KeyLayout::default().original(&hash, "mp4"),
            body.into(),
            "video/mp4",
        )
        .await
        .expect("upload");
    hash
}

/// Publishes the `avc` transcode job of an uploaded original.
pub async fn publish_transcode(queue: &dyn Queue, hash: AssetHash) {
    let job = TranscodeJob {
        v: V1,
        hash: Some(hash),
        source: SourceRef {
            bucket: None,
            key: KeyLayout::default().original(&hash, "mp4"),
        },
        format: "avc".into(),
        force: false,
    };
    publish_json(queue, Exchange::Jobs, "transcode", &job)
        .await
        .expect("publish");
}

/// A 20 s 1280×720 MPEG-4 Part 2 clip (needs a real encode), made in `dir`
/// with the `ffmpeg` CLI from its test source; `title` (in its metadata)
/// makes clips of different bytes.
pub fn synthetic_clip(dir: &Path, title: &str) -> PathBuf {
    let path = dir.join(format!("testsrc-{title}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1280x720:rate=30:duration=20")
        .args(["-c:v", "mpeg4", "-q:v", "5"])
        .args(["-metadata", &format!("title={title}")])
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made no test clip");
    path
}

/// Stores `bytes` as an original with a fresh manifest (what ingest does,
/// without publishing the pre-generation jobs).
pub async fn store_asset(
    store: &dyn Store,
    bytes: &[u8],
    ext: &str,
    media_type: &str,
) -> thumbfarm_shared::manifest::Manifest {
    let hash = AssetHash::of_bytes(bytes);
    let layout = KeyLayout::default();
    let key = layout.original(&hash, ext);
    store
        .put(&key, bytes::Bytes::copy_from_slice(bytes), media_type)
        .await
        .expect("put original");
    let source = SourceRef { bucket: None, key };
    let manifest =
        thumbfarm_shared::manifest::Manifest::new(hash, source, media_type, bytes.len() as u64);
    store
        .put(
            &layout.manifest(&hash),
            manifest.to_json().into(),
            "application/json",
        )
        .await
        .expect("put manifest");
    manifest
}
