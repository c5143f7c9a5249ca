//! Configuration shared by the binaries: every option is a CLI flag and a
//! `THUMBFARM_*` environment variable (clap), validated at start with a
//! message that names the bad option.

use crate::keys::KeyLayout;
use crate::queue::{AmqpQueue, AmqpSettings, MemoryQueue, Queue};
use crate::renditions::{parse_format_list, OutputFormat};
use crate::sizes::SizeLimits;
use crate::store::{LocalStore, S3Settings, S3Store, Store};
use crate::tokens::{SigningKey, TokenMode, TokenPolicy};
use std::path::PathBuf;
use std::sync::Arc;

/// Parses one group of options (a `#[derive(clap::Args)]` struct) from an
/// argument list without the program name, with the environment as
/// fallback: for tests and for embedding a command in another program.
pub fn parse_args<T, I, A>(program: &'static str, args: I) -> Result<T, clap::Error>
where
    T: clap::Args + clap::FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let command = T::augment_args(clap::Command::new(program));
    let argv =
        std::iter::once(std::ffi::OsString::from(program)).chain(args.into_iter().map(Into::into));
    let matches = command.try_get_matches_from(argv)?;
    T::from_arg_matches(&matches)
}

/// A configuration value that cannot work, naming the option.
#[derive(Debug, thiserror::Error)]
#[error("invalid option {option}: {message}")]
pub struct ConfigError {
    /// The flag, e.g. `--s3-bucket`.
    pub option: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `option`.
    pub fn new(option: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            option,
            message: message.into(),
        }
    }
}

/// Where objects are stored.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// S3 bucket for thumbnails, videos, manifests and uploaded originals. Unset: the local directory store.
    #[arg(long, env = "THUMBFARM_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL for MinIO, Garage, Ceph and other S3 servers (unset: AWS).
    #[arg(long, env = "THUMBFARM_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "THUMBFARM_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-host style.
    #[arg(long, env = "THUMBFARM_S3_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: bool,
    /// Create the bucket at start when it does not exist.
    #[arg(long, env = "THUMBFARM_S3_CREATE_BUCKET", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub s3_create_bucket: bool,
    /// Local directory store, used when no S3 bucket is set.
    #[arg(long, env = "THUMBFARM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Hash-prefix folders in keys (1 to 4): `thumbs/e/c/9/…` is 3.
    #[arg(long, env = "THUMBFARM_PREFIX_DEPTH", default_value_t = 3)]
    pub prefix_depth: u8,
}

impl StoreArgs {
    /// The key layout, validated.
    pub fn layout(&self) -> Result<KeyLayout, ConfigError> {
        KeyLayout::new(self.prefix_depth)
            .map_err(|e| ConfigError::new("--prefix-depth", e.to_string()))
    }

    /// Whether an S3 bucket is configured.
    pub fn uses_s3(&self) -> bool {
        self.s3_bucket.as_deref().is_some_and(|b| !b.is_empty())
    }

    /// Opens the configured store.
    pub async fn open(&self) -> Result<Arc<dyn Store>, ConfigError> {
        self.layout()?;
        match self.s3_bucket.as_deref().filter(|b| !b.is_empty()) {
            Some(bucket) => {
                if let Some(ep) = &self.s3_endpoint {
                    if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                        return Err(ConfigError::new(
                            "--s3-endpoint",
                            "must start with http:// or https://",
                        ));
                    }
                }
                let settings = S3Settings {
                    bucket: bucket.to_string(),
                    endpoint: self.s3_endpoint.clone(),
                    region: self.s3_region.clone(),
                    path_style: self.s3_path_style,
                    create_bucket: self.s3_create_bucket,
                };
                let store = S3Store::connect(settings)
                    .await
                    .map_err(|e| ConfigError::new("--s3-bucket", e.to_string()))?;
                Ok(Arc::new(store))
            }
            None => {
                let store = LocalStore::open(&self.data_dir)
                    .map_err(|e| ConfigError::new("--data-dir", e.to_string()))?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// Where messages go.
#[derive(clap::Args, Debug, Clone)]
pub struct QueueArgs {
    /// AMQP URL of RabbitMQ (amqp://user:pass@host:5672/vhost). Unset: the in-process queue.
    #[arg(long, env = "THUMBFARM_AMQP_URL")]
    pub amqp_url: Option<String>,
    /// Times one message may be given back to its queue (retried) before it is dead-lettered.
    #[arg(long, env = "THUMBFARM_DELIVERY_LIMIT", default_value_t = 5)]
    pub delivery_limit: u32,
}

impl QueueArgs {
    /// Whether a broker is configured.
    pub fn uses_amqp(&self) -> bool {
        self.amqp_url.as_deref().is_some_and(|u| !u.is_empty())
    }

    /// Connects to the broker (declaring the topology) or makes an in-process queue.
    pub async fn open(&self) -> Result<Arc<dyn Queue>, ConfigError> {
        if !(1..=100).contains(&self.delivery_limit) {
            return Err(ConfigError::new(
                "--delivery-limit",
                "must be between 1 and 100",
            ));
        }
        match self.amqp_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                    return Err(ConfigError::new(
                        "--amqp-url",
                        "must start with amqp:// or amqps://",
                    ));
                }
                let settings = AmqpSettings {
                    url: url.to_string(),
                    delivery_limit: self.delivery_limit,
                };
                let queue = AmqpQueue::connect(settings)
                    .await
                    .map_err(|e| ConfigError::new("--amqp-url", e.to_string()))?;
                Ok(Arc::new(queue))
            }
            None => Ok(Arc::new(MemoryQueue::new(self.delivery_limit))),
        }
    }
}

/// How URL tokens work.
#[derive(clap::Args, Debug, Clone)]
pub struct TokenArgs {
    /// Token mode: public, preview-token or signed.
    #[arg(long, env = "THUMBFARM_TOKEN_MODE", value_enum, default_value_t = TokenMode::Public)]
    pub token_mode: TokenMode,
    /// Preview tokens, comma-separated; the first is current, the rest still accepted (rotation).
    #[arg(
        long,
        env = "THUMBFARM_PREVIEW_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub preview_tokens: Vec<String>,
    /// Signing keys `id:secret`, comma-separated; the first signs, all verify (rotation).
    #[arg(
        long,
        env = "THUMBFARM_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub signing_keys: Vec<String>,
}

impl TokenArgs {
    /// The validated policy.
    pub fn policy(&self) -> Result<TokenPolicy, ConfigError> {
        let keys = self
            .signing_keys
            .iter()
            .filter(|k| !k.trim().is_empty())
            .map(|k| k.parse::<SigningKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::new("--signing-keys", e.to_string()))?;
        let tokens: Vec<String> = self
            .preview_tokens
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        TokenPolicy::from_config(self.token_mode, &tokens, &keys).map_err(|e| {
            let option = match self.token_mode {
                TokenMode::Signed => "--signing-keys",
                _ => "--preview-tokens",
            };
            ConfigError::new(option, e.to_string())
        })
    }
}

/// Size limits (docs/contracts.md §2).
#[derive(clap::Args, Debug, Clone)]
pub struct SizeArgs {
    /// Largest box side pre-generated at ingest (clamped to 720..7680).
    #[arg(long, env = "THUMBFARM_STATIC_SIZE_LIMIT", default_value_t = crate::sizes::DEFAULT_STATIC_LIMIT)]
    pub static_size_limit: u32,
    /// Largest box side rendered on request (clamped to static..7680).
    #[arg(long, env = "THUMBFARM_DYNAMIC_SIZE_LIMIT", default_value_t = crate::sizes::DEFAULT_DYNAMIC_LIMIT)]
    pub dynamic_size_limit: u32,
    /// Formats ingest and backfill pre-render, comma-separated: jpeg[,webp[,avif]] (JPEG always; others are rendered on request otherwise).
    #[arg(long, env = "THUMBFARM_PREGENERATE_FORMATS", default_value = "jpeg")]
    pub pregenerate_formats: String,
}

impl SizeArgs {
    /// The clamped limits.
    pub fn limits(&self) -> SizeLimits {
        SizeLimits::new(self.static_size_limit, self.dynamic_size_limit)
    }

    /// The pre-generated formats, JPEG first.
    pub fn pregenerate_formats(&self) -> Result<Vec<OutputFormat>, ConfigError> {
        let mut formats = parse_format_list(&self.pregenerate_formats)
            .map_err(|e| ConfigError::new("--pregenerate-formats", e.to_string()))?;
        formats.retain(|f| *f != OutputFormat::Jpeg);
        formats.insert(0, OutputFormat::Jpeg);
        Ok(formats)
    }
}

/// Log output.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Log filter, as RUST_LOG (e.g. `info`, `thumbfarm_worker=debug`).
    #[arg(long, env = "THUMBFARM_LOG", default_value = "info")]
    pub log: String,
    /// Log format: text or json.
    #[arg(long, env = "THUMBFARM_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl LogArgs {
    /// Installs the global tracing subscriber (once; later calls do nothing).
    pub fn init(&self) {
        use tracing_subscriber::EnvFilter;
        let mut filter = EnvFilter::try_new(&self.log).unwrap_or_else(|_| EnvFilter::new("info"));
        // lapin logs every channel the broker closes as an error; a refused
        // claim (`Queue::claim`) closes one by design, and the adapter
        // reports the channel failures that matter itself.
        if !self.log.contains("lapin") {
            if let Ok(quiet) = "lapin::channel=off".parse() {
                filter = filter.add_directive(quiet);
            }
        }
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = if self.log_format == "json" {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        queue: QueueArgs,
        #[command(flatten)]
        tokens: TokenArgs,
        #[command(flatten)]
        sizes: SizeArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_single_machine() {
        let cli = parse(&[]);
        assert!(!cli.store.uses_s3() && !cli.queue.uses_amqp());
        assert_eq!(cli.store.layout().unwrap().depth(), 3);
        assert_eq!(cli.tokens.policy().unwrap(), TokenPolicy::Public);
        assert_eq!(cli.sizes.limits(), SizeLimits::default());
    }

    #[test]
    fn bad_options_are_named() {
        let e = parse(&["--prefix-depth", "7"]).store.layout().unwrap_err();
        assert_eq!(e.option, "--prefix-depth");
        assert!(e.to_string().contains("--prefix-depth"));
        let e = parse(&["--token-mode", "signed"])
            .tokens
            .policy()
            .unwrap_err();
        assert_eq!(e.option, "--signing-keys");
        let e = parse(&["--token-mode", "signed", "--signing-keys", "k1:short"])
            .tokens
            .policy()
            .unwrap_err();
        assert!(e.message.contains("shorter"), "{e}");
        let e = parse(&["--token-mode", "preview-token"])
            .tokens
            .policy()
            .unwrap_err();
        assert_eq!(e.option, "--preview-tokens");
        assert!(Cli::try_parse_from(["x", "--token-mode", "open"]).is_err());
        assert!(Cli::try_parse_from(["x", "--static-size-limit", "-1"]).is_err());
    }

    #[test]
    fn lists_split_on_commas() {
        let cli = parse(&[
            "--token-mode",
            "preview-token",
            "--preview-tokens",
            "new1,old1",
        ]);
        assert_eq!(
            cli.tokens.policy().unwrap(),
            TokenPolicy::PreviewTokens(vec!["new1".into(), "old1".into()])
        );
        let cli = parse(&["--s3-path-style", "--s3-bucket", "b"]);
        assert!(cli.store.s3_path_style && cli.store.uses_s3());
    }

    #[tokio::test]
    async fn bad_urls_are_named() {
        let cli = parse(&["--amqp-url", "http://x"]);
        assert_eq!(
            cli.queue.open().await.err().map(|e| e.option),
            Some("--amqp-url")
        );
        let cli = parse(&["--s3-bucket", "b", "--s3-endpoint", "ftp://x"]);
        assert_eq!(
            cli.store.open().await.err().map(|e| e.option),
            Some("--s3-endpoint")
        );
    }
}
