//! Encoder settings and limits of the video pipeline.

use std::time::Duration;

/// Encoder settings and limits of the video pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoOptions {
    /// The H.264 encoder: `libx264` (default), `h264_nvenc`, `h264_qsv` or
    /// `h264_vaapi`. A hardware encoder that cannot be opened falls back to
    /// `libx264`.
    pub encoder: String,
    /// Constant rate factor (libx264 `crf`; the constant-quality value of the
    /// hardware encoders), 0..=51.
    pub crf: u8,
    /// libx264 preset (`ultrafast` … `veryslow`).
    pub preset: String,
    /// Longest side of a transcode; larger sources are scaled down.
    pub max_long_side: u32,
    /// Sources above this bitrate (bits per second) are transcoded even when
    /// they could be remuxed.
    pub max_remux_bitrate: u64,
    /// AAC bitrate in bits per second.
    pub audio_bitrate: u64,
    /// Longest source accepted.
    pub max_duration: Duration,
    /// Largest source file accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest source width or height accepted, in pixels.
    pub max_input_dimension: u32,
    /// Wall-clock limit of one transcode.
    pub timeout: Duration,
    /// Most frames of an animated image (GIF, APNG, WebP) made into a clip.
    pub max_animation_frames: u64,
    /// Longest animation made into a clip.
    pub max_animation_duration: Duration,
    /// Most pixels of one animation frame (canvas width × height).
    pub max_animation_pixels: u64,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            encoder: "libx264".into(),
            crf: 23,
            preset: "fast".into(),
            max_long_side: 4096,
            max_remux_bitrate: 50_000_000,
            audio_bitrate: 128_000,
            max_duration: Duration::from_secs(4 * 3600),
            max_input_bytes: 8 * 1024 * 1024 * 1024,
            max_input_dimension: 8192,
            timeout: Duration::from_secs(3600),
            max_animation_frames: 1000,
            max_animation_duration: Duration::from_secs(60),
            max_animation_pixels: 40_000_000,
        }
    }
}
