//! The `thumbfarm` binary: `serve` runs the API with the worker in-process;
//! the other subcommands are the API's (`ingest`, `url`, `planner`,
//! `backfill`).

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use thumbfarm::{Cli, Command};
use thumbfarm_shared::signals::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    thumbfarm_api::cli::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            args.serve.log.init();
            thumbfarm::bind(&args)
                .await
                .context("thumbfarm serve")?
                .run(shutdown_signal())
                .await
                .context("thumbfarm serve")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tool(tool) => thumbfarm_api::cli::run_tool(tool).await,
    }
}
