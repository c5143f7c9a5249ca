//! A thumbfarm cluster on one machine, and a load test against it (issue
//! 13): the real RabbitMQ, the real S3 server, several `thumbfarm-api`
//! replicas behind nginx (round robin, keep-alive), several
//! `thumbfarm-worker`s; a closed-loop client sends a mix of hits (sizes
//! ingest pre-generated), misses (renditions never asked for before: one
//! render each) and ingests (new uploads), over assets whose popularity is
//! Zipf-distributed.
//!
//! Every thumbnail the workers write is counted
//! (`thumbfarm_worker_outputs_written_total`); more writes than thumbnails
//! in the bucket is a duplicate render.
//! Used by `tests/cluster_load_e2e.rs` (short, in `make test`) and by the
//! `cluster_load` example (`make bench`).

use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The cluster's shape and the load's mix.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// API replicas behind the load balancer.
    pub replicas: usize,
    /// Workers (one job slot, prefetch 1 each).
    pub workers: usize,
    /// Assets ingested before the run.
    pub assets: usize,
    /// Requests in the run.
    pub requests: usize,
    /// Connections of the closed-loop client.
    pub connections: usize,
    /// Share of requests for a rendition not rendered yet.
    pub miss_ratio: f64,
    /// Share of requests that upload a new photo.
    pub ingest_ratio: f64,
    /// Exponent of the Zipf popularity of assets.
    pub zipf_s: f64,
    /// Pixel size of the generated photos.
    pub photo: (u32, u32),
}

impl LoadConfig {
    /// The full run of `make bench`.
    pub fn bench() -> Self {
        LoadConfig {
            replicas: 3,
            workers: 2,
            assets: 500,
            requests: 20_000,
            connections: 64,
            miss_ratio: 0.05,
            ingest_ratio: 0.005,
            zipf_s: 1.0,
            photo: (1024, 768),
        }
    }
}

/// Latency percentiles of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub config_line: String,
    pub seconds: f64,
    pub throughput: f64,
    pub all: Latency,
    pub hits: Latency,
    pub misses: Latency,
    pub ingests: Latency,
    /// Answers by status code.
    pub statuses: Vec<(u16, usize)>,
    pub server_errors: usize,
    /// Thumbnail writes beyond the thumbnails stored (setup and run).
    pub duplicate_renders: usize,
    /// Thumbnail writes during the run.
    pub thumbnail_writes: usize,
    /// Jobs published by the replicas (on-demand).
    pub ondemand_published: f64,
    /// Misses that found another replica's job in flight.
    pub claims_elsewhere: f64,
    /// Jobs settled by the workers during the run, by queue and outcome.
    pub jobs: Vec<(String, f64)>,
    /// Render jobs that waited for another job's render of their asset.
    pub claim_waits: f64,
    /// Mean seconds a worker spent per on-demand job.
    pub ondemand_job_seconds: f64,
    /// Mean seconds a worker spent per bulk job.
    pub bulk_job_seconds: f64,
    /// Ready messages sampled every half second: (seconds, on-demand, bulk).
    pub queue_depth: Vec<(f64, u32, u32)>,
    /// What the parts cost on this machine, measured around the run: the
    /// simulator's inputs (`benches/sim/sim.py --config`).
    pub measured: Measured,
}

/// Costs measured on this machine, in seconds: what the simulator needs to
/// predict this run.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// S3 server latencies by request kind, one request at a time during the
    /// run: (p50, p90, p99).
    pub s3: Vec<(&'static str, (f64, f64, f64))>,
    /// A persistent publish and its confirm.
    pub publish_confirm: (f64, f64, f64),
    /// Taking and giving back a claim.
    pub claim: (f64, f64, f64),
    /// API process CPU per request (all replicas together).
    pub api_cpu_per_request: f64,
    /// Decode and render time of a bulk (pre-generation) job.
    pub bulk_render: f64,
    /// Decode and render time of an on-demand job.
    pub ondemand_render: f64,
    /// Mean bytes of the photos.
    pub photo_bytes: f64,
}

impl Measured {
    /// The simulator's input overrides and scenario for `cfg`, as JSON.
    pub fn sim_config(&self, cfg: &LoadConfig) -> serde_json::Value {
        use serde_json::json;
        let q = |(p50, p90, p99): (f64, f64, f64)| json!({"p50": p50, "p90": p90, "p99": p99});
        let source = "measured by the load test (tests/common/cluster.rs) on this machine";
        let mut profile = serde_json::Map::new();
        for (kind, l) in &self.s3 {
            let mut v = q(*l);
            v["source"] = json!(source);
            profile.insert(kind.to_string(), v);
        }
        // The decoder hand-over and job overhead the simulator adds to a
        // bulk job (inputs.json); an on-demand job's is added here.
        let fixed = 0.0098 + 0.002;
        json!({
            "inputs": {
                "s3.profiles": {"value": {"local-s3s-fs": profile}},
                "broker.publish_confirm_s": {"value": q(self.publish_confirm), "source": source},
                "broker.claim_s": {"value": q(self.claim), "source": source},
                "api.cpu_s_per_request": {"value": self.api_cpu_per_request, "source": source},
            },
            "scenario": {
                "base": "small_as_built",
                "api": {"replicas": cfg.replicas},
                "client": {"connections": cfg.connections, "requests": cfg.requests},
                "assets": cfg.assets,
                "zipf_s": cfg.zipf_s,
                "miss_fraction": cfg.miss_ratio,
                "ingest_fraction": cfg.ingest_ratio,
                "workers": {"count": cfg.workers},
                "photo_mix": [{
                    "name": format!("jpeg_{}x{}", cfg.photo.0, cfg.photo.1),
                    "share": 1.0,
                    "mp": f64::from(cfg.photo.0) * f64::from(cfg.photo.1) / 1e6,
                    "bytes": self.photo_bytes,
                    "set_s": self.bulk_render,
                }],
                "ondemand_job_cpu_s": self.ondemand_render + fixed,
            }
        })
    }
}

impl LoadReport {
    /// The Markdown tables `make bench` prints and docs/benchmarks.md keeps.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let max_ondemand = self.queue_depth.iter().map(|q| q.1).max().unwrap_or(0);
        let max_bulk = self.queue_depth.iter().map(|q| q.2).max().unwrap_or(0);
        out.push_str(&format!("{}\n\n", self.config_line));
        out.push_str("| measure | value |\n|---|---|\n");
        let rows = [
            ("run time", format!("{:.1} s", self.seconds)),
            ("throughput", format!("{:.0} requests/s", self.throughput)),
            (
                "latency, all (p50 / p99)",
                format!("{:.1} ms / {:.1} ms", self.all.p50_ms, self.all.p99_ms),
            ),
            (
                "latency, hits",
                format!(
                    "{:.1} ms / {:.1} ms ({} requests)",
                    self.hits.p50_ms, self.hits.p99_ms, self.hits.count
                ),
            ),
            (
                "latency, misses (render on demand)",
                format!(
                    "{:.1} ms / {:.1} ms ({} requests)",
                    self.misses.p50_ms, self.misses.p99_ms, self.misses.count
                ),
            ),
            (
                "latency, ingests",
                format!(
                    "{:.1} ms / {:.1} ms ({} requests)",
                    self.ingests.p50_ms, self.ingests.p99_ms, self.ingests.count
                ),
            ),
            ("5xx answers", self.server_errors.to_string()),
            (
                "statuses",
                self.statuses
                    .iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "duplicate renders (thumbnail keys written twice)",
                format!(
                    "{} of {} writes",
                    self.duplicate_renders, self.thumbnail_writes
                ),
            ),
            (
                "on-demand jobs published / misses that joined another replica's job",
                format!("{} / {}", self.ondemand_published, self.claims_elsewhere),
            ),
            (
                "jobs settled",
                self.jobs
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "jobs that waited for another's render",
                self.claim_waits.to_string(),
            ),
            (
                "mean worker time per job (on-demand / bulk)",
                format!(
                    "{:.1} ms / {:.1} ms",
                    self.ondemand_job_seconds * 1000.0,
                    self.bulk_job_seconds * 1000.0
                ),
            ),
            (
                "queue depth, max ready (on-demand / bulk)",
                format!("{max_ondemand} / {max_bulk}"),
            ),
        ];
        for (k, v) in rows {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        let m = &self.measured;
        let ms = |(a, b, c): (f64, f64, f64)| {
            format!("{:.2} / {:.2} / {:.2} ms", a * 1e3, b * 1e3, c * 1e3)
        };
        out.push_str(
            "\nCosts measured on this machine around the run (the simulator's inputs):\n\n",
        );
        out.push_str("| cost | p50 / p90 / p99 or mean |\n|---|---|\n");
        for (kind, l) in &m.s3 {
            out.push_str(&format!(
                "| S3 {kind} of a 17 KB object, during the run | {} |\n",
                ms(*l)
            ));
        }
        out.push_str(&format!(
            "| publish + confirm | {} |\n| claim + release | {} |\n",
            ms(m.publish_confirm),
            ms(m.claim)
        ));
        out.push_str(&format!(
            "| API CPU per request (all replicas) | {:.0} µs |\n| decode + render, bulk job | {:.1} ms |\n| decode + render, on-demand job | {:.1} ms |\n",
            m.api_cpu_per_request * 1e6,
            m.bulk_render * 1e3,
            m.ondemand_render * 1e3
        ));
        // About twenty rows, whatever the run's length (samples are 0.5 s apart).
        let step = (self.queue_depth.len() / 20).max(2);
        out.push_str(&format!(
            "\nQueue depth over time (ready messages, one sample every {:.0} s):\n\n",
            step as f64 / 2.0
        ));
        out.push_str("| t (s) | render.ondemand | render.bulk |\n|---|---|---|\n");
        for (t, o, b) in self.queue_depth.iter().step_by(step) {
            out.push_str(&format!("| {t:.1} | {o} | {b} |\n"));
        }
        out
    }
}

/// A small xorshift generator: the load is the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks asset indexes with Zipf(s) popularity: index 0 is the most popular.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// A photo unique to `seed` (below 65,536): a gradient offset by the seed.
pub fn unique_photo(seed: u32, (w, h): (u32, u32)) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 255 / w.max(1) + seed) % 256) as u8,
            ((y * 255 / h.max(1) + seed / 256) % 256) as u8,
            ((x ^ y).wrapping_add(seed.wrapping_mul(37)) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// Renditions ingest pre-generates for the photos (hits).
const HIT_NAMES: [&str; 4] = ["tile_224", "tile_100", "fit_720", "tile_500"];
/// Renditions nobody asked for (misses), tried in this order per asset.
const MISS_NAMES: [&str; 8] = [
    "left_224",
    "right_224",
    "tile_224.webp",
    "tile_100.webp",
    "fit_720.webp",
    "tile_500.webp",
    "tile_50.webp",
    "fit_1280.webp",
];

/// nginx in front of the replicas: one process, round robin, keep-alive.
struct LoadBalancer {
    _proc: Proc,
    _dir: tempfile::TempDir,
    base: String,
}

impl LoadBalancer {
    fn start(backends: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("nginx dir");
        let port = free_port();
        let servers: String = backends
            .iter()
            .map(|b| format!("    server {};\n", b.trim_start_matches("http://")))
            .collect();
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             client_max_body_size 200m;\n  upstream api {{\n{servers}    keepalive 128;\n  }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://api;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
             proxy_read_timeout 120s;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let exe = which("nginx")
            .or_else(|| {
                let sbin = PathBuf::from("/usr/sbin/nginx");
                sbin.is_file().then_some(sbin)
            })
            .expect("nginx (make deps installs nginx-light)");
        let child = Command::new(exe)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        LoadBalancer {
            _proc: Proc {
                child,
                name: "nginx".into(),
            },
            _dir: dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// The environment of an API replica on the broker and `bucket`, waiting
/// up to 60 s for an on-demand render, plus `extra`.
pub fn api_env(
    endpoint: &str,
    bucket: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let (key, secret) = s3_credentials();
    let mut env = vec![
        ("THUMBFARM_AMQP_URL", amqp_url()),
        ("THUMBFARM_S3_BUCKET", bucket.to_string()),
        ("THUMBFARM_S3_ENDPOINT", endpoint.to_string()),
        ("THUMBFARM_S3_PATH_STYLE", "true".into()),
        ("THUMBFARM_WAIT_TIMEOUT", "60".into()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// Workers with one job slot and prefetch 1, each exposing `/metrics` on a
/// port of its own: the processes and their metrics URLs.
pub fn spawn_single_slot_workers(
    endpoint: &str,
    bucket: &str,
    n: usize,
) -> (Vec<Proc>, Vec<String>) {
    let mut procs = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..n {
        let listen = format!("127.0.0.1:{}", free_port());
        procs.push(spawn_worker(
            endpoint,
            bucket,
            &[
                ("THUMBFARM_PREFETCH", "1"),
                ("THUMBFARM_CONCURRENCY", "1"),
                ("THUMBFARM_METRICS_LISTEN", listen.as_str()),
            ],
        ));
        urls.push(format!("http://{listen}/metrics"));
    }
    (procs, urls)
}

/// The `/metrics` pages at `urls`.
async fn metrics_pages(client: &reqwest::Client, urls: &[String]) -> Vec<String> {
    let mut pages = Vec::with_capacity(urls.len());
    for url in urls {
        let text = client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .text()
            .await
            .unwrap_or_default();
        pages.push(text);
    }
    pages
}

/// The sum of a series over several `/metrics` pages.
pub async fn metric_total(client: &reqwest::Client, urls: &[String], series: &str) -> f64 {
    metrics_pages(client, urls)
        .await
        .iter()
        .map(|text| metric_value(text, series))
        .sum()
}

/// The `q` quantile of sorted samples (nearest rank; 0 when there are none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

fn percentiles(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency {
        count: ms.len(),
        p50_ms: quantile(&ms, 0.50),
        p99_ms: quantile(&ms, 0.99),
    }
}

const KEY: &str = "cluster-load-key-0123456789";

/// p50, p90 and p99 of `samples`.
fn quantiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        quantile(&samples, 0.5),
        quantile(&samples, 0.9),
        quantile(&samples, 0.99),
    )
}

/// Times `n` runs of `op`.
async fn timed<F, Fut>(n: usize, mut op: F) -> (f64, f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        op(i).await;
        samples.push(t.elapsed().as_secs_f64());
    }
    quantiles(samples)
}

/// The S3 server's latencies for thumbnail-sized objects, one request at a
/// time, measured while the run loads the machine.
async fn measure_s3(store: &dyn Store) -> Vec<(&'static str, (f64, f64, f64))> {
    let body = bytes::Bytes::from(vec![7u8; 17_000]);
    let key = |i: usize| format!("bench/{i:03}.jpg");
    let put = timed(50, |i| {
        let body = body.clone();
        async move {
            store.put(&key(i), body, "image/jpeg").await.expect("PUT");
        }
    })
    .await;
    let get = timed(50, |i| async move {
        store.get(&key(i)).await.expect("GET");
    })
    .await;
    let head = timed(50, |i| async move {
        store.head(&key(i)).await.expect("HEAD");
    })
    .await;
    let list = timed(20, |_| async move {
        store.list("bench/", None, 100).await.expect("LIST");
    })
    .await;
    vec![("GET", get), ("HEAD", head), ("PUT", put), ("LIST", list)]
}

/// The broker's cost of a confirmed publish and of a claim taken and given back.
async fn measure_broker() -> ((f64, f64, f64), (f64, f64, f64)) {
    let queue = amqp().await;
    let q = queue.as_ref();
    let publish = timed(100, |_| async move {
        q.publish(Exchange::Events, "bench.latency", b"{}")
            .await
            .expect("publish");
    })
    .await;
    let claim = timed(100, |i| async move {
        let name = format!("bench.{i}");
        let held = q
            .claim(&name, Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("free");
        held.release().await;
    })
    .await;
    (publish, claim)
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// The sum of every series of a metric family over several `/metrics`
/// pages (`prefix` is the name up to and including `{`).
async fn family_total(client: &reqwest::Client, urls: &[String], prefix: &str) -> f64 {
    metrics_pages(client, urls)
        .await
        .iter()
        .flat_map(|text| text.lines())
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Decode and render seconds the workers have spent so far (inside the
/// decoder children).
async fn render_seconds(client: &reqwest::Client, urls: &[String]) -> f64 {
    family_total(
        client,
        urls,
        "thumbfarm_worker_decode_duration_seconds_sum{",
    )
    .await
        + family_total(
            client,
            urls,
            "thumbfarm_worker_render_duration_seconds_sum{",
        )
        .await
}

/// Bulk jobs the workers settled (rendered or skipped).
async fn bulk_settled(client: &reqwest::Client, urls: &[String]) -> f64 {
    let mut n = 0.0;
    for outcome in ["rendered", "skipped"] {
        let series = format!(
            "thumbfarm_worker_jobs_total{{outcome=\"{outcome}\",queue=\"thumbfarm.render.bulk\"}}"
        );
        n += metric_total(client, urls, &series).await;
    }
    n
}

/// GETs `url` and reads the body; the status (599: no answer).
async fn get(client: &reqwest::Client, url: &str) -> u16 {
    match client.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            status
        }
        Err(_) => 599,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hit,
    Miss,
    Ingest,
}

/// Uploads `body` through `base`; the asset's hash.
async fn ingest(
    client: &reqwest::Client,
    base: &str,
    name: String,
    body: Vec<u8>,
) -> (u16, String) {
    match client
        .post(format!("{base}/api/v1/ingest?name={name}.jpg"))
        .bearer_auth(KEY)
        .body(body)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let json: serde_json::Value = resp.json().await.unwrap_or_default();
            (
                status,
                json["hash"].as_str().unwrap_or_default().to_string(),
            )
        }
        Err(_) => (599, String::new()),
    }
}

/// Starts the cluster, ingests the assets, waits for their pre-generation,
/// runs the load and reports. Panics when a part does not start.
pub async fn run_load(cfg: &LoadConfig) -> LoadReport {
    purge_all().await;
    let endpoint = s3_endpoint();
    let bucket = unique_bucket("load");
    let store = s3_store(&endpoint, &bucket).await;
    let (publish_confirm, claim) = measure_broker().await;
    let env = api_env(&endpoint, &bucket, &[]);
    let apis: Vec<(Proc, String)> = (0..cfg.replicas).map(|_| spawn_api(KEY, &env)).collect();
    let (_workers, worker_metrics) = spawn_single_slot_workers(&endpoint, &bucket, cfg.workers);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.connections * 2)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    for (_, base) in &apis {
        wait_healthy(&client, base).await;
    }
    for url in &worker_metrics {
        wait_until(Duration::from_secs(60), "a worker's /metrics", || async {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    let backends: Vec<String> = apis.iter().map(|(_, b)| b.clone()).collect();
    let lb = LoadBalancer::start(&backends);
    let api_metrics: Vec<String> = backends.iter().map(|b| format!("{b}/metrics")).collect();

    // Ingest the assets, a few at a time, and wait for their renders.
    let photos: Vec<Vec<u8>> = (0..cfg.assets)
        .map(|i| unique_photo(i as u32, cfg.photo))
        .collect();
    let mut hashes = Vec::with_capacity(cfg.assets);
    for chunk in photos.chunks(8).enumerate() {
        let (c, bodies) = chunk;
        let uploads: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(j, body)| ingest(&client, &lb.base, format!("p{}", c * 8 + j), body.clone()))
            .collect();
        for (status, hash) in futures::future::join_all(uploads).await {
            assert_eq!(status, 201, "ingest before the run");
            hashes.push(hash);
        }
    }
    let assets = cfg.assets as f64;
    wait_until(
        Duration::from_secs(1800),
        "the assets' pre-generation",
        || async { bulk_settled(&client, &worker_metrics).await >= assets },
    )
    .await;

    let bulk_render = render_seconds(&client, &worker_metrics).await / assets;
    let photo_bytes = photos.iter().map(Vec::len).sum::<usize>() as f64 / assets;

    // Baselines, then the run.
    let render_before = render_seconds(&client, &worker_metrics).await;
    let api_cpu_before: f64 = apis.iter().map(|(p, _)| cpu_seconds(p.pid())).sum();
    let jobs_series = |queue: &str, outcome: &str| {
        format!("thumbfarm_worker_jobs_total{{outcome=\"{outcome}\",queue=\"{queue}\"}}")
    };
    let job_keys: Vec<(String, String)> = ["thumbfarm.render.ondemand", "thumbfarm.render.bulk"]
        .iter()
        .flat_map(|q| {
            ["rendered", "skipped", "failed", "retried"]
                .iter()
                .map(move |o| (q.to_string(), o.to_string()))
        })
        .collect();
    let mut before = HashMap::new();
    for (q, o) in &job_keys {
        before.insert(
            (q.clone(), o.clone()),
            metric_total(&client, &worker_metrics, &jobs_series(q, o)).await,
        );
    }
    let duration_series = |q: &str, what: &str| {
        format!("thumbfarm_worker_job_duration_seconds_{what}{{queue=\"{q}\"}}")
    };
    let mut job_time_before = HashMap::new();
    for q in ["thumbfarm.render.ondemand", "thumbfarm.render.bulk"] {
        for what in ["sum", "count"] {
            job_time_before.insert(
                (q, what),
                metric_total(&client, &worker_metrics, &duration_series(q, what)).await,
            );
        }
    }
    let waits_before = metric_total(
        &client,
        &worker_metrics,
        "thumbfarm_worker_render_claim_waits_total",
    )
    .await;
    let published_before = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_jobs_published_total{routing_key=\"render.ondemand\"}",
    )
    .await;
    let elsewhere_before = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_ondemand_claims_total{outcome=\"held_elsewhere\"}",
    )
    .await;

    let ingest_bodies: Vec<Vec<u8>> =
        (0..((cfg.requests as f64 * cfg.ingest_ratio * 2.0) as usize + 4))
            .map(|i| unique_photo((cfg.assets + i) as u32, cfg.photo))
            .collect();
    let ingest_bodies = Arc::new(Mutex::new(ingest_bodies));
    let misses_left: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; cfg.assets]));
    let hashes = Arc::new(hashes);
    let zipf = Arc::new(Zipf::new(cfg.assets, cfg.zipf_s));
    let issued = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let sampler = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let ondemand = ready_count(QueueName::RenderOnDemand).await;
                let bulk = ready_count(QueueName::RenderBulk).await;
                samples.push((start.elapsed().as_secs_f64(), ondemand, bulk));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        })
    };

    // S3 latencies as the run loads the machine.
    let s3_probe = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            measure_s3(store.as_ref()).await
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..cfg.connections)
        .map(|t| {
            let client = client.clone();
            let base = lb.base.clone();
            let cfg = cfg.clone();
            let (issued, hashes, zipf) =
                (Arc::clone(&issued), Arc::clone(&hashes), Arc::clone(&zipf));
            let (misses_left, ingest_bodies) =
                (Arc::clone(&misses_left), Arc::clone(&ingest_bodies));
            tokio::spawn(async move {
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
                let mut seen = Vec::new();
                loop {
                    let i = issued.fetch_add(1, Ordering::Relaxed);
                    if i >= cfg.requests {
                        break;
                    }
                    let roll = rng.unit();
                    let asset = zipf.sample(&mut rng);
                    let (kind, started) = (
                        if roll < cfg.ingest_ratio {
                            Kind::Ingest
                        } else if roll < cfg.ingest_ratio + cfg.miss_ratio {
                            Kind::Miss
                        } else {
                            Kind::Hit
                        },
                        Instant::now(),
                    );
                    let status = match kind {
                        Kind::Ingest => {
                            let body = ingest_bodies
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .pop()
                                .unwrap_or_else(|| {
                                    unique_photo(60_000 + (i % 5000) as u32, cfg.photo)
                                });
                            ingest(&client, &base, format!("n{i}"), body).await.0
                        }
                        Kind::Hit => {
                            let name = HIT_NAMES[(rng.next() % HIT_NAMES.len() as u64) as usize];
                            get(
                                &client,
                                &format!("{base}/api/v1/t/{}/public/{name}", hashes[asset]),
                            )
                            .await
                        }
                        Kind::Miss => {
                            // The next rendition nobody asked for yet, of
                            // this asset or the next that has one left.
                            let (a, name) = {
                                let mut left =
                                    misses_left.lock().unwrap_or_else(|p| p.into_inner());
                                let mut a = asset;
                                while left[a] >= MISS_NAMES.len() {
                                    a = (a + 1) % left.len();
                                }
                                left[a] += 1;
                                (a, MISS_NAMES[left[a] - 1])
                            };
                            get(
                                &client,
                                &format!("{base}/api/v1/t/{}/public/{name}", hashes[a]),
                            )
                            .await
                        }
                    };
                    seen.push((kind, status, started.elapsed().as_secs_f64() * 1000.0));
                }
                seen
            })
        })
        .collect();
    let mut results = Vec::with_capacity(cfg.requests);
    for t in tasks {
        results.extend(t.await.expect("load task"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let api_cpu: f64 = apis.iter().map(|(p, _)| cpu_seconds(p.pid())).sum::<f64>() - api_cpu_before;

    // Let the jobs the run published finish (ingests' bulk jobs too).
    wait_until(Duration::from_secs(600), "the queues to drain", || async {
        ready_count(QueueName::RenderOnDemand).await == 0
            && ready_count(QueueName::RenderBulk).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.store(true, Ordering::Relaxed);
    let queue_depth = sampler.await.expect("sampler");

    // Every thumbnail the workers wrote, against those stored: the
    // difference was written twice.
    let written = metric_total(
        &client,
        &worker_metrics,
        "thumbfarm_worker_outputs_written_total",
    )
    .await;
    let stored = count_under(store.as_ref(), "thumbs/").await;
    let thumbnail_writes = written as usize;
    let duplicate_renders = thumbnail_writes.saturating_sub(stored);
    let s3_latency = s3_probe.await.expect("S3 probe");

    let mut jobs = Vec::new();
    for (q, o) in &job_keys {
        let n = metric_total(&client, &worker_metrics, &jobs_series(q, o)).await
            - before[&(q.clone(), o.clone())];
        if n > 0.0 {
            jobs.push((format!("{q} {o}"), n));
        }
    }
    let mut mean_job = HashMap::new();
    for q in ["thumbfarm.render.ondemand", "thumbfarm.render.bulk"] {
        let sum = metric_total(&client, &worker_metrics, &duration_series(q, "sum")).await
            - job_time_before[&(q, "sum")];
        let count = metric_total(&client, &worker_metrics, &duration_series(q, "count")).await
            - job_time_before[&(q, "count")];
        mean_job.insert(q, if count > 0.0 { sum / count } else { 0.0 });
    }
    let claim_waits = metric_total(
        &client,
        &worker_metrics,
        "thumbfarm_worker_render_claim_waits_total",
    )
    .await
        - waits_before;
    let ondemand_published = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_jobs_published_total{routing_key=\"render.ondemand\"}",
    )
    .await
        - published_before;
    let claims_elsewhere = metric_total(
        &client,
        &api_metrics,
        "thumbfarm_api_ondemand_claims_total{outcome=\"held_elsewhere\"}",
    )
    .await
        - elsewhere_before;

    // What a job spends decoding and rendering (the simulator adds the
    // S3 requests, the broker calls and the hand-over to the child).
    let ondemand_jobs: f64 = jobs
        .iter()
        .filter(|(k, _)| k.starts_with("thumbfarm.render.ondemand"))
        .map(|(_, n)| n)
        .sum();
    let bulk_jobs: f64 = jobs
        .iter()
        .filter(|(k, _)| k.starts_with("thumbfarm.render.bulk"))
        .map(|(_, n)| n)
        .sum();
    let run_render = render_seconds(&client, &worker_metrics).await - render_before;
    let ondemand_cpu = if ondemand_jobs > 0.0 {
        ((run_render - bulk_jobs * bulk_render) / ondemand_jobs).max(0.0)
    } else {
        0.0
    };
    let measured = Measured {
        s3: s3_latency,
        publish_confirm,
        claim,
        api_cpu_per_request: api_cpu / results.len().max(1) as f64,
        bulk_render,
        ondemand_render: ondemand_cpu,
        photo_bytes,
    };

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (_, s, _) in &results {
        *statuses.entry(*s).or_default() += 1;
    }
    let mut statuses: Vec<(u16, usize)> = statuses.into_iter().collect();
    statuses.sort();
    let of = |k: Option<Kind>| {
        percentiles(
            results
                .iter()
                .filter(|(kind, _, _)| k.is_none_or(|k| *kind == k))
                .map(|(_, _, ms)| *ms)
                .collect(),
        )
    };
    LoadReport {
        config_line: format!(
            "{} requests, {} connections, {} API replicas behind nginx, {} workers (1 slot, prefetch 1), \
             {} assets of {}×{} px, Zipf s={}, {:.1} % misses, {:.1} % ingests",
            cfg.requests,
            cfg.connections,
            cfg.replicas,
            cfg.workers,
            cfg.assets,
            cfg.photo.0,
            cfg.photo.1,
            cfg.zipf_s,
            cfg.miss_ratio * 100.0,
            cfg.ingest_ratio * 100.0
        ),
        seconds,
        throughput: results.len() as f64 / seconds,
        all: of(None),
        hits: of(Some(Kind::Hit)),
        misses: of(Some(Kind::Miss)),
        ingests: of(Some(Kind::Ingest)),
        server_errors: results.iter().filter(|(_, s, _)| *s >= 500).count(),
        statuses,
        duplicate_renders,
        thumbnail_writes,
        ondemand_published,
        claims_elsewhere,
        jobs,
        claim_waits,
        ondemand_job_seconds: mean_job["thumbfarm.render.ondemand"],
        bulk_job_seconds: mean_job["thumbfarm.render.bulk"],
        queue_depth,
        measured,
    }
}
