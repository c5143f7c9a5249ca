//! The status page: `GET /` (plain HTML, inline CSS and a little vanilla JS,
//! no build step) and the JSON it polls, `GET /api/v1/status`.
//!
//! It shows the thumbfarm queues with their depth (from `Queue::stats()`,
//! as cached by the API's stats poller), rates (jobs this replica published,
//! and rendered / transcoded / failed events seen on `thumbfarm.events`, per
//! minute), the last failures with their reasons and the last renders as
//! thumbnails (`tile_100` URLs minted for the deployment's token mode, or the
//! smallest size the render stored, so that viewing the page never triggers
//! a render). The events come from a subscription of the replica's own
//! ([`StatusBoard`]). No cookie is read or set.
//!
//! In `signed` and `preview-token` mode the page hands out working URLs of
//! recently rendered thumbnails: turn it off with `--status-page false`, or
//! keep `/` and `/api/v1/status` behind the ingress's access control.

use crate::app::AppState;
use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thumbfarm_shared::messages::Event;
use thumbfarm_shared::queue::{EventStream, Queue, QueueError, QueueStats};
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::AssetHash;
use tokio::task::JoinHandle;

/// Failures kept for the page.
pub const RECENT_FAILURES: usize = 50;
/// Renders kept for the page.
pub const RECENT_RENDERS: usize = 24;
/// The window rates are computed over.
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// Queue depths older than this are fetched again from the broker.
const STATS_MAX_AGE: Duration = Duration::from_secs(15);
/// How long a status request waits for the broker's depths.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the board samples the published-jobs counter and the depths.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A failure seen on `thumbfarm.events`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecentFailure {
    /// The asset.
    pub hash: String,
    /// The worker's reason.
    pub reason: String,
    /// Whether retrying cannot help.
    pub permanent: bool,
    /// When it was seen (RFC 3339).
    pub at: String,
}

/// A render seen on `thumbfarm.events`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecentRender {
    /// The asset.
    pub hash: String,
    /// The sizes stored.
    pub sizes: Vec<Size>,
    /// When it was seen (RFC 3339).
    pub at: String,
}

/// Counts per second over the rate window.
#[derive(Debug, Default)]
struct RateCounter {
    total: u64,
    buckets: VecDeque<(u64, u64)>,
}

impl RateCounter {
    fn add(&mut self, now_sec: u64) {
        self.total += 1;
        match self.buckets.back_mut() {
            Some((sec, n)) if *sec == now_sec => *n += 1,
            _ => self.buckets.push_back((now_sec, 1)),
        }
        self.trim(now_sec);
    }

    fn trim(&mut self, now_sec: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|(sec, _)| sec + RATE_WINDOW.as_secs() <= now_sec)
        {
            self.buckets.pop_front();
        }
    }

    /// Events per minute over the last `window` (at most the rate window),
    /// or over the time since `since` when that is shorter.
    fn per_minute(&mut self, now_sec: u64, window: Duration, since: Instant) -> f64 {
        self.trim(now_sec);
        let window = window.min(RATE_WINDOW).as_secs().max(1);
        let n: u64 = self
            .buckets
            .iter()
            .filter(|(sec, _)| sec + window > now_sec)
            .map(|(_, n)| n)
            .sum();
        let span = since.elapsed().as_secs().clamp(1, window);
        n as f64 * 60.0 / span as f64
    }
}

/// A sample of the published-jobs counter and the queue depths.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    jobs_published: u64,
    queues: Vec<QueueStats>,
}

#[derive(Debug)]
struct BoardState {
    failures: VecDeque<RecentFailure>,
    renders: VecDeque<RecentRender>,
    rendered: RateCounter,
    transcoded: RateCounter,
    failed: RateCounter,
    samples: VecDeque<Sample>,
}

/// What the status page shows that only this replica knows: recent events,
/// event rates and samples of the queue depths. Cheap to clone.
#[derive(Clone)]
pub struct StatusBoard {
    inner: Arc<BoardInner>,
}

struct BoardInner {
    queue: Arc<dyn Queue>,
    metrics: Arc<Metrics>,
    started: Instant,
    state: Mutex<BoardState>,
    listener: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusBoard")
    }
}

fn now_sec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339_of(t: SystemTime) -> String {
    crate::routes::ingest::rfc3339(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

impl StatusBoard {
    /// A board over `queue`; nothing is subscribed until
    /// [`StatusBoard::ensure_listening`].
    pub fn new(queue: Arc<dyn Queue>, metrics: Arc<Metrics>) -> Self {
        StatusBoard {
            inner: Arc::new(BoardInner {
                queue,
                metrics,
                started: Instant::now(),
                state: Mutex::new(BoardState {
                    failures: VecDeque::new(),
                    renders: VecDeque::new(),
                    rendered: RateCounter::default(),
                    transcoded: RateCounter::default(),
                    failed: RateCounter::default(),
                    samples: VecDeque::new(),
                }),
                listener: tokio::sync::Mutex::new(None),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // Every update is a push/pop; a panic cannot leave it inconsistent.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to `thumbfarm.events` (every event) and starts sampling,
    /// unless that is running already.
    pub async fn ensure_listening(&self) -> Result<(), QueueError> {
        let mut guard = self.inner.listener.lock().await;
        if guard.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let stream = self.inner.queue.subscribe("#").await?;
        let board = self.clone();
        *guard = Some(tokio::spawn(board.listen(stream)));
        Ok(())
    }

    /// Stops the subscription.
    pub async fn shutdown(&self) {
        if let Some(task) = self.inner.listener.lock().await.take() {
            task.abort();
        }
    }

    async fn listen(self, mut stream: Box<dyn EventStream>) {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => match serde_json::from_slice::<Event>(&msg.body) {
                        Ok(event) => self.record(event),
                        Err(e) => tracing::debug!(error = %e, routing_key = %msg.routing_key, "status: unreadable event"),
                    },
                    None => {
                        tracing::warn!("status: event subscription ended");
                        return;
                    }
                },
                _ = ticker.tick() => self.sample(),
            }
        }
    }

    /// Records one event (public for tests and embedding).
    pub fn record(&self, event: Event) {
        let now = now_sec();
        let at = rfc3339_of(SystemTime::now());
        let mut s = self.lock();
        match event {
            Event::Rendered { hash, sizes, .. } => {
                s.rendered.add(now);
                s.renders.push_front(RecentRender {
                    hash: hash.to_string(),
                    sizes,
                    at,
                });
                s.renders.truncate(RECENT_RENDERS);
            }
            Event::Failed {
                hash,
                reason,
                permanent,
                ..
            } => {
                s.failed.add(now);
                s.failures.push_front(RecentFailure {
                    hash: hash.to_string(),
                    reason: reason.chars().take(1000).collect(),
                    permanent,
                    at,
                });
                s.failures.truncate(RECENT_FAILURES);
            }
            Event::Transcoded { .. } => s.transcoded.add(now),
            Event::Progress { .. } => {}
        }
    }

    /// Takes a sample of the published-jobs counter and the cached depths.
    fn sample(&self) {
        let queues = self
            .inner
            .metrics
            .queue_stats_snapshot()
            .map(|(_, q)| q)
            .unwrap_or_default();
        self.push_sample(queues);
    }

    fn push_sample(&self, queues: Vec<QueueStats>) {
        let sample = Sample {
            at: Instant::now(),
            jobs_published: self.inner.metrics.jobs_published_total(),
            queues,
        };
        let mut s = self.lock();
        s.samples.push_back(sample);
        while s
            .samples
            .front()
            .is_some_and(|x| x.at.elapsed() > RATE_WINDOW)
        {
            s.samples.pop_front();
        }
    }

    /// The queue depths: the poller's when fresh, else asked of the broker.
    async fn queue_stats(&self) -> (Vec<QueueStats>, Option<SystemTime>, Option<String>) {
        if let Some((at, stats)) = self.inner.metrics.queue_stats_snapshot() {
            if at.elapsed().is_ok_and(|age| age < STATS_MAX_AGE) {
                return (stats, Some(at), None);
            }
        }
        match tokio::time::timeout(STATS_TIMEOUT, self.inner.queue.stats()).await {
            Ok(Ok(stats)) => {
                self.inner.metrics.set_queue_stats(&stats);
                (stats, Some(SystemTime::now()), None)
            }
            Ok(Err(e)) => {
                let old = self.inner.metrics.queue_stats_snapshot();
                let (stats, at) = old.map_or((Vec::new(), None), |(at, s)| (s, Some(at)));
                (stats, at, Some(e.to_string()))
            }
            Err(_) => {
                let old = self.inner.metrics.queue_stats_snapshot();
                let (stats, at) = old.map_or((Vec::new(), None), |(at, s)| (s, Some(at)));
                (stats, at, Some("queue stats timed out".to_string()))
            }
        }
    }

    /// The status document.
    pub async fn snapshot(&self, state: &AppState) -> StatusDoc {
        let (stats, as_of, error) = self.queue_stats().await;
        self.push_sample(stats.clone());
        let started = self.inner.started;
        let now = now_sec();
        let mut s = self.lock();
        // Rates from the oldest sample within the last minute (or older).
        let newest = s.samples.back().cloned();
        let base = s
            .samples
            .iter()
            .find(|x| x.at.elapsed() <= Duration::from_secs(65))
            .cloned();
        let span = match (&base, &newest) {
            (Some(b), Some(n)) => n.at.duration_since(b.at),
            _ => Duration::ZERO,
        };
        let per_min = |delta: f64| {
            (span >= Duration::from_secs(1)).then(|| delta * 60.0 / span.as_secs_f64())
        };
        let queues = stats
            .iter()
            .map(|q| {
                let before = base
                    .as_ref()
                    .and_then(|b| b.queues.iter().find(|x| x.queue == q.queue));
                QueueRow {
                    queue: q.queue.clone(),
                    ready: q.ready,
                    unacked: q.unacked,
                    consumers: q.consumers,
                    ready_change_per_min: before
                        .and_then(|b| per_min(q.ready as f64 - b.ready as f64))
                        .map(round1),
                }
            })
            .collect();
        let jobs_per_min = match (&base, &newest) {
            (Some(b), Some(n)) => per_min(n.jobs_published.saturating_sub(b.jobs_published) as f64),
            _ => None,
        };
        let minute = Duration::from_secs(60);
        let rates = Rates {
            window_seconds: started.elapsed().as_secs().clamp(1, 60),
            jobs_published_per_min: jobs_per_min.map(round1),
            rendered_per_min: round1(s.rendered.per_minute(now, minute, started)),
            transcoded_per_min: round1(s.transcoded.per_minute(now, minute, started)),
            failed_per_min: round1(s.failed.per_minute(now, minute, started)),
        };
        let totals = Totals {
            jobs_published: state.metrics().jobs_published_total(),
            rendered: s.rendered.total,
            transcoded: s.transcoded.total,
            failed: s.failed.total,
        };
        let tokens = state.tokens();
        let public_url = state.options().public_url.as_deref();
        let renders = s
            .renders
            .iter()
            .map(|r| {
                let thumb_url = AssetHash::parse(&r.hash).ok().and_then(|hash| {
                    let size = if r.sizes.contains(&Size::Tile100) {
                        Some(Size::Tile100)
                    } else {
                        r.sizes.iter().copied().min()
                    }?;
                    Some(crate::urls::thumb_url(tokens, public_url, &hash, size))
                });
                RenderRow {
                    render: r.clone(),
                    thumb_url,
                }
            })
            .collect();
        let failures = s.failures.iter().cloned().collect();
        drop(s);
        StatusDoc {
            v: 1,
            generated_at: rfc3339_of(SystemTime::now()),
            store: state.store().describe(),
            queue: state.queue().describe(),
            queues,
            queues_as_of: as_of.map(rfc3339_of),
            queues_error: error,
            rates,
            totals,
            recent_failures: failures,
            recent_renders: renders,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One queue on the page.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    /// The queue name.
    pub queue: String,
    /// Messages ready.
    pub ready: u64,
    /// Messages delivered, not settled (0 where the broker does not say).
    pub unacked: u64,
    /// Consumers attached.
    pub consumers: u32,
    /// Net change of `ready` per minute over about the last minute (`null`
    /// until two samples exist).
    pub ready_change_per_min: Option<f64>,
}

/// Rates per minute, over about the last minute.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// The window the event rates cover (shorter right after start).
    pub window_seconds: u64,
    /// Jobs this replica published (`null` until two samples exist).
    pub jobs_published_per_min: Option<f64>,
    /// `rendered.*` events seen.
    pub rendered_per_min: f64,
    /// `transcoded.*` events seen.
    pub transcoded_per_min: f64,
    /// `failed.*` events seen.
    pub failed_per_min: f64,
}

/// Counts since this replica started.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Jobs published.
    pub jobs_published: u64,
    /// Rendered events seen.
    pub rendered: u64,
    /// Transcoded events seen.
    pub transcoded: u64,
    /// Failed events seen.
    pub failed: u64,
}

/// A recent render with its thumbnail URL.
#[derive(Debug, Clone, Serialize)]
pub struct RenderRow {
    #[serde(flatten)]
    pub render: RecentRender,
    /// A ready URL of `tile_100` (or the smallest stored size).
    pub thumb_url: Option<String>,
}

/// The document of `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    /// Always 1.
    pub v: u8,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The store, described.
    pub store: String,
    /// The queue, described (password redacted).
    pub queue: String,
    /// Every thumbfarm queue.
    pub queues: Vec<QueueRow>,
    /// When the depths were read from the broker.
    pub queues_as_of: Option<String>,
    /// Why the depths could not be read, if they could not.
    pub queues_error: Option<String>,
    /// Rates per minute.
    pub rates: Rates,
    /// Counts since start.
    pub totals: Totals,
    /// The last failures, newest first.
    pub recent_failures: Vec<RecentFailure>,
    /// The last renders, newest first.
    pub recent_renders: Vec<RenderRow>,
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn disabled() -> Response {
    let body = serde_json::json!({ "error": "the status page is turned off (--status-page)", "status": 404 });
    no_store((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
}

async fn document(state: &AppState) -> StatusDoc {
    let board = state.status();
    if let Err(e) = board.ensure_listening().await {
        tracing::debug!(error = %e, "status: cannot subscribe to events");
    }
    board.snapshot(state).await
}

/// `GET /api/v1/status`: the status document (JSON).
pub async fn status_json(State(state): State<AppState>) -> Response {
    if !state.options().status_page {
        return disabled();
    }
    no_store(axum::Json(document(&state).await).into_response())
}

/// The JSON embedded in the page, safe inside `<script>`.
fn embed_json(doc: &StatusDoc) -> String {
    serde_json::to_string(doc)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `GET /`: the status page.
pub async fn page(State(state): State<AppState>) -> Response {
    if !state.options().status_page {
        return disabled();
    }
    let doc = document(&state).await;
    let html = PAGE.replace("__INITIAL_STATUS__", &embed_json(&doc));
    let mut response = (StatusCode::OK, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data: http: https:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    no_store(response)
}

/// The page. `__INITIAL_STATUS__` is replaced by the status document, which
/// the script renders at once and then polls every few seconds.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>thumbfarm status</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f7f8fa; --bad:#b3261e; --ok:#1b7f3b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); font-size: 12px; }
  main { padding: 16px 24px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
  section h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  .bad { color: var(--bad); }
  .ok { color: var(--ok); }
  .error { color: var(--bad); margin: 4px 0; }
  .reason { word-break: break-word; }
  code { font-size: 12px; }
  #renders { display: grid; grid-template-columns: repeat(auto-fill, minmax(104px, 1fr)); gap: 8px; }
  #renders figure { margin: 0; font-size: 11px; color: var(--muted); text-align: center; }
  #renders img { width: 100px; height: 100px; object-fit: cover; background: var(--line); border-radius: 4px; display: block; margin: 0 auto 2px; }
  dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; }
</style>
</head>
<body data-polls="0">
<header>
  <h1>thumbfarm</h1>
  <span class="meta" id="backends"></span>
  <span class="meta">updated <span id="updated">never</span> · <span id="poll-state">polling every 3 s</span></span>
</header>
<noscript><p style="padding:0 24px">This page needs JavaScript; the same data is at <a href="api/v1/status">/api/v1/status</a>.</p></noscript>
<main>
  <section>
    <h2>Queues</h2>
    <p class="error" id="queues-error" hidden></p>
    <table id="queues">
      <thead><tr><th>queue</th><th class="num">ready</th><th class="num">unacked</th><th class="num">consumers</th><th class="num">ready Δ/min</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="muted" id="queues-as-of"></p>
  </section>
  <section>
    <h2>Rates (per minute)</h2>
    <dl id="rates"></dl>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Recent renders</h2>
    <div id="renders"></div>
    <p class="muted" id="renders-empty">No renders seen since this replica started.</p>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Recent failures</h2>
    <table id="failures">
      <thead><tr><th>when</th><th>asset</th><th>reason</th><th>kind</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="muted" id="failures-empty">No failures seen since this replica started.</p>
  </section>
</main>
<script id="initial-status" type="application/json">__INITIAL_STATUS__</script>
<script>
"use strict";
(function () {
  var POLL_MS = 3000;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k])); } }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(x) { return (x === null || x === undefined) ? "–" : String(x); }
  function fill(tbody, rows) { while (tbody.firstChild) tbody.removeChild(tbody.firstChild); rows.forEach(function (r) { tbody.appendChild(r); }); }
  function render(s) {
    if (!s) return;
    document.getElementById("backends").textContent = s.store + " · " + s.queue;
    document.getElementById("updated").textContent = s.generated_at;
    var qerr = document.getElementById("queues-error");
    qerr.hidden = !s.queues_error;
    qerr.textContent = s.queues_error ? "queue depths unavailable: " + s.queues_error : "";
    fill(document.querySelector("#queues tbody"), s.queues.map(function (q) {
      var tr = el("tr", { "data-queue": q.queue, "data-ready": q.ready, "data-unacked": q.unacked, "data-consumers": q.consumers });
      tr.appendChild(el("td", null, q.queue));
      tr.appendChild(el("td", { "class": "num ready" + (q.queue === "thumbfarm.dead" && q.ready > 0 ? " bad" : "") }, q.ready));
      tr.appendChild(el("td", { "class": "num unacked" }, q.unacked));
      tr.appendChild(el("td", { "class": "num consumers" }, q.consumers));
      var d = q.ready_change_per_min;
      tr.appendChild(el("td", { "class": "num change" }, d === null ? "–" : (d > 0 ? "+" : "") + d));
      return tr;
    }));
    document.getElementById("queues-as-of").textContent = s.queues_as_of ? "depths as of " + s.queues_as_of : "";
    var rates = document.getElementById("rates");
    while (rates.firstChild) rates.removeChild(rates.firstChild);
    [["jobs published", s.rates.jobs_published_per_min, "jobs_published", s.totals.jobs_published],
     ["rendered", s.rates.rendered_per_min, "rendered", s.totals.rendered],
     ["transcoded", s.rates.transcoded_per_min, "transcoded", s.totals.transcoded],
     ["failed", s.rates.failed_per_min, "failed", s.totals.failed]].forEach(function (r) {
      rates.appendChild(el("dt", null, r[0]));
      rates.appendChild(el("dd", { "data-rate": r[2] }, num(r[1]) + "  (" + r[3] + " since start)"));
    });
    var box = document.getElementById("renders");
    while (box.firstChild) box.removeChild(box.firstChild);
    s.recent_renders.forEach(function (r) {
      var f = el("figure", { "data-hash": r.hash });
      if (r.thumb_url) f.appendChild(el("img", { src: r.thumb_url, alt: r.hash, loading: "lazy", width: 100, height: 100 }));
      f.appendChild(el("figcaption", { title: r.hash + " · " + r.sizes.join(", ") }, r.hash.slice(0, 10) + "…"));
      box.appendChild(f);
    });
    document.getElementById("renders-empty").hidden = s.recent_renders.length > 0;
    fill(document.querySelector("#failures tbody"), s.recent_failures.map(function (x) {
      var tr = el("tr", { "data-hash": x.hash });
      tr.appendChild(el("td", null, x.at));
      var code = el("code", null, x.hash.slice(0, 12) + "…"); code.title = x.hash;
      var td = el("td"); td.appendChild(code); tr.appendChild(td);
      tr.appendChild(el("td", { "class": "reason" }, x.reason));
      tr.appendChild(el("td", { "class": x.permanent ? "bad" : "muted" }, x.permanent ? "permanent" : "transient"));
      return tr;
    }));
    document.getElementById("failures-empty").hidden = s.recent_failures.length > 0;
  }
  function poll() {
    fetch("api/v1/status", { cache: "no-store", credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        render(s);
        document.body.setAttribute("data-polls", String(Number(document.body.getAttribute("data-polls")) + 1));
        document.getElementById("poll-state").textContent = "polling every " + POLL_MS / 1000 + " s";
        document.getElementById("poll-state").className = "";
      })
      .catch(function (e) {
        var p = document.getElementById("poll-state");
        p.textContent = "status unavailable (" + e.message + "), retrying";
        p.className = "bad";
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  try { render(JSON.parse(document.getElementById("initial-status").textContent)); } catch (e) { /* the poll renders */ }
  poll();
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::messages::V1;

    #[test]
    fn embedded_json_cannot_close_the_script() {
        let s = serde_json::json!({"reason": "</script><script>alert(1)</script>&"}).to_string();
        let escaped = s.replace('<', "\\u003c").replace('>', "\\u003e");
        assert!(!escaped.contains("</script"));
        assert!(PAGE.contains("__INITIAL_STATUS__"));
    }

    #[test]
    fn rings_are_bounded() {
        let queue: Arc<dyn Queue> = Arc::new(thumbfarm_shared::queue::MemoryQueue::new(5));
        let board = StatusBoard::new(queue, Arc::new(Metrics::new().unwrap()));
        for i in 0..100u32 {
            let hash = AssetHash::of_bytes(&i.to_be_bytes());
            board.record(Event::Failed {
                v: V1,
                hash,
                reason: format!("r{i}"),
                permanent: true,
            });
            board.record(Event::Rendered {
                v: V1,
                hash,
                sizes: vec![Size::Tile100],
            });
        }
        let s = board.lock();
        assert_eq!(s.failures.len(), RECENT_FAILURES);
        assert_eq!(s.renders.len(), RECENT_RENDERS);
        assert_eq!(s.failures[0].reason, "r99");
        assert_eq!(s.rendered.total, 100);
    }

    #[test]
    fn rates_per_minute() {
        let mut c = RateCounter::default();
        let now = 10_000;
        for _ in 0..30 {
            c.add(now);
        }
        let since = Instant::now() - Duration::from_secs(120);
        assert_eq!(c.per_minute(now, Duration::from_secs(60), since), 30.0);
        assert_eq!(c.per_minute(now + 120, Duration::from_secs(60), since), 0.0);
    }
}
