//! The `thumbfarm` binary: `serve` runs the API with the worker in-process;
//! the other subcommands are the API's (`ingest`, `url`, `planner`,
//! `backfill`).

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use thumbfarm::{Cli, Command};
use thumbfarm_shared::signals::shutdown_signal;

fn main() -> ExitCode {
    // A decoder child (--isolate-decoders) runs its loop and exits here,
    // before the runtime starts.
    thumbfarm_worker::isolation::run_child_if_asked();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    thumbfarm_api::cli::exit_code(runtime.block_on(run(Cli::parse())))
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
