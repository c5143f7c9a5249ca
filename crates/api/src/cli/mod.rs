//! The command line of `thumbfarm-api`: the client subcommands (`ingest`,
//! `url`), the one-shot `backfill` and the `planner` process. `serve` is
//! [`crate::server`].

pub mod backfill;
pub mod ingest;
pub mod planner;
pub mod url;

use crate::config::ToolCommand;
use std::process::ExitCode;
use thumbfarm_shared::stdout::{print, print_line};

/// The exit code of a command: its own, or failure after printing the error
/// chain to stderr.
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Runs one of the subcommands besides `serve`.
pub async fn run_tool(command: ToolCommand) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    match command {
        ToolCommand::Ingest(args) => {
            let summary = ingest::run(&args).await;
            print(&summary.to_string())?;
            Ok(if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ToolCommand::Planner(args) => {
            args.log.init();
            planner::run(&args, thumbfarm_shared::signals::shutdown_signal())
                .await
                .context("thumbfarm-api planner")?;
            Ok(ExitCode::SUCCESS)
        }
        ToolCommand::Backfill(args) => {
            args.log.init();
            let report = backfill::run(&args)
                .await
                .context("thumbfarm-api backfill")?;
            print(&report.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        ToolCommand::Url(args) => {
            print_line(&url::url_for(&args)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
