//! Options of `thumbfarm-api serve` (clap), and the runtime options of the
//! HTTP API ([`ApiOptions`]) built from them.

use super::planner::PlannerTuningArgs;
use super::queue_stats::QueueStatsArgs;
use super::values::{normalize_public_url, parse_seconds};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;
use thumbfarm_shared::config::{
    parse_args, ConfigError, LogArgs, QueueArgs, SizeArgs, StoreArgs, TokenArgs,
};
use thumbfarm_shared::renditions::{parse_format_list, OutputFormat};

/// The default `Cache-Control` of thumbnails: their URLs never change content.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// The default upload limit: 512 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// Whether `serve` runs the ingest planner inside the API process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlannerMode {
    /// On when neither a broker (`--amqp-url`) nor a bucket (`--s3-bucket`) is configured.
    Auto,
    /// Always.
    On,
    /// Never (run `thumbfarm-api planner` separately).
    Off,
}

/// Options of `thumbfarm-api serve` (and of `thumbfarm serve`, which adds
/// the in-process worker's).
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "THUMBFARM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub tokens: TokenArgs,
    #[command(flatten)]
    pub sizes: SizeArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Tuning of the in-process planner (`--planner`).
    #[command(flatten, next_help_heading = "In-process planner")]
    pub planner: PlannerTuningArgs,
}

impl ServeArgs {
    /// Parses serve options from an argument list (without the program name),
    /// with the environment as fallback: handy for tests and embedding.
    pub fn try_from_args<I, T>(args: I) -> Result<ServeArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        parse_args("thumbfarm-api", args)
    }
}

/// The API's own serve options.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// API keys for the preview list and ingest, comma-separated (sent as
    /// `Authorization: Bearer <key>`). Unset: those routes answer 401.
    #[arg(
        long,
        env = "THUMBFARM_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Seconds a thumbnail request waits for an on-demand render before 503.
    #[arg(long, env = "THUMBFARM_WAIT_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub wait_timeout: Duration,
    /// Seconds sent in `Retry-After` with a 503.
    #[arg(long, env = "THUMBFARM_RETRY_AFTER", default_value = "5", value_parser = parse_seconds)]
    pub retry_after: Duration,
    /// How long a video request waits for a missing transcode before it answers 202 (0: never waits).
    #[arg(long, env = "THUMBFARM_VIDEO_WAIT", default_value = "10", value_parser = parse_seconds)]
    pub video_wait: Duration,
    /// Only videos at most this long (seconds, when the duration is known) are waited for.
    #[arg(long, env = "THUMBFARM_VIDEO_WAIT_MAX_DURATION", default_value = "30", value_parser = parse_seconds)]
    pub video_wait_max_duration: Duration,
    /// `Cache-Control` of served thumbnails and videos.
    #[arg(long, env = "THUMBFARM_CACHE_CONTROL", default_value = DEFAULT_CACHE_CONTROL)]
    pub cache_control: String,
    /// Public base URL (`https://thumbs.example.com`) for absolute URLs in
    /// preview lists and `url`; unset: relative URLs.
    #[arg(long, env = "THUMBFARM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest upload accepted by ingest, in bytes (larger: 413).
    #[arg(long, env = "THUMBFARM_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    /// Bytes of hot thumbnails kept in memory per replica (0: no cache).
    #[arg(long, env = "THUMBFARM_CACHE_BYTES", default_value_t = DEFAULT_CACHE_BYTES)]
    pub cache_bytes: u64,
    /// Seconds a cached thumbnail or manifest is served from memory before the store is asked again.
    #[arg(long, env = "THUMBFARM_CACHE_TTL", default_value = "300", value_parser = parse_seconds)]
    pub cache_ttl: Duration,
    /// Run the ingest planner inside the API process: auto (single-machine mode only), on, off.
    #[arg(long, env = "THUMBFARM_PLANNER", value_enum, default_value_t = PlannerMode::Auto)]
    pub planner: PlannerMode,
    /// Serve the status page at `/` and `/api/v1/status` (without an API key
    /// they show queues, rates and hashes only; see --admin-listen).
    #[arg(long, env = "THUMBFARM_STATUS_PAGE", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub status_page: bool,
    /// Operator port for the status page, /api/v1/status and /metrics (e.g. `0.0.0.0:9090`); when set they are no longer served on --listen. Unset: everything on --listen.
    #[arg(long, env = "THUMBFARM_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Formats served, in the order --negotiate-format prefers them (jpeg is always served).
    #[arg(long, env = "THUMBFARM_FORMATS", default_value = "avif,webp,jpeg")]
    pub formats: String,
    /// Pick AVIF or WebP for plain thumbnail URLs from the request's `Accept` header (answers carry `Vary: Accept`; off: plain URLs are JPEG, formats only by extension).
    #[arg(long, env = "THUMBFARM_NEGOTIATE_FORMAT", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub negotiate_format: bool,
    #[command(flatten)]
    pub queue_stats: QueueStatsArgs,
    /// Seconds to finish in-flight requests and jobs after SIGTERM or Ctrl-C.
    #[arg(long, env = "THUMBFARM_SHUTDOWN_GRACE", default_value = "30", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,
}

/// Runtime options of the HTTP API.
#[derive(Clone)]
pub struct ApiOptions {
    /// Accepted API keys (empty: every API-key route answers 401).
    pub api_keys: Vec<String>,
    /// How long a thumbnail request waits for an on-demand render.
    pub wait_timeout: Duration,
    /// `Retry-After` of 503 answers.
    pub retry_after: Duration,
    /// `Cache-Control` of served thumbnails.
    pub cache_control: String,
    /// How long a video request waits for a missing transcode (zero: answers 202 at once).
    pub video_wait: Duration,
    /// Longest video (by known duration) a request waits for.
    pub video_wait_max_duration: Duration,
    /// Base for absolute URLs (normalized, no trailing slash); `None`: relative.
    pub public_url: Option<String>,
    /// Largest upload accepted by ingest.
    pub max_upload_bytes: u64,
    /// Bytes of hot thumbnails kept in memory (0: none).
    pub cache_bytes: u64,
    /// How long a cached entry is served from memory.
    pub cache_ttl: Duration,
    /// Whether `/` and `/api/v1/status` are served.
    pub status_page: bool,
    /// Formats served, in order of preference for negotiation (JPEG always
    /// among them).
    pub formats: Vec<OutputFormat>,
    /// Whether plain thumbnail URLs pick a format from `Accept`.
    pub negotiate_format: bool,
    /// Formats ingest pre-renders (`--pregenerate-formats`, JPEG first).
    pub pregenerate_formats: Vec<OutputFormat>,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field(
                "api_keys",
                &format_args!("<{} redacted>", self.api_keys.len()),
            )
            .field("wait_timeout", &self.wait_timeout)
            .field("retry_after", &self.retry_after)
            .field("cache_control", &self.cache_control)
            .field("video_wait", &self.video_wait)
            .field("video_wait_max_duration", &self.video_wait_max_duration)
            .field("public_url", &self.public_url)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("cache_bytes", &self.cache_bytes)
            .field("cache_ttl", &self.cache_ttl)
            .field("status_page", &self.status_page)
            .field("formats", &self.formats)
            .field("negotiate_format", &self.negotiate_format)
            .field("pregenerate_formats", &self.pregenerate_formats)
            .finish()
    }
}

/// Default bytes of the in-memory thumbnail cache (256 MiB).
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            api_keys: Vec::new(),
            wait_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(5),
            cache_control: DEFAULT_CACHE_CONTROL.to_string(),
            video_wait: Duration::from_secs(10),
            video_wait_max_duration: Duration::from_secs(30),
            public_url: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            cache_ttl: Duration::from_secs(300),
            status_page: true,
            formats: OutputFormat::ALL.to_vec(),
            negotiate_format: false,
            pregenerate_formats: vec![OutputFormat::Jpeg],
        }
    }
}

impl ApiArgs {
    /// The validated runtime options.
    pub fn options(&self) -> Result<ApiOptions, ConfigError> {
        let err = |option, message: String| ConfigError::new(option, message);
        let public_url = self
            .public_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(normalize_public_url)
            .transpose()
            .map_err(|m| err("--public-url", m))?;
        axum::http::HeaderValue::from_str(&self.cache_control)
            .map_err(|_| err("--cache-control", "not a valid header value".into()))?;
        let api_keys: Vec<String> = self
            .api_keys
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        if api_keys.iter().any(|k| k.len() < 16) {
            return Err(err(
                "--api-keys",
                "every key must be at least 16 characters".into(),
            ));
        }
        if self.wait_timeout.is_zero() {
            return Err(err("--wait-timeout", "must be more than 0".into()));
        }
        if self.max_upload_bytes == 0 {
            return Err(err("--max-upload-bytes", "must be more than 0".into()));
        }
        let mut formats =
            parse_format_list(&self.formats).map_err(|e| err("--formats", e.to_string()))?;
        if !formats.contains(&OutputFormat::Jpeg) {
            formats.push(OutputFormat::Jpeg);
        }
        Ok(ApiOptions {
            api_keys,
            wait_timeout: self.wait_timeout,
            retry_after: self.retry_after.max(Duration::from_secs(1)),
            cache_control: self.cache_control.clone(),
            video_wait: self.video_wait,
            video_wait_max_duration: self.video_wait_max_duration,
            public_url,
            max_upload_bytes: self.max_upload_bytes,
            cache_bytes: self.cache_bytes,
            cache_ttl: self.cache_ttl,
            status_page: self.status_page,
            formats,
            negotiate_format: self.negotiate_format,
            pregenerate_formats: vec![OutputFormat::Jpeg],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_defaults() {
        let args = ServeArgs::try_from_args(Vec::<String>::new()).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        let o = args.api.options().unwrap();
        assert_eq!(o.wait_timeout, Duration::from_secs(10));
        assert_eq!(o.cache_control, DEFAULT_CACHE_CONTROL);
        assert_eq!(o.max_upload_bytes, 512 * 1024 * 1024);
        assert_eq!(args.api.planner, PlannerMode::Auto);
    }

    #[test]
    fn bad_options_are_named() {
        let args = ServeArgs::try_from_args(["--public-url", "ftp://x"]).unwrap();
        assert_eq!(args.api.options().unwrap_err().option, "--public-url");
        let args = ServeArgs::try_from_args(["--api-keys", "short"]).unwrap();
        assert_eq!(args.api.options().unwrap_err().option, "--api-keys");
        assert!(ServeArgs::try_from_args(["--wait-timeout", "soon"]).is_err());
        let args = ServeArgs::try_from_args([
            "--public-url",
            "https://t.example/",
            "--wait-timeout",
            "0.25",
        ])
        .unwrap();
        let o = args.api.options().unwrap();
        assert_eq!(o.public_url.as_deref(), Some("https://t.example"));
        assert_eq!(o.wait_timeout, Duration::from_millis(250));
    }
}
