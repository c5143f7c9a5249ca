//! The `thumbfarm-api` command line: its subcommands and the options of
//! `ingest` and `url`.

use super::backfill::BackfillArgs;
use super::planner::PlannerArgs;
use super::serve::ServeArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use thumbfarm_shared::config::{SizeArgs, TokenArgs};

/// thumbfarm API: cookie-free thumbnail URLs, on-demand rendering, ingest.
#[derive(Parser, Debug)]
#[command(name = "thumbfarm-api", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (the workers run separately; `thumbfarm serve` runs one in-process).
    Serve(Box<ServeArgs>),
    /// Everything but `serve`.
    #[command(flatten)]
    Tool(ToolCommand),
}

/// The subcommands besides `serve` (the `thumbfarm` binary has them too).
#[derive(Subcommand, Debug)]
pub enum ToolCommand {
    /// Upload files or folders (recursively) through a running API.
    Ingest(IngestArgs),
    /// Print a valid thumbnail URL for the configured token mode.
    Url(UrlArgs),
    /// Consume ingest events (`file.created`, S3 notifications) and enqueue pre-generation.
    Planner(Box<PlannerArgs>),
    /// Find missing outputs from the manifests and enqueue them.
    Backfill(Box<BackfillArgs>),
}

/// Options of `thumbfarm-api ingest`.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Files or folders (walked recursively; hidden files are skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Base URL of a running thumbfarm API.
    #[arg(
        long,
        env = "THUMBFARM_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
    /// API key (one of the server's `--api-keys`).
    #[arg(long, env = "THUMBFARM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `thumbfarm-api url`.
#[derive(Args, Debug, Clone)]
pub struct UrlArgs {
    /// The asset hash (SHA-1 of the original, 40 lowercase hex characters).
    pub hash: String,
    /// The size name (`fit_720`, `tile_224`, …), `avc` for a video's transcode, or `thumbhash` for the placeholder PNG.
    pub size: String,
    /// A format named in the URL (`jpeg`, `webp`, `avif`: `…/tile_500.webp`); unset: the plain URL.
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub tokens: TokenArgs,
    #[command(flatten)]
    pub sizes: SizeArgs,
    /// Public base URL; unset: a relative URL.
    #[arg(long, env = "THUMBFARM_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cli_parses_subcommands() {
        let cli = Cli::try_parse_from(["x", "url", "abc", "fit_720"]).unwrap();
        assert!(matches!(cli.command, Command::Tool(ToolCommand::Url(_))));
        let cli = Cli::try_parse_from(["x", "ingest", "a", "b", "--api-key", "k"]).unwrap();
        assert!(
            matches!(cli.command, Command::Tool(ToolCommand::Ingest(ref a)) if a.paths.len() == 2)
        );
        assert!(
            Cli::try_parse_from(["x", "ingest", "a"]).is_err()
                || std::env::var("THUMBFARM_API_KEY").is_ok()
        );
    }
}
