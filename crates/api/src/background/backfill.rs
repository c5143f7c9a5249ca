//! `thumbfarm-api backfill`: walks the asset manifests, finds outputs that
//! should exist and do not (after the static size limit was raised, after an
//! in-process queue lost work in a crash, after a change of prefix depth) and
//! enqueues them on `render.bulk` (and `transcode` for videos without an AVC
//! transcode).
//!
//! - The sizes checked are `--sizes` (default: the pre-generated set under
//!   `--static-size-limit`), resolved per original with
//!   [`resolve_renditions`] when its dimensions are known, and checked with a
//!   `HEAD` of the thumbnail key at the configured prefix depth. One job per
//!   asset names only the missing sizes. A manifest without dimensions gets
//!   the whole set (the worker resolves it and skips what exists).
//! - Manifests are listed under `meta/` and their keys parsed at any depth
//!   ([`KeyLayout::parse`]), so data written under another depth is found.
//! - `--since` (RFC 3339 or a duration such as `24h`) keeps manifests written
//!   since then (object last-modified, else the manifest's `updated_at`).
//! - `--dry-run` counts without publishing (and ignores and keeps the cursor).
//! - `--rate` bounds the jobs published per second.
//! - Outputs with a recorded permanent failure are left alone (counted as
//!   `failed`) unless `--retry-failed`, which clears the records first so
//!   that they are rendered again (e.g. after raising a limit).
//! - Resumable: every `--cursor-every` manifests the position is written to
//!   [`CURSOR_KEY`] (outside `meta/`); a later run with the same options
//!   continues from it unless `--restart`; a run that completes deletes it.

use crate::planning::jobs::{self, PlannedJob};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thumbfarm_shared::keys::{KeyKind, KeyLayout, AVC, META};
use thumbfarm_shared::manifest::{clear_failures, Manifest};
use thumbfarm_shared::messages::V1;
use thumbfarm_shared::queue::{Queue, QueueError};
use thumbfarm_shared::renditions::{resolve_renditions, Rendition};
use thumbfarm_shared::retry::{with_backoff, Backoff};
use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_shared::store::{Store, StoreError};
use thumbfarm_shared::time::rfc3339_now;

/// Where the resume cursor is kept: under [`BACKFILL`], never under `meta/`.
pub const CURSOR_KEY: &str = "backfill/cursor.json";

/// Jobs kept in [`BackfillReport::jobs`].
pub const MAX_REPORTED_JOBS: usize = 10_000;

/// Manifests per listing page.
const PAGE_SIZE: usize = 1000;

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
    /// The renditions that should exist (before resolving per original).
    pub sizes: Vec<Rendition>,
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
    /// Clear recorded failures and render those outputs again.
    pub retry_failed: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            sizes: SizeLimits::default()
                .pregenerated()
                .into_iter()
                .map(Rendition::from)
                .collect(),
            layout: KeyLayout::default(),
            since: None,
            dry_run: false,
            rate: 50.0,
            restart: false,
            cursor_every: 500,
            max_manifests: None,
            retry: Duration::from_secs(60),
            progress: false,
            retry_failed: false,
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
    /// Assets with recorded failures left alone (no `--retry-failed`).
    #[serde(default)]
    pub failed: u64,
    /// Assets whose recorded failures were cleared (`--retry-failed`).
    #[serde(default)]
    pub failures_cleared: u64,
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
            "{}scanned {} manifests: {} complete, {} jobs {} ({} sizes, {} transcodes), {} without dimensions, {} skipped, {} with failures left alone, {} with failures cleared",
            if self.dry_run { "dry run: " } else { "" },
            c.scanned,
            c.complete,
            c.enqueued,
            if self.dry_run { "would be enqueued" } else { "enqueued" },
            c.sizes_enqueued,
            c.transcodes,
            c.without_dimensions,
            c.skipped,
            c.failed,
            c.failures_cleared
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
    pub sizes: Vec<Rendition>,
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
    let missing: Vec<Rendition> = if m.has_dimensions() {
        let needed = resolve_renditions(&opts.sizes, m.width, m.height);
        let heads = futures::future::join_all(needed.iter().map(|s| {
            let key = layout.thumb(&hash, *s);
            async move {
                with_backoff(Backoff::within(opts.retry), "check thumbnail", || {
                    store.head(&key)
                })
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
    // Outputs that failed permanently stay failed until cleared.
    let mut missing: Vec<Rendition> = missing
        .into_iter()
        .filter(|r| m.failure_for(&r.name()).is_none())
        .collect();
    // An asset rendered before ThumbHashes existed gets one: a job with its
    // smallest fit size makes the worker render (it skips the stored
    // outputs and writes the ThumbHash).
    if missing.is_empty() && m.thumbhash.is_none() && m.has_dimensions() {
        let fit = Rendition::from(Size::Fit720);
        if m.failure_for(&fit.name()).is_none() {
            missing = resolve_renditions(&[fit], m.width, m.height);
        }
    }
    if !missing.is_empty() {
        counts.sizes_enqueued += missing.len() as u64;
    }
    let holds_video = jobs::Original::from(m).holds_video();
    let transcode_missing = if holds_video && m.failure_for(AVC).is_none() {
        let key = layout.video(&hash);
        with_backoff(Backoff::within(opts.retry), "check transcode", || {
            store.head(&key)
        })
        .await?
        .is_none()
    } else {
        false
    };
    if transcode_missing {
        counts.transcodes += 1;
    }
    let jobs = jobs::backfill_jobs(m, missing, transcode_missing);
    Ok(jobs)
}

async fn read_cursor(store: &dyn Store, retry: Duration) -> Result<Option<Cursor>, StoreError> {
    match with_backoff(Backoff::within(retry), "read cursor", || {
        store.get(CURSOR_KEY)
    })
    .await
    {
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
    with_backoff(Backoff::within(retry), "write cursor", || {
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
            with_backoff(Backoff::within(opts.retry), "delete cursor", || {
                store.delete(CURSOR_KEY)
            })
            .await?;
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
        let page = with_backoff(Backoff::within(opts.retry), "list manifests", || {
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
            with_backoff(Backoff::within(opts.retry), "delete cursor", || {
                store.delete(CURSOR_KEY)
            })
            .await?;
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
    let bytes = match with_backoff(Backoff::within(opts.retry), "read manifest", || {
        store.get(&obj.key)
    })
    .await
    {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => return skip(counts, "deleted meanwhile"),
        Err(e) => return Err(e.into()),
    };
    let mut manifest = match Manifest::from_json(&bytes) {
        Ok(m) if m.hash == hash => m,
        Ok(_) => return skip(counts, "manifest of another hash"),
        Err(e) => {
            tracing::warn!(key = %obj.key, error = %e, "backfill: unreadable manifest skipped");
            return skip(counts, "unreadable");
        }
    };
    if let (Some(since), None) = (opts.since, obj.last_modified) {
        if manifest.updated().is_some_and(|t| t < since) {
            return skip(counts, "older than --since");
        }
    }
    if !manifest.failures.is_empty() {
        if !opts.retry_failed {
            counts.failed += 1;
        } else {
            counts.failures_cleared += 1;
            if !opts.dry_run {
                with_backoff(Backoff::within(opts.retry), "clear failures", || {
                    clear_failures(store, &obj.key)
                })
                .await?;
            }
            manifest.failures.clear();
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
        with_backoff(Backoff::within(opts.retry), "publish job", || {
            job.publish(queue)
        })
        .await?;
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::keys::{is_own_object, BACKFILL};

    #[test]
    fn the_cursor_is_backfill_state_not_a_manifest_key() {
        assert!(KeyLayout::parse(CURSOR_KEY).is_err());
        assert!(!CURSOR_KEY.starts_with("meta/"));
        assert!(is_own_object(CURSOR_KEY) && CURSOR_KEY.starts_with(BACKFILL));
    }
}
