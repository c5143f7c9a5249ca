//! The `thumbfarm-api` binary: the HTTP API and its tools, without any
//! decoder (single-machine mode is the `thumbfarm` binary).

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use thumbfarm_api::cli;
use thumbfarm_api::config::{Cli, Command};
use thumbfarm_shared::signals::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    thumbfarm_api::cli::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            args.log.init();
            thumbfarm_api::serve(&args, shutdown_signal())
                .await
                .context("thumbfarm-api serve")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tool(tool) => cli::run_tool(tool).await,
    }
}
