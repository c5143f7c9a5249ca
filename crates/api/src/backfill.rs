//! `thumbfarm-api backfill`: walks the asset manifests, finds outputs that
//! should exist and do not (after the static size limit was raised, after an
//! in-process queue lost work in a crash, after a change of prefix depth) and
//! enqueues them on `render.bulk` (and `transcode` for videos without an AVC
//! transcode).
//!
//! - The sizes checked are `--sizes` (default: the pre-generated set under
//!   `--static-size-limit`), resolved per original with
//!   [`sizes::render_set`] when its dimensions are known, and checked with a
//!   `HEAD` of the thumbnail key at the configured prefix depth. One job per
//!   asset names only the missing sizes. A manifest without dimensions gets
//!   the whole set (the worker resolves it and skips what exists).
//! - Manifests are listed under `meta/` and their keys parsed at any depth
//!   ([`KeyLayout::parse`]), so data written under another depth is found.
//! - `--since` (RFC 3339 or a duration such as `24h`) keeps manifests written
//!   since then (object last-modified, else the manifest's `updated_at`).
//! - `--dry-run` counts without publishing (and ignores and keeps the cursor).
//! - `--rate` bounds the jobs published per second.
//! - Resumable: every `--cursor-every` manifests the position is written to
//!   [`CURSOR_KEY`] (outside `meta/`); a later run with the same options
//!   continues from it unless `--restart`; a run that completes deletes it.

use crate::config::parse_seconds;
use crate::ingest_events::BACKFILL_PREFIX;
use crate::planner::{PlannedJob, VIDEO_FORMAT};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thumbfarm_shared::config::{LogArgs, QueueArgs, SizeArgs, StoreArgs};
use thumbfarm_shared::keys::{KeyKind, KeyLayout, META};
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{RenderJob, TranscodeJob, V1};
use thumbfarm_shared::queue::topology::routing;
use thumbfarm_shared::queue::{Queue, QueueError};
use thumbfarm_shared::sizes::{self, Size, SizeLimits};
use thumbfarm_shared::store::{Store, StoreError};

/// Where the resume cursor is kept (never under `meta/`).
pub const CURSOR_KEY: &str = "backfill/cursor.json";

/// Jobs kept in [`BackfillReport::jobs`].
pub const MAX_REPORTED_JOBS: usize = 10_000;

/// Manifests per listing page.
const PAGE_SIZE: usize = 1000;

/// Options of `thumbfarm-api backfill`.
#[derive(Args, Debug, Clone)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub limits: SizeArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Sizes to check: comma-separated names, `pregenerated` (the set under
    /// --static-size-limit) or `all`.
    #[arg(long, env = "THUMBFARM_BACKFILL_SIZES", default_value = "pregenerated")]
    pub sizes: String,
    /// Only manifests written since then: RFC 3339 (`2024-05-01T00:00:00Z`)
    /// or a duration ago (`90m`, `24h`, `7d`).
    #[arg(long, env = "THUMBFARM_BACKFILL_SINCE")]
    pub since: Option<String>,
    /// Count what is missing; publish nothing, write no cursor.
    #[arg(long)]
    pub dry_run: bool,
    /// Jobs published per second at most (0: no limit).
    #[arg(long, env = "THUMBFARM_BACKFILL_RATE", default_value_t = 50.0)]
    pub rate: f64,
    /// Ignore (and replace) a cursor left by an unfinished run.
    #[arg(long)]
    pub restart: bool,
    /// Manifests between two writes of the resume cursor.
    #[arg(long, env = "THUMBFARM_BACKFILL_CURSOR_EVERY", default_value_t = 500)]
    pub cursor_every: u64,
    /// Stop after this many manifests, keeping the cursor (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_manifests: u64,
    /// Seconds an unavailable store or broker is retried before the run stops
    /// (resumable from the cursor).
    #[arg(long, env = "THUMBFARM_BACKFILL_RETRY", default_value = "60", value_parser = parse_seconds)]
    pub retry: Duration,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// An option is invalid.
    #[error("invalid option {0}: {1}")]
    Option(&'static str, String),
    /// The store failed (after retries).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The broker failed (after retries).
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// What a backfill does.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The sizes that should exist (before resolving per original).
    pub sizes: Vec<Size>,
    /// The key layout (depth) thumbnails are checked at.
    pub layout: KeyLayout,
    /// Only manifests written since then.
    pub since: Option<SystemTime>,
    /// Publish nothing.
    pub dry_run: bool,
    /// Jobs per second (0 or less: unlimited).
    pub rate: f64,
    /// Ignore a cursor.
    pub restart: bool,
    /// Manifests between cursor writes.
    pub cursor_every: u64,
    /// Stop after this many manifests (keeping the cursor).
    pub max_manifests: Option<u64>,
    /// How long transient errors are retried.
    pub retry: Duration,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            sizes: SizeLimits::default().pregenerated(),
            layout: KeyLayout::default(),
            since: None,
            dry_run: false,
            rate: 50.0,
            restart: false,
            cursor_every: 500,
            max_manifests: None,
            retry: Duration::from_secs(60),
            progress: false,
        }
    }
}

/// Counts of a run (cumulative over resumed runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillCounts {
    /// Manifests looked at.
    pub scanned: u64,
    /// Assets with every output present.
    pub complete: u64,
    /// Jobs published (or, in a dry run, that would be).
    pub enqueued: u64,
    /// Sizes in the render jobs.
    pub sizes_enqueued: u64,
    /// Transcode jobs among `enqueued`.
    pub transcodes: u64,
    /// Manifests without known dimensions (the whole set was enqueued).
    pub without_dimensions: u64,
    /// Keys under `meta/` that are not readable manifests, or older than `--since`.
    pub skipped: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// The counts.
    pub counts: BackfillCounts,
    /// Whether the run reached the end (the cursor was deleted).
    pub finished: bool,
    /// The manifest key the run continued after, when it resumed.
    pub resumed_after: Option<String>,
    /// Whether nothing was published.
    pub dry_run: bool,
    /// The first [`MAX_REPORTED_JOBS`] jobs of this run (published, or in a
    /// dry run that would be).
    pub jobs: Vec<PlannedJob>,
}

impl std::fmt::Display for BackfillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        if let Some(after) = &self.resumed_after {
            writeln!(f, "resumed after {after}")?;
        }
        writeln!(
            f,
            "{}scanned {} manifests: {} complete, {} jobs {} ({} sizes, {} transcodes), {} without dimensions, {} skipped",
            if self.dry_run { "dry run: " } else { "" },
            c.scanned,
            c.complete,
            c.enqueued,
            if self.dry_run { "would be enqueued" } else { "enqueued" },
            c.sizes_enqueued,
            c.transcodes,
            c.without_dimensions,
            c.skipped
        )?;
        if !self.finished {
            writeln!(
                f,
                "stopped before the end; run again to continue from {CURSOR_KEY}"
            )?;
        }
        Ok(())
    }
}

/// The options a cursor was written with; resuming needs the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorOptions {
    /// The size names.
    pub sizes: Vec<Size>,
    /// `--since` as seconds since the epoch.
    pub since: Option<u64>,
    /// The prefix depth.
    pub prefix_depth: u8,
}

/// The resume cursor stored at [`CURSOR_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Always 1.
    pub v: V1,
    /// The last manifest key fully handled.
    pub after: String,
    /// When the backfill started (RFC 3339).
    pub started_at: String,
    /// When the cursor was written (RFC 3339).
    #[serde(default)]
    pub updated_at: String,
    /// The options of the run.
    pub options: CursorOptions,
    /// The counts so far.
    #[serde(default)]
    pub counts: BackfillCounts,
}

/// Parses `--since`: RFC 3339, an HTTP date, or a duration ago
/// (`90s`, `15m`, `24h`, `7d`, `2w`).
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(t) = httpdate::parse_http_date(s) {
        return Ok(t);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor a duration like 24h"))?;
    let unit_secs = match unit.trim() {
        "s" | "" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    let secs = n * unit_secs;
    if !secs.is_finite() || !(0.0..=100.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    now.checked_sub(Duration::from_secs_f64(secs))
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.5+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = rest.get(1..)?;
            let (oh, om) = hm.split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// When a manifest was last written, from its `updated_at` (RFC 3339 or an
/// HTTP date).
fn manifest_time(m: &Manifest) -> Option<SystemTime> {
    let t = m.updated_at.trim();
    parse_rfc3339(t).or_else(|| httpdate::parse_http_date(t).ok())
}

fn rfc3339_now() -> String {
    crate::routes::ingest::rfc3339_now()
}

impl BackfillArgs {
    /// The validated options.
    pub fn options(&self) -> Result<BackfillOptions, BackfillError> {
        let limits = self.limits.limits();
        let layout = self
            .store
            .layout()
            .map_err(|e| BackfillError::Option("--prefix-depth", e.to_string()))?;
        let sizes = sizes::parse_size_list(&self.sizes, &limits)
            .map_err(|e| BackfillError::Option("--sizes", e.to_string()))?;
        if sizes.is_empty() {
            return Err(BackfillError::Option("--sizes", "names no size".into()));
        }
        let since = self
            .since
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_since(s, SystemTime::now()))
            .transpose()
            .map_err(|e| BackfillError::Option("--since", e))?;
        if !self.rate.is_finite() || self.rate < 0.0 {
            return Err(BackfillError::Option("--rate", "must be 0 or more".into()));
        }
        Ok(BackfillOptions {
            sizes: sizes
                .into_iter()
                .filter(|s| limits.allows_on_request(*s))
                .collect(),
            layout,
            since,
            dry_run: self.dry_run,
            rate: self.rate,
            restart: self.restart,
            cursor_every: self.cursor_every.max(1),
            max_manifests: (self.max_manifests > 0).then_some(self.max_manifests),
            retry: self.retry,
            progress: !self.quiet,
        })
    }
}

/// Retries `op` on transient errors with backoff, for up to `budget`.
async fn retrying<T, E, F, Fut>(budget: Duration, what: &str, mut op: F) -> Result<T, E>
where
    E: std::fmt::Display + Transient,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(250);
    loop {
        match op().await {
            Err(e) if e.transient() && Instant::now() + delay < deadline => {
                tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "backfill: unavailable, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Errors that may go away by retrying.
trait Transient {
    fn transient(&self) -> bool;
}

impl Transient for StoreError {
    fn transient(&self) -> bool {
        self.is_transient()
    }
}

impl Transient for QueueError {
    fn transient(&self) -> bool {
        matches!(
            self,
            QueueError::Unavailable(_) | QueueError::NotConfirmed(_)
        )
    }
}

/// Paces publishing at `rate` jobs per second.
struct Pacer {
    interval: Option<Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        let interval =
            (rate > 0.0 && rate.is_finite()).then(|| Duration::from_secs_f64(1.0 / rate));
        Pacer {
            interval,
            next: tokio::time::Instant::now(),
        }
    }

    async fn wait(&mut self) {
        if let Some(interval) = self.interval {
            let now = tokio::time::Instant::now();
            if self.next > now {
                tokio::time::sleep_until(self.next).await;
            }
            self.next = self.next.max(now) + interval;
        }
    }
}

/// The jobs that complete one asset, with the sizes they add.
async fn jobs_for_manifest(
    store: &dyn Store,
    opts: &BackfillOptions,
    m: &Manifest,
    counts: &mut BackfillCounts,
) -> Result<Vec<PlannedJob>, StoreError> {
    let layout = opts.layout;
    let hash = m.hash;
    let missing: Vec<Size> = if m.has_dimensions() {
        let needed = sizes::render_set(&opts.sizes, m.width, m.height);
        let heads = futures::future::join_all(needed.iter().map(|s| {
            let key = layout.thumb(&hash, *s);
            async move {
                retrying(opts.retry, "check thumbnail", || store.head(&key))
                    .await
                    .map(|found| found.is_none())
            }
        }))
        .await;
        let mut missing = Vec::new();
        for (size, absent) in needed.iter().zip(heads) {
            if absent? {
                missing.push(*size);
            }
        }
        missing
    } else {
        counts.without_dimensions += 1;
        opts.sizes.clone()
    };
    let mut jobs = Vec::new();
    if !missing.is_empty() {
        counts.sizes_enqueued += missing.len() as u64;
        jobs.push(PlannedJob::Render(
            routing::RENDER_BULK,
            RenderJob {
                v: V1,
                hash: Some(hash),
                source: m.original.clone(),
                sizes: missing,
                force: false,
                media_type: Some(m.media_type.clone()).filter(|t| !t.is_empty()),
            },
        ));
    }
    if m.is_video() {
        let key = layout.video(&hash);
        if retrying(opts.retry, "check transcode", || store.head(&key))
            .await?
            .is_none()
        {
            counts.transcodes += 1;
            jobs.push(PlannedJob::Transcode(TranscodeJob {
                v: V1,
                hash: Some(hash),
                source: m.original.clone(),
                format: VIDEO_FORMAT.to_string(),
                force: false,
            }));
        }
    }
    Ok(jobs)
}

async fn read_cursor(store: &dyn Store, retry: Duration) -> Result<Option<Cursor>, StoreError> {
    match retrying(retry, "read cursor", || store.get(CURSOR_KEY)).await {
        Ok(bytes) => match serde_json::from_slice::<Cursor>(&bytes) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::warn!(error = %e, "backfill: unreadable cursor ignored; starting over");
                Ok(None)
            }
        },
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write_cursor(
    store: &dyn Store,
    cursor: &Cursor,
    retry: Duration,
) -> Result<(), StoreError> {
    let mut c = cursor.clone();
    c.updated_at = rfc3339_now();
    let body = bytes::Bytes::from(serde_json::to_vec_pretty(&c).unwrap_or_default());
    retrying(retry, "write cursor", || {
        store.put(CURSOR_KEY, body.clone(), "application/json")
    })
    .await
    .map(|_| ())
}

/// Runs a backfill over `store`, publishing on `queue`.
pub async fn run(
    store: &dyn Store,
    queue: &dyn Queue,
    opts: &BackfillOptions,
) -> Result<BackfillReport, BackfillError> {
    debug_assert!(!CURSOR_KEY.starts_with(META) && CURSOR_KEY.starts_with(BACKFILL_PREFIX));
    let cursor_options = CursorOptions {
        sizes: opts.sizes.clone(),
        since: opts
            .since
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        prefix_depth: opts.layout.depth(),
    };
    let mut cursor = Cursor {
        v: V1,
        after: String::new(),
        started_at: rfc3339_now(),
        updated_at: String::new(),
        options: cursor_options.clone(),
        counts: BackfillCounts::default(),
    };
    let mut resumed_after = None;
    if !opts.dry_run {
        if opts.restart {
            retrying(opts.retry, "delete cursor", || store.delete(CURSOR_KEY)).await?;
        } else if let Some(old) = read_cursor(store, opts.retry).await? {
            if old.options == cursor_options {
                tracing::info!(after = %old.after, "backfill: resuming from the cursor");
                resumed_after = Some(old.after.clone()).filter(|a| !a.is_empty());
                cursor = old;
            } else {
                tracing::warn!(
                    "backfill: the cursor was written with other options (sizes, --since, depth); starting over"
                );
            }
        }
    }

    let bar = if opts.progress {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));

    let mut pacer = Pacer::new(opts.rate);
    let mut collected = Vec::new();
    let mut this_run = 0u64;
    let mut since_write = 0u64;
    let prefix = format!("{META}/");
    let mut after = Some(cursor.after.clone()).filter(|a| !a.is_empty());
    let mut finished = false;
    'pages: loop {
        let page = retrying(opts.retry, "list manifests", || {
            store.list(&prefix, after.as_deref(), PAGE_SIZE)
        })
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                save_progress(store, opts, &cursor).await;
                return Err(e.into());
            }
        };
        for obj in &page.objects {
            if opts.max_manifests.is_some_and(|max| this_run >= max) {
                break 'pages;
            }
            this_run += 1;
            let result =
                handle_object(store, queue, opts, obj, &mut cursor.counts, &mut pacer).await;
            match result {
                Ok(jobs) => {
                    let room = MAX_REPORTED_JOBS.saturating_sub(collected.len());
                    collected.extend(jobs.into_iter().take(room));
                }
                Err(e) => {
                    save_progress(store, opts, &cursor).await;
                    bar.finish_and_clear();
                    return Err(e);
                }
            }
            cursor.after = obj.key.clone();
            since_write += 1;
            if !opts.dry_run && since_write >= opts.cursor_every {
                since_write = 0;
                write_cursor(store, &cursor, opts.retry).await?;
            }
            let c = &cursor.counts;
            bar.set_message(format!(
                "scanned {} · complete {} · enqueued {} jobs ({} sizes) · skipped {}",
                c.scanned, c.complete, c.enqueued, c.sizes_enqueued, c.skipped
            ));
        }
        match page.next {
            Some(next) if !page.objects.is_empty() => after = Some(next),
            _ => {
                finished = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    if !opts.dry_run {
        if finished {
            retrying(opts.retry, "delete cursor", || store.delete(CURSOR_KEY)).await?;
        } else {
            write_cursor(store, &cursor, opts.retry).await?;
        }
    }
    Ok(BackfillReport {
        counts: cursor.counts,
        finished,
        resumed_after,
        dry_run: opts.dry_run,
        jobs: collected,
    })
}

/// Writes the cursor after a failure, so a later run resumes (best effort).
async fn save_progress(store: &dyn Store, opts: &BackfillOptions, cursor: &Cursor) {
    if opts.dry_run || cursor.after.is_empty() {
        return;
    }
    if let Err(e) = write_cursor(store, cursor, Duration::ZERO).await {
        tracing::warn!(error = %e, "backfill: could not save the cursor");
    }
}

async fn handle_object(
    store: &dyn Store,
    queue: &dyn Queue,
    opts: &BackfillOptions,
    obj: &thumbfarm_shared::store::ObjectMeta,
    counts: &mut BackfillCounts,
    pacer: &mut Pacer,
) -> Result<Vec<PlannedJob>, BackfillError> {
    let skip = |counts: &mut BackfillCounts, why: &str| {
        tracing::debug!(key = %obj.key, why, "backfill: skipped");
        counts.skipped += 1;
        Ok(Vec::new())
    };
    counts.scanned += 1;
    let hash = match KeyLayout::parse(&obj.key) {
        Ok((hash, KeyKind::Manifest)) => hash,
        _ => return skip(counts, "not a manifest key"),
    };
    if let (Some(since), Some(modified)) = (opts.since, obj.last_modified) {
        if modified < since {
            return skip(counts, "older than --since");
        }
    }
    let bytes = match retrying(opts.retry, "read manifest", || store.get(&obj.key)).await {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => return skip(counts, "deleted meanwhile"),
        Err(e) => return Err(e.into()),
    };
    let manifest = match Manifest::from_json(&bytes) {
        Ok(m) if m.hash == hash => m,
        Ok(_) => return skip(counts, "manifest of another hash"),
        Err(e) => {
            tracing::warn!(key = %obj.key, error = %e, "backfill: unreadable manifest skipped");
            return skip(counts, "unreadable");
        }
    };
    if let (Some(since), None) = (opts.since, obj.last_modified) {
        if manifest_time(&manifest).is_some_and(|t| t < since) {
            return skip(counts, "older than --since");
        }
    }
    let jobs = jobs_for_manifest(store, opts, &manifest, counts).await?;
    if jobs.is_empty() {
        counts.complete += 1;
        return Ok(jobs);
    }
    for job in &jobs {
        counts.enqueued += 1;
        if opts.dry_run {
            continue;
        }
        pacer.wait().await;
        retrying(opts.retry, "publish job", || job.publish(queue)).await?;
    }
    Ok(jobs)
}

/// `thumbfarm-api backfill`: opens the store and the queue and runs.
pub async fn run_cli(args: &BackfillArgs) -> anyhow::Result<BackfillReport> {
    let opts = args.options()?;
    let store = args.store.open().await?;
    let queue = args.queue.open().await?;
    if !args.queue.uses_amqp() && !opts.dry_run {
        tracing::warn!("no --amqp-url: jobs go to an in-process queue that ends with this command; did you mean to set THUMBFARM_AMQP_URL?");
    }
    tracing::info!(
        store = %store.describe(),
        queue = %queue.describe(),
        sizes = ?opts.sizes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        dry_run = opts.dry_run,
        rate = opts.rate,
        "backfill starting"
    );
    Ok(run(store.as_ref(), queue.as_ref(), &opts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_timestamps_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_since("24h", now).unwrap(),
            now - Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            now - Duration::from_secs(5400)
        );
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            parse_since("2023-11-15T00:13:20.25+02:00", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            parse_since("Tue, 14 Nov 2023 22:13:20 GMT", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5 parsecs", now).is_err());
        assert!(parse_rfc3339("2023-13-01T00:00:00Z").is_none());
        assert_eq!(
            parse_rfc3339(&crate::routes::ingest::rfc3339(1_234_567_890)),
            Some(UNIX_EPOCH + Duration::from_secs(1_234_567_890))
        );
    }

    #[test]
    fn the_cursor_is_not_a_manifest_key() {
        assert!(KeyLayout::parse(CURSOR_KEY).is_err());
        assert!(!CURSOR_KEY.starts_with("meta/"));
    }
}
