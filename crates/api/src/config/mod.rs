//! Command-line and environment options of `thumbfarm-api` (clap): the
//! subcommands ([`commands`]), `serve` and the API's runtime options
//! ([`serve`]), the planner ([`planner`]) and the backfill ([`backfill`]).

pub mod backfill;
pub mod commands;
pub mod planner;
pub mod queue_stats;
pub mod serve;
pub mod values;

pub use backfill::BackfillArgs;
pub use commands::{Cli, Command, IngestArgs, ToolCommand, UrlArgs};
pub use planner::{PlannerArgs, PlannerTuningArgs};
pub use queue_stats::QueueStatsArgs;
pub use serve::{
    ApiArgs, ApiOptions, PlannerMode, ServeArgs, DEFAULT_CACHE_BYTES, DEFAULT_CACHE_CONTROL,
    DEFAULT_MAX_UPLOAD_BYTES,
};
pub use values::{normalize_public_url, parse_seconds, parse_since};
