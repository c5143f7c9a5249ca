//! Options of the ingest planner: `thumbfarm-api planner`, and its tuning
//! shared with `serve --planner on`.

use super::queue_stats::QueueStatsArgs;
use super::values::parse_seconds;
use crate::background::ingest_planner::{PlannerOptions, DEFAULT_DEDUPE_CAPACITY};
use crate::planning::jobs::Pregeneration;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use thumbfarm_shared::config::{LogArgs, QueueArgs, SizeArgs, StoreArgs};
use thumbfarm_shared::keys::KeyLayout;

/// Planner tuning shared by `thumbfarm-api planner` and `serve --planner on`.
#[derive(Args, Debug, Clone)]
pub struct PlannerTuningArgs {
    /// Ingest events the planner holds unsettled at once.
    #[arg(long, env = "THUMBFARM_PLANNER_PREFETCH", default_value_t = 32)]
    pub planner_prefetch: u16,
    /// Objects remembered as recently planned, to fold bursts of duplicate
    /// events for originals whose hash the event does not give (0: off).
    #[arg(long, env = "THUMBFARM_PLANNER_DEDUPE_CAPACITY", default_value_t = DEFAULT_DEDUPE_CAPACITY)]
    pub planner_dedupe_capacity: usize,
    /// Seconds an object stays in the recently-planned set.
    #[arg(long, env = "THUMBFARM_PLANNER_DEDUPE_WINDOW", default_value = "3600", value_parser = parse_seconds)]
    pub planner_dedupe_window: Duration,
    /// Seconds the planner retries an unavailable store or broker in place
    /// before it gives the event back to the queue.
    #[arg(long, env = "THUMBFARM_PLANNER_RETRY", default_value = "60", value_parser = parse_seconds)]
    pub planner_retry: Duration,
}

impl PlannerTuningArgs {
    /// The planner options for a store layout and what is pre-generated.
    pub fn options(&self, layout: KeyLayout, pregen: Pregeneration) -> PlannerOptions {
        PlannerOptions {
            layout,
            pregen,
            prefetch: self.planner_prefetch.max(1),
            dedupe_capacity: self.planner_dedupe_capacity,
            dedupe_window: self.planner_dedupe_window,
            retry_budget: self.planner_retry,
        }
    }
}

/// Options of `thumbfarm-api planner`.
#[derive(Args, Debug, Clone)]
pub struct PlannerArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub sizes: SizeArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub tuning: PlannerTuningArgs,
    /// Address of the planner's /metrics and /healthz endpoint.
    #[arg(long, env = "THUMBFARM_METRICS_LISTEN", default_value = "0.0.0.0:9092")]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub queue_stats: QueueStatsArgs,
}
