//! `thumbfarm-worker`: consumes jobs (`run`, the default), or renders or
//! transcodes one file for debugging and benchmarks (`render`, `transcode`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;
use thumbfarm_shared::Rendition;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use thumbfarm_shared::config::{LogArgs, QueueArgs, SizeArgs, StoreArgs};
use thumbfarm_shared::signals::shutdown_signal;
use thumbfarm_shared::sizes::parse_size_list;
use thumbfarm_shared::stdout::print_line;
use thumbfarm_worker::config::{ConsumerArgs, RenderArgs, VideoArgs};
use thumbfarm_worker::isolation::work;
use thumbfarm_worker::{intake, metrics};

#[derive(Parser, Debug)]
#[command(name = "thumbfarm-worker", version, about = "thumbfarm render worker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Consume jobs from the queue (the default).
    Run(Box<RunArgs>),
    /// Render one file into a directory and print each output's size and time.
    Render(RenderCmd),
    /// Transcode (or remux) one video to an AVC MP4 and print what was done.
    Transcode(TranscodeCmd),
}

#[derive(clap::Args, Debug)]
struct TranscodeCmd {
    /// The video to transcode.
    #[arg(long)]
    source: PathBuf,
    /// The MP4 to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    video: VideoArgs,
}

#[derive(Parser, Debug)]
#[command(name = "thumbfarm-worker")]
struct RunArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    queue: QueueArgs,
    #[command(flatten)]
    sizes: SizeArgs,
    #[command(flatten)]
    render: RenderArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// Address of the /metrics and /healthz endpoint.
    #[arg(long, env = "THUMBFARM_METRICS_LISTEN", default_value = "0.0.0.0:9091")]
    metrics_listen: SocketAddr,
}

#[derive(clap::Args, Debug)]
struct RenderCmd {
    /// The original to render; repeat it to render several in one process
    /// (with `--isolate`, one warm child renders them all, as in the worker).
    #[arg(long, required = true)]
    source: Vec<PathBuf>,
    /// Sizes: a comma-separated list, `all` or `pregenerated`.
    #[arg(long, default_value = "pregenerated")]
    sizes: String,
    /// Formats to encode each size in: comma-separated jpeg, webp, avif.
    #[arg(long, default_value = "jpeg")]
    formats: String,
    /// Directory for the outputs (created).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    limits: SizeArgs,
    #[command(flatten)]
    render: RenderArgs,
    /// Decode in a supervised child process, as `run` does by default
    /// (`--isolate-decoders`), to measure what isolation costs.
    #[arg(long)]
    isolate: bool,
}

fn main() -> anyhow::Result<()> {
    // A decoder child (--isolate-decoders) runs its loop and exits here,
    // before any runtime or logging starts.
    thumbfarm_worker::isolation::run_child_if_asked();
    let cli = Cli::parse();
    cli.log.init();
    // The one-off tools need no async runtime (nor its threads).
    let args = match cli.command {
        Some(Command::Render(cmd)) => return render_once(cmd),
        Some(Command::Transcode(cmd)) => return transcode_once(cmd),
        Some(Command::Run(args)) => *args,
        None => RunArgs::try_parse_from(std::env::args().take(1))?,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(args))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let render = args.render.options()?;
    let layout = args.store.layout()?;
    let mut opts = args.consumer.options(render, layout, args.sizes.limits())?;
    opts.delivery_limit = args.queue.delivery_limit;
    let store = args.store.open().await?;
    let queue = args.queue.open().await?;
    if !args.queue.uses_amqp() {
        bail!("the worker needs a broker: set --amqp-url / THUMBFARM_AMQP_URL (single-machine mode runs the worker inside thumbfarm-api)");
    }
    let addr = args.metrics_listen;
    tokio::spawn(async move {
        if let Err(e) = metrics::serve(addr).await {
            tracing::error!(%addr, error = %e, "metrics endpoint failed");
        }
    });
    intake::run(opts, store, queue, shutdown_signal()).await
}

fn render_once(cmd: RenderCmd) -> anyhow::Result<()> {
    let limits = cmd.limits.limits();
    let formats = thumbfarm_shared::renditions::parse_format_list(&cmd.formats)?;
    let sizes: Vec<Rendition> = parse_size_list(&cmd.sizes, &limits)?
        .into_iter()
        .flat_map(|s| Rendition::of(s, &formats))
        .collect();
    let opts = cmd.render.options()?;
    let video = thumbfarm_worker::video::VideoOptions::default();
    let mut hashes = Vec::with_capacity(cmd.source.len());
    for source in &cmd.source {
        let data =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        hashes.push(thumbfarm_shared::AssetHash::of_bytes(&data));
    }
    std::fs::create_dir_all(&cmd.out).with_context(|| format!("creating {}", cmd.out.display()))?;
    let children = if cmd.isolate {
        use thumbfarm_worker::isolation::{DecoderChildren, IsolationLimits};
        let limits = IsolationLimits {
            memory_bytes: IsolationLimits::memory_for(opts.max_pixels),
            timeout: std::time::Duration::from_secs(120),
        };
        let children = DecoderChildren::of_current_exe(limits, limits)?;
        // Started before the clock, as the worker's pool starts its children
        // before the first job: `total` is the work, as in process.
        children.warm_up(1).context("starting a decoder child")?;
        Some(children)
    } else {
        None
    };
    let started = Instant::now();
    for (source, hash) in cmd.source.iter().zip(hashes) {
        let rendered = match &children {
            Some(children) => children.render_original(source, &sizes, None, &opts, &video),
            None => work::render_original(source, &sizes, None, &opts, &video),
        }
        .with_context(|| format!("rendering {}", source.display()))?;
        let result = rendered.result;
        print_line(&format!(
            "{}  {}x{}  {}  decode {:.1} ms",
            hash, result.width, result.height, result.media_type, result.decode_millis
        ))?;
        for out in &result.outputs {
            let name = out.rendition().file_name(hash.as_str());
            std::fs::write(cmd.out.join(&name), &out.bytes)
                .with_context(|| format!("writing {name}"))?;
            print_line(&format!(
                "{name}  {}x{}  {:.1} ms  {} bytes",
                out.width,
                out.height,
                out.millis,
                out.bytes.len()
            ))?;
        }
    }
    print_line(&format!(
        "total {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ))?;
    Ok(())
}

fn transcode_once(cmd: TranscodeCmd) -> anyhow::Result<()> {
    let opts = cmd.video.options()?;
    let deadline = Instant::now() + opts.timeout;
    let result = thumbfarm_worker::video::transcode_file(
        &cmd.source,
        &cmd.out,
        &opts,
        deadline,
        &mut |_| {},
    )
    .with_context(|| format!("transcoding {}", cmd.source.display()))?;
    print_line(&format!(
        "{}  path {}  encoder {}  {}x{}  {:.3} s media  {:.3} s wall  speed {:.2}x  {} bytes{}",
        cmd.out.display(),
        result.path.as_str(),
        result.encoder.as_deref().unwrap_or("-"),
        result.width,
        result.height,
        result.media_seconds,
        result.wall_seconds,
        result.speed(),
        result.bytes,
        result
            .transcode_reason
            .as_deref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    ))?;
    Ok(())
}
