//! Worker options as command-line flags and `THUMBFARM_*` variables.

use crate::options::{JobKind, WorkerOptions};
use crate::render::{RenderOptions, DEFAULT_AVIF_QUALITY, DEFAULT_WEBP_QUALITY};
use crate::video::VideoOptions;
use std::time::Duration;
use thumbfarm_shared::config::ConfigError;
use thumbfarm_shared::{KeyLayout, SizeLimits};

/// Encoder settings and limits against hostile input.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// JPEG quality of boxes above 150 px.
    #[arg(long, env = "THUMBFARM_JPEG_QUALITY", default_value_t = 83)]
    pub jpeg_quality: u8,
    /// JPEG quality of boxes of 150 px and below.
    #[arg(long, env = "THUMBFARM_JPEG_QUALITY_SMALL", default_value_t = 78)]
    pub jpeg_quality_small: u8,
    /// WebP quality (1-100; the default matches the JPEG's DSSIM on photos).
    #[arg(long, env = "THUMBFARM_WEBP_QUALITY", default_value_t = DEFAULT_WEBP_QUALITY)]
    pub webp_quality: u8,
    /// AVIF quality (1-100; the default matches the JPEG's DSSIM on photos).
    #[arg(long, env = "THUMBFARM_AVIF_QUALITY", default_value_t = DEFAULT_AVIF_QUALITY)]
    pub avif_quality: u8,
    /// AVIF encoder speed (libaom, 0 slowest/smallest .. 9 fastest).
    #[arg(long, env = "THUMBFARM_AVIF_SPEED", default_value_t = 8)]
    pub avif_speed: u8,
    /// Largest original, in pixels (width × height).
    #[arg(long, env = "THUMBFARM_MAX_PIXELS", default_value_t = 100_000_000)]
    pub max_pixels: u64,
    /// Largest original file, in bytes.
    #[arg(long, env = "THUMBFARM_MAX_FILE_SIZE", default_value_t = 512 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Largest width or height of an original, in pixels.
    #[arg(long, env = "THUMBFARM_MAX_DIMENSION", default_value_t = 65_535)]
    pub max_dimension: u32,
}

impl RenderArgs {
    /// Validated render options.
    pub fn options(&self) -> Result<RenderOptions, ConfigError> {
        for (option, q) in [
            ("--jpeg-quality", self.jpeg_quality),
            ("--jpeg-quality-small", self.jpeg_quality_small),
            ("--webp-quality", self.webp_quality),
            ("--avif-quality", self.avif_quality),
        ] {
            if !(1..=100).contains(&q) {
                return Err(ConfigError::new(option, "must be between 1 and 100"));
            }
        }
        if self.avif_speed > 9 {
            return Err(ConfigError::new("--avif-speed", "must be between 0 and 9"));
        }
        if self.max_pixels == 0 {
            return Err(ConfigError::new("--max-pixels", "must be above 0"));
        }
        if self.max_file_size == 0 {
            return Err(ConfigError::new("--max-file-size", "must be above 0"));
        }
        if self.max_dimension == 0 {
            return Err(ConfigError::new("--max-dimension", "must be above 0"));
        }
        Ok(RenderOptions {
            jpeg_quality: self.jpeg_quality,
            jpeg_quality_small: self.jpeg_quality_small,
            webp_quality: self.webp_quality,
            webp_method: RenderOptions::default().webp_method,
            avif_quality: self.avif_quality,
            avif_speed: self.avif_speed,
            encode_threads: 1,
            max_pixels: self.max_pixels,
            max_file_size: self.max_file_size,
            max_dimension: self.max_dimension,
        })
    }
}

/// How the worker takes jobs.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumerArgs {
    /// Jobs worked on at once (0: one per core).
    #[arg(long, env = "THUMBFARM_CONCURRENCY", default_value_t = 0)]
    pub concurrency: usize,
    /// Unsettled deliveries per queue held by this worker; never fewer than --concurrency (a job in progress is unsettled, so fewer would leave job slots idle during a backfill).
    #[arg(long, env = "THUMBFARM_PREFETCH", default_value_t = 2)]
    pub prefetch: u16,
    /// Seconds to finish the jobs in hand after SIGTERM.
    #[arg(long, env = "THUMBFARM_GRACE_SECONDS", default_value_t = 60)]
    pub grace_seconds: u64,
    /// How long a job keeps retrying a store or broker that is unavailable before giving it back to the queue.
    #[arg(long, env = "THUMBFARM_TRANSIENT_RETRY_SECONDS", default_value_t = 300)]
    pub transient_retry_seconds: u64,
    /// Job queues to consume: render (on-demand ahead of bulk), transcode, or both (comma-separated).
    #[arg(
        long,
        env = "THUMBFARM_QUEUES",
        value_enum,
        value_delimiter = ',',
        default_value = "render,transcode"
    )]
    pub queues: Vec<JobKind>,
    /// Decode in supervised child processes (renders, posters and transcodes; a crashing decoder then fails one job, not the worker), with no credentials and the limits below. `false` decodes in the worker's own process.
    #[arg(long, env = "THUMBFARM_ISOLATE_DECODERS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub isolate_decoders: bool,
    /// Address-space limit of a decoder child, in bytes (0: 1 GiB plus 16 bytes per --max-pixels pixel, and for transcodes 32 MiB more per core for FFmpeg's threads). Transcodes on a hardware encoder (--video-encoder other than libx264) run without one: the GPU driver reserves large address ranges.
    #[arg(long, env = "THUMBFARM_JOB_MEMORY_LIMIT", default_value_t = 0)]
    pub job_memory_limit: u64,
    /// Wall-clock limit of one image decode-and-render in a decoder child, in seconds.
    #[arg(long, env = "THUMBFARM_JOB_TIMEOUT", default_value_t = 120)]
    pub job_timeout: u64,
    #[command(flatten)]
    pub video: VideoArgs,
}

/// Video transcode settings and limits against hostile input.
#[derive(clap::Args, Debug, Clone)]
pub struct VideoArgs {
    /// H.264 encoder: libx264, h264_nvenc, h264_qsv or h264_vaapi. One that cannot be opened (no device) falls back to libx264.
    #[arg(long, env = "THUMBFARM_VIDEO_ENCODER", default_value = "libx264")]
    pub video_encoder: String,
    /// Constant rate factor of the encode (libx264 crf; the constant-quality value of the hardware encoders), 0..51.
    #[arg(long, env = "THUMBFARM_VIDEO_CRF", default_value_t = 23)]
    pub video_crf: u8,
    /// libx264 preset (ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow).
    #[arg(long, env = "THUMBFARM_VIDEO_PRESET", default_value = "fast")]
    pub video_preset: String,
    /// Longest side of a transcode in pixels; larger videos are scaled down.
    #[arg(long, env = "THUMBFARM_VIDEO_MAX_SIZE", default_value_t = 4096)]
    pub video_max_size: u32,
    /// H.264 MP4 sources above this bitrate (bit/s) are re-encoded instead of remuxed (0: no limit).
    #[arg(
        long,
        env = "THUMBFARM_VIDEO_MAX_REMUX_BITRATE",
        default_value_t = 50_000_000
    )]
    pub video_max_remux_bitrate: u64,
    /// AAC bitrate of a transcode, in bit/s.
    #[arg(long, env = "THUMBFARM_VIDEO_AUDIO_BITRATE", default_value_t = 128_000)]
    pub video_audio_bitrate: u64,
    /// Longest video accepted, in seconds (0: no limit).
    #[arg(long, env = "THUMBFARM_VIDEO_MAX_DURATION", default_value_t = 14_400)]
    pub video_max_duration: u64,
    /// Largest video file accepted, in bytes.
    #[arg(long, env = "THUMBFARM_VIDEO_MAX_FILE_SIZE", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub video_max_file_size: u64,
    /// Largest video width or height accepted, in pixels.
    #[arg(long, env = "THUMBFARM_VIDEO_MAX_DIMENSION", default_value_t = 8192)]
    pub video_max_dimension: u32,
    /// Wall-clock limit of one transcode or poster job, in seconds; past it the job fails for good.
    #[arg(long, env = "THUMBFARM_VIDEO_TIMEOUT", default_value_t = 3600)]
    pub video_timeout: u64,
    /// Most frames of an animated GIF/APNG/WebP made into a clip; more fails for good.
    #[arg(long, env = "THUMBFARM_ANIMATION_MAX_FRAMES", default_value_t = 1000)]
    pub animation_max_frames: u64,
    /// Longest animation made into a clip, in seconds; longer fails for good.
    #[arg(long, env = "THUMBFARM_ANIMATION_MAX_DURATION", default_value_t = 60)]
    pub animation_max_duration: u64,
    /// Most pixels of one animation frame; more fails for good.
    #[arg(
        long,
        env = "THUMBFARM_ANIMATION_MAX_PIXELS",
        default_value_t = 40_000_000
    )]
    pub animation_max_pixels: u64,
}

/// The H.264 encoders `--video-encoder` accepts.
pub const VIDEO_ENCODERS: &[&str] = &["libx264", "h264_nvenc", "h264_qsv", "h264_vaapi"];

impl VideoArgs {
    /// Validated video options.
    pub fn options(&self) -> Result<VideoOptions, ConfigError> {
        if !VIDEO_ENCODERS.contains(&self.video_encoder.as_str()) {
            return Err(ConfigError::new(
                "--video-encoder",
                "must be libx264, h264_nvenc, h264_qsv or h264_vaapi",
            ));
        }
        if self.video_crf > 51 {
            return Err(ConfigError::new("--video-crf", "must be between 0 and 51"));
        }
        const PRESETS: &[&str] = &[
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
            "placebo",
        ];
        if !PRESETS.contains(&self.video_preset.as_str()) {
            return Err(ConfigError::new("--video-preset", "not a libx264 preset"));
        }
        if self.video_max_size < 16 {
            return Err(ConfigError::new("--video-max-size", "must be at least 16"));
        }
        if self.video_max_file_size == 0 {
            return Err(ConfigError::new("--video-max-file-size", "must be above 0"));
        }
        if self.video_max_dimension == 0 {
            return Err(ConfigError::new("--video-max-dimension", "must be above 0"));
        }
        if self.video_timeout == 0 {
            return Err(ConfigError::new("--video-timeout", "must be above 0"));
        }
        if self.video_audio_bitrate < 8_000 {
            return Err(ConfigError::new(
                "--video-audio-bitrate",
                "must be at least 8000",
            ));
        }
        Ok(VideoOptions {
            encoder: self.video_encoder.clone(),
            crf: self.video_crf,
            preset: self.video_preset.clone(),
            max_long_side: self.video_max_size,
            max_remux_bitrate: self.video_max_remux_bitrate,
            audio_bitrate: self.video_audio_bitrate,
            max_duration: Duration::from_secs(self.video_max_duration),
            max_input_bytes: self.video_max_file_size,
            max_input_dimension: self.video_max_dimension,
            timeout: Duration::from_secs(self.video_timeout),
            max_animation_frames: self.animation_max_frames,
            max_animation_duration: Duration::from_secs(self.animation_max_duration),
            max_animation_pixels: self.animation_max_pixels,
        })
    }
}

impl ConsumerArgs {
    /// The limits of render children and of transcode children.
    fn isolation_limits(
        &self,
        render: &RenderOptions,
        video: &VideoOptions,
    ) -> (
        crate::isolation::IsolationLimits,
        crate::isolation::IsolationLimits,
    ) {
        use crate::isolation::{IsolationLimits, NO_MEMORY_LIMIT};
        let memory = match self.job_memory_limit {
            0 => IsolationLimits::memory_for(render.max_pixels),
            n => n,
        };
        let images = IsolationLimits {
            memory_bytes: memory,
            timeout: Duration::from_secs(self.job_timeout),
        };
        // FFmpeg's decoder and x264 run a thread or more per core, each
        // reserving a stack: room for that on top, by default.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let video_memory = match self.job_memory_limit {
            0 => memory.saturating_add(cores * (32 << 20)),
            n => n,
        };
        let videos = IsolationLimits {
            memory_bytes: if video.encoder == "libx264" {
                video_memory
            } else {
                NO_MEMORY_LIMIT
            },
            // The transcode stops itself at its own limit; the watchdog is
            // for a child stuck inside a decoder.
            timeout: video.timeout + Duration::from_secs(30),
        };
        (images, videos)
    }

    /// The full worker options.
    pub fn options(
        &self,
        render: RenderOptions,
        layout: KeyLayout,
        limits: SizeLimits,
    ) -> Result<WorkerOptions, ConfigError> {
        if self.prefetch == 0 {
            return Err(ConfigError::new("--prefetch", "must be at least 1"));
        }
        let concurrency = if self.concurrency == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.concurrency
        };
        if self.queues.is_empty() {
            return Err(ConfigError::new(
                "--queues",
                "name at least one of render, transcode",
            ));
        }
        let mut queues = self.queues.clone();
        queues.dedup();
        if self.job_timeout == 0 {
            return Err(ConfigError::new("--job-timeout", "must be at least 1"));
        }
        let video = self.video.options()?;
        let isolation = if self.isolate_decoders {
            let (images, videos) = self.isolation_limits(&render, &video);
            let children = crate::isolation::DecoderChildren::of_current_exe(images, videos)
                .map_err(|e| ConfigError::new("--isolate-decoders", e.to_string()))?;
            Some(std::sync::Arc::new(children))
        } else {
            None
        };
        // Cores a job has to spare when every job slot is busy: its
        // outputs are encoded on that many threads.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let render = RenderOptions {
            encode_threads: (cores / concurrency.max(1)).max(1),
            ..render
        };
        Ok(WorkerOptions {
            queues,
            concurrency,
            prefetch: self.prefetch,
            render,
            video,
            layout,
            limits,
            grace_seconds: self.grace_seconds,
            transient_retry: Duration::from_secs(self.transient_retry_seconds),
            // The queue's limit; the binaries set it from --delivery-limit.
            delivery_limit: 5,
            isolation,
            render_lease: Duration::from_secs(self.job_timeout + 30),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        consumer: ConsumerArgs,
    }

    fn queues(argv: &[&str]) -> Result<Vec<JobKind>, String> {
        let mut full = vec!["worker"];
        full.extend_from_slice(argv);
        let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
        cli.consumer
            .options(
                RenderOptions::default(),
                KeyLayout::default(),
                SizeLimits::default(),
            )
            .map(|o| o.queues)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn queues_default_to_both_and_can_be_split() {
        assert_eq!(
            queues(&[]).unwrap(),
            vec![JobKind::Render, JobKind::Transcode]
        );
        assert_eq!(
            queues(&["--queues", "render"]).unwrap(),
            vec![JobKind::Render]
        );
        assert_eq!(
            queues(&["--queues", "transcode"]).unwrap(),
            vec![JobKind::Transcode]
        );
        assert!(queues(&["--queues", "thumbnails"]).is_err());
    }

    #[test]
    fn bad_options_name_the_flag() {
        let e = queues(&["--prefetch", "0"]).unwrap_err();
        assert!(e.contains("--prefetch"), "{e}");
        let e = queues(&["--video-crf", "60"]).unwrap_err();
        assert!(e.contains("--video-crf"), "{e}");
    }
}
