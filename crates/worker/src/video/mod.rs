//! The video pipeline (FFmpeg through `ffmpeg-next`, Debian's FFmpeg 5.1).
//!
//! - [`probe`]: container, streams, duration, rotation and the limits, read
//!   before any frame is decoded;
//! - [`transcode_file`]: the AVC MP4 for streaming. A source that already is
//!   H.264 (yuv420p) in an MP4/MOV container with AAC or no audio, upright and
//!   within the limits, is **remuxed** (packets copied, no re-encode);
//!   anything else is **transcoded** (H.264 + AAC, long side capped, even
//!   dimensions, yuv420p, rotation applied). Both write `moov` before `mdat`
//!   (`movflags=+faststart`) and drop the source's metadata;
//! - [`poster`]: a still frame at PhotoPrism's offsets, rendered through the
//!   normal image cascade;
//! - [`job`]: the store-level transcode job the consumer runs.
//!
//! Everything here blocks: call it from `spawn_blocking`.

mod filters;
pub mod job;
pub mod metrics;
pub mod poster;
pub mod probe;
mod remux;
mod transcode;

pub use job::{transcode_job, TranscodeOutcome};
pub use poster::{extract_poster, poster_offset, render_poster_file, Poster};
pub use probe::{probe_file, VideoProbe};

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

extern crate ffmpeg_next as ffmpeg;

/// Encoder settings and limits of the video pipeline.
#[derive(Debug, Clone, PartialEq)]
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
        }
    }
}

/// Why a video could not be probed, transcoded or given a poster.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// Not a video FFmpeg can open (or no video stream in it).
    #[error("not a video: {0}")]
    NotVideo(String),
    /// Truncated or corrupt data, or no decodable frame.
    #[error("cannot decode video: {0}")]
    Decode(String),
    /// Over the duration, file size or resolution limits.
    #[error("over the limits: {0}")]
    TooLarge(String),
    /// The wall-clock limit of one job was reached.
    #[error("timed out after {0} s")]
    Timeout(u64),
    /// The encoder or muxer failed.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Reading or writing a local file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl VideoError {
    /// Whether retrying cannot help (bad, hostile or over-limit input, or a
    /// job that ran out of time).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, VideoError::Io(_))
    }
}

/// Which way the AVC MP4 was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPath {
    /// Packets copied into a new MP4, no re-encode.
    Remux,
    /// Decoded and encoded again.
    Transcode,
}

impl VideoPath {
    /// `remux` or `transcode` (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            VideoPath::Remux => "remux",
            VideoPath::Transcode => "transcode",
        }
    }
}

/// What [`transcode_file`] did.
#[derive(Debug, Clone)]
pub struct TranscodeResult {
    /// Remuxed or transcoded.
    pub path: VideoPath,
    /// Why the source was transcoded (`None` when remuxed).
    pub transcode_reason: Option<String>,
    /// The video encoder used (`None` when remuxed).
    pub encoder: Option<String>,
    /// The source, as probed.
    pub source: VideoProbe,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Media seconds written.
    pub media_seconds: f64,
    /// Wall-clock seconds spent.
    pub wall_seconds: f64,
    /// Bytes of the output file.
    pub bytes: u64,
}

impl TranscodeResult {
    /// Media seconds per wall second.
    pub fn speed(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.media_seconds / self.wall_seconds
        } else {
            0.0
        }
    }
}

/// Initializes FFmpeg once (quiet logging: errors only).
pub(crate) fn init() -> Result<(), VideoError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
        Ok(())
    })
    .clone()
    .map_err(|e| VideoError::Encode(format!("FFmpeg initialization: {e}")))
}

/// Makes the AVC MP4 of the video at `input` in `output` (remux or
/// transcode, see the module docs), calling `progress` with 10, 20, … 90 as
/// the work advances (sources of 10 s and more only). Fails with [`VideoError::Timeout`] once `deadline` has
/// passed. A failed run may leave a partial `output`: write to a temporary
/// path and move it into place only on success.
pub fn transcode_file(
    input: &Path,
    output: &Path,
    opts: &VideoOptions,
    deadline: Instant,
    progress: &mut dyn FnMut(u8),
) -> Result<TranscodeResult, VideoError> {
    init()?;
    let started = Instant::now();
    let source = probe::probe_file(input, opts)?;
    let long = job::publishes_progress(source.duration);
    let mut gated = |p: u8| {
        if long {
            progress(p)
        }
    };
    let progress: &mut dyn FnMut(u8) = &mut gated;
    let (path, transcode_reason, encoder, width, height, media_seconds) =
        match source.remux_blocker(opts) {
            None => {
                let media = remux::remux(input, output, &source, deadline, progress)?;
                (
                    VideoPath::Remux,
                    None,
                    None,
                    source.width,
                    source.height,
                    media,
                )
            }
            Some(reason) => {
                let done = transcode::transcode(input, output, &source, opts, deadline, progress)?;
                (
                    VideoPath::Transcode,
                    Some(reason),
                    Some(done.encoder),
                    done.width,
                    done.height,
                    done.media_seconds,
                )
            }
        };
    let bytes = std::fs::metadata(output)?.len();
    Ok(TranscodeResult {
        path,
        transcode_reason,
        encoder,
        source,
        width,
        height,
        media_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        bytes,
    })
}

/// Whether a file whose first bytes are `head` should go through the video
/// pipeline: its magic numbers say video, or they say nothing and the job's
/// media type `hint` says video. QuickTime files that start with a `wide`,
/// `mdat`, `moov`, `free` or `skip` atom instead of `ftyp` count as video.
pub fn looks_like_video(head: &[u8], hint: Option<&str>) -> bool {
    match thumbfarm_shared::manifest::sniff_media_type(head) {
        Some(t) => t.starts_with("video/"),
        None => {
            let qt_atom = head.len() >= 8
                && matches!(&head[4..8], b"wide" | b"mdat" | b"moov" | b"free" | b"skip");
            qt_atom || hint.is_some_and(|h| h.starts_with("video/"))
        }
    }
}

/// [`looks_like_video`] for a file on disk (reads its first 64 bytes).
pub fn file_looks_like_video(path: &Path, hint: Option<&str>) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let read = file.read(&mut head[n..])?;
        if read == 0 {
            break;
        }
        n += read;
    }
    Ok(looks_like_video(&head[..n], hint))
}

/// The error of a deadline check.
pub(crate) fn check_deadline(deadline: Instant, started: Instant) -> Result<(), VideoError> {
    if Instant::now() > deadline {
        Err(VideoError::Timeout(started.elapsed().as_secs()))
    } else {
        Ok(())
    }
}

/// Calls `progress` for every 10 % step reached by `done` of `total` seconds.
pub(crate) struct Progress {
    next: u8,
    total: f64,
}

impl Progress {
    pub(crate) fn new(total: f64) -> Self {
        Progress { next: 10, total }
    }

    pub(crate) fn update(&mut self, done: f64, cb: &mut dyn FnMut(u8)) {
        if self.total <= 0.0 {
            return;
        }
        let percent = (done / self.total * 100.0).clamp(0.0, 100.0);
        while self.next < 100 && percent >= f64::from(self.next) {
            cb(self.next);
            self.next += 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_sniffing() {
        assert!(looks_like_video(b"\0\0\0\x18ftypisom\0\0\0\0", None));
        assert!(looks_like_video(b"\0\0\0\x08wide\0\0\0\0", None));
        assert!(!looks_like_video(b"\xFF\xD8\xFF\xE0", Some("video/mp4")));
        assert!(looks_like_video(b"????????", Some("video/mp4")));
        assert!(!looks_like_video(b"????????", None));
    }

    #[test]
    fn progress_steps() {
        let mut seen = Vec::new();
        let mut p = Progress::new(10.0);
        p.update(0.5, &mut |x| seen.push(x));
        p.update(3.5, &mut |x| seen.push(x));
        p.update(10.0, &mut |x| seen.push(x));
        assert_eq!(seen, vec![10, 20, 30, 40, 50, 60, 70, 80, 90]);
    }
}
