//! The `thumbfarm-api` binary.

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use thumbfarm_api::cli;
use thumbfarm_api::config::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            args.log.init();
            thumbfarm_api::serve(&args, thumbfarm_api::shutdown_signal())
                .await
                .context("thumbfarm-api serve")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(args) => {
            let summary = cli::ingest::run(&args).await;
            print!("{summary}");
            Ok(if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Planner(args) => {
            args.log.init();
            thumbfarm_api::ingest_events::run_standalone(&args, thumbfarm_api::shutdown_signal())
                .await
                .context("thumbfarm-api planner")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill(args) => {
            args.log.init();
            let report = thumbfarm_api::backfill::run_cli(&args)
                .await
                .context("thumbfarm-api backfill")?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Url(args) => {
            let url = cli::url::url_for(&args)?;
            println!("{url}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
