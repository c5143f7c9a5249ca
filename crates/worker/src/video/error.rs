//! Why a video could not be probed, transcoded or given a poster.

use std::time::Instant;

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
    /// A source this pipeline cannot render correctly (Dolby Vision profile 5).
    #[error("unsupported video: {0}")]
    Unsupported(String),
    /// The encoder or muxer failed.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Reading or writing a local file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The decoder child died or overran its limits (`decoder crashed:
    /// SIGSEGV`, `over the job memory limit (1.5 GiB)`); see
    /// `crate::isolation`.
    #[error("{0}")]
    Crashed(String),
}

impl VideoError {
    /// Whether retrying cannot help (bad, hostile or over-limit input, or a
    /// job that ran out of time).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, VideoError::Io(_))
    }
}

/// The error of a deadline check.
pub(crate) fn check_deadline(deadline: Instant, started: Instant) -> Result<(), VideoError> {
    if Instant::now() > deadline {
        Err(VideoError::Timeout(started.elapsed().as_secs()))
    } else {
        Ok(())
    }
}
