//! Options of `thumbfarm-api backfill`.

use super::values::{parse_seconds, parse_since};
use crate::background::backfill::{BackfillError, BackfillOptions};
use clap::Args;
use std::time::{Duration, SystemTime};
use thumbfarm_shared::config::{LogArgs, QueueArgs, SizeArgs, StoreArgs};
use thumbfarm_shared::sizes;
use thumbfarm_shared::Rendition;

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
    /// Clear recorded permanent failures and render those outputs again
    /// (e.g. after raising a limit); without it they are left alone.
    #[arg(long)]
    pub retry_failed: bool,
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
        let formats = self
            .limits
            .pregenerate_formats()
            .map_err(|e| BackfillError::Option("--pregenerate-formats", e.to_string()))?;
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
                .flat_map(|s| Rendition::of(s, &formats))
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
            retry_failed: self.retry_failed,
        })
    }
}
