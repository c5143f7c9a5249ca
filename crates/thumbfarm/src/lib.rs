//! thumbfarm on one machine: the composition of the API (`thumbfarm-api`,
//! which never decodes) and the worker (`thumbfarm-worker`, which has every
//! decoder) in one process.
//!
//! With neither a broker nor a bucket configured, `thumbfarm serve` runs the
//! API over the in-process queue and the local directory store, and the
//! worker's intake loop beside it as a [`Sidecar`]: the same code paths as a
//! cluster, only the `Queue` and `Store` implementations differ.
//!
//! Why a binary crate and not a feature of `thumbfarm-api`: Cargo unifies
//! features across a workspace build, so a default-on `single-machine`
//! feature would make every `cargo build` of the workspace link the
//! decoders into `thumbfarm-api` again, and `cargo tree -p thumbfarm-api`
//! would show them. A separate crate keeps the API's dependency graph
//! decoder-free by construction (`tests/architecture.rs` checks it).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;
use thumbfarm_api::config::{ServeArgs, ToolCommand};
use thumbfarm_api::{ServeError, Server, Sidecar};
use thumbfarm_shared::config::{parse_args, ConfigError};
use thumbfarm_worker::config::{ConsumerArgs, RenderArgs};
use thumbfarm_worker::{intake, WorkerOptions};

/// thumbfarm on one machine: the API with the worker in-process.
#[derive(Parser, Debug)]
#[command(name = "thumbfarm", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands: `serve` with the worker in-process, and the API's tools.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API and run the worker in-process (single-machine mode).
    Serve(Box<SingleMachineArgs>),
    /// The API's other subcommands.
    #[command(flatten)]
    Tool(ToolCommand),
}

/// Whether `serve` runs the worker in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InProcessWorker {
    /// On when neither a broker (`--amqp-url`) nor a bucket (`--s3-bucket`) is configured.
    Auto,
    /// Always.
    On,
    /// Never (jobs wait for separate worker processes).
    Off,
}

/// Options of `thumbfarm serve`: the API's, and the in-process worker's.
#[derive(Args, Debug, Clone)]
pub struct SingleMachineArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Run the worker inside this process: auto (single-machine mode only), on, off.
    #[arg(long, env = "THUMBFARM_IN_PROCESS_WORKER", value_enum, default_value_t = InProcessWorker::Auto)]
    pub in_process_worker: InProcessWorker,
    /// Encoder settings of the in-process worker (the worker binary's flags).
    #[command(flatten, next_help_heading = "In-process worker")]
    pub render: RenderArgs,
    /// Job intake of the in-process worker (the worker binary's flags).
    #[command(flatten, next_help_heading = "In-process worker")]
    pub consumer: ConsumerArgs,
}

impl SingleMachineArgs {
    /// Parses options from an argument list (without the program name),
    /// with the environment as fallback: handy for tests and embedding.
    pub fn try_from_args<I, T>(args: I) -> Result<SingleMachineArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        parse_args("thumbfarm", args)
    }

    /// Whether the worker runs in-process for these options.
    pub fn runs_worker(&self) -> bool {
        match self.in_process_worker {
            InProcessWorker::On => true,
            InProcessWorker::Off => false,
            InProcessWorker::Auto => thumbfarm_api::server::single_machine(&self.serve),
        }
    }

    /// The in-process worker's options.
    pub fn worker_options(&self) -> Result<WorkerOptions, ConfigError> {
        let render = self.render.options()?;
        let layout = self.serve.store.layout()?;
        let mut opts = self
            .consumer
            .options(render, layout, self.serve.sizes.limits())?;
        opts.delivery_limit = self.serve.queue.delivery_limit;
        Ok(opts)
    }
}

/// The worker's intake loop as a sidecar of the API server.
pub fn worker_sidecar(opts: WorkerOptions) -> Sidecar {
    let grace = Duration::from_secs(opts.grace_seconds);
    Sidecar {
        name: "in-process worker",
        grace,
        start: Box::new(move |store, queue, stop| {
            Box::pin(async move {
                intake::run(opts, store, queue, stop.cancelled_owned())
                    .await
                    .map_err(Into::into)
            })
        }),
    }
}

/// Binds the API and attaches the in-process worker when it runs.
pub async fn bind(args: &SingleMachineArgs) -> Result<Server, ServeError> {
    let worker = args
        .runs_worker()
        .then(|| args.worker_options())
        .transpose()?;
    let server = Server::bind(&args.serve).await?;
    Ok(match worker {
        Some(opts) => server.with_sidecar(worker_sidecar(opts)),
        None => server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_machine_defaults_run_the_worker() {
        let args = SingleMachineArgs::try_from_args(Vec::<String>::new()).unwrap();
        assert!(args.runs_worker());
        let args = SingleMachineArgs::try_from_args(["--amqp-url", "amqp://x"]).unwrap();
        assert!(!args.runs_worker());
        let args = SingleMachineArgs::try_from_args([
            "--amqp-url",
            "amqp://x",
            "--in-process-worker",
            "on",
        ])
        .unwrap();
        assert!(args.runs_worker());
        let args = SingleMachineArgs::try_from_args(["--prefetch", "0"]).unwrap();
        assert!(args
            .worker_options()
            .unwrap_err()
            .to_string()
            .contains("--prefetch"));
    }
}
