//! The AVC MP4 of a video file: remuxed when the source already is
//! streamable H.264, transcoded otherwise.

use super::error::VideoError;
use super::init::init;
use super::options::VideoOptions;
use super::probe::{self, VideoProbe};
use super::progress::publishes_progress;
use super::{animation, remux, transcode};
use std::path::Path;
use std::time::Instant;

/// Which way the AVC MP4 was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        media_speed(self.media_seconds, self.wall_seconds)
    }
}

/// Media seconds per wall second (0 when no time was measured).
pub fn media_speed(media_seconds: f64, wall_seconds: f64) -> f64 {
    if wall_seconds > 0.0 {
        media_seconds / wall_seconds
    } else {
        0.0
    }
}

/// Whether the file at `path` is an animated WebP (from its first bytes).
fn is_animated_webp_file(path: &Path) -> Result<bool, VideoError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(32);
    std::fs::File::open(path)?.take(32).read_to_end(&mut head)?;
    Ok(thumbfarm_shared::animation::is_animated_webp(&head))
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
    let webp = is_animated_webp_file(input)?;
    let source = if webp {
        animation::probe_animated_webp(input, opts)?
    } else {
        probe::probe_file(input, opts)?
    };
    let long = publishes_progress(source.duration);
    let mut gated = |p: u8| {
        if long {
            progress(p)
        }
    };
    let progress: &mut dyn FnMut(u8) = &mut gated;
    let blocker = if webp {
        Some("animated WebP (frames encoded one by one)".to_string())
    } else {
        source.remux_blocker(opts)
    };
    let (path, transcode_reason, encoder, width, height, media_seconds) = match blocker {
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
            let done = if webp {
                animation::transcode_animated_webp(input, output, &source, opts, deadline)?
            } else {
                transcode::transcode(input, output, &source, opts, deadline, progress)?
            };
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
