//! What the worker and a decoder child say to each other: one JSON line per
//! request on the child's stdin, JSON lines on its stdout — progress lines
//! while a transcode runs, then one final reply. Encoded images and the MP4
//! travel as files in a directory the worker chose.

use super::work::{StillExtras, Transcoded};
use crate::render::{RenderError, RenderOptions};
use crate::video::{VideoError, VideoOptions};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use thumbfarm_shared::manifest::HdrInfo;
use thumbfarm_shared::renditions::{OutputFormat, Rendition};
use thumbfarm_shared::sizes::Size;

/// One job's decoder work.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Answer [`Reply::Ready`] (the child has started).
    Ping,
    /// Render sizes of an original (see [`super::work::render_original`]).
    Render(RenderRequest),
    /// Make an AVC MP4 (see [`super::work::transcode_original`]).
    Transcode(TranscodeRequest),
}

/// Render `sizes` (renditions) of the original at `source`, writing each
/// output to `out_dir`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenderRequest {
    pub source: PathBuf,
    pub sizes: Vec<Rendition>,
    pub media_hint: Option<String>,
    pub options: RenderOptions,
    pub video: VideoOptions,
    pub out_dir: PathBuf,
}

/// Transcode the original at `source` into `output`, with `work_dir` for
/// intermediate files, within `millis_left`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TranscodeRequest {
    pub source: PathBuf,
    pub work_dir: PathBuf,
    pub output: PathBuf,
    pub video: VideoOptions,
    pub millis_left: u64,
}

/// A line from the child.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The child is up (the answer to [`Request::Ping`]).
    Ready,
    /// Percent done of a transcode (not final).
    Progress(u8),
    /// Every output is in the request's `out_dir`.
    Rendered(Rendered),
    /// The MP4 is at the request's `output`.
    Transcoded(Transcoded),
    /// The render failed the ordinary way (the child lives on).
    RenderFailed(RenderFailure),
    /// The transcode failed the ordinary way (the child lives on).
    TranscodeFailed(TranscodeFailure),
}

/// A finished render.
#[derive(Debug, Serialize, Deserialize)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub media_type: String,
    pub decode_millis: f64,
    pub hdr: Option<HdrInfo>,
    pub outputs: Vec<Output>,
    pub thumbhash: Option<Vec<u8>>,
    pub extras: StillExtras,
}

/// One output file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub size: Size,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub millis: f64,
    pub file: PathBuf,
}

impl Output {
    /// The only file name an output may have inside the job's directory.
    pub fn file_name(size: Size, format: OutputFormat) -> String {
        Rendition { size, format }.name()
    }
}

/// A [`RenderError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum RenderFailure {
    Unsupported(String),
    Decode(String),
    TooLarge(String),
    Encode(String),
    Io(String),
    Crashed(String),
}

impl From<&RenderError> for RenderFailure {
    fn from(e: &RenderError) -> Self {
        match e {
            RenderError::Unsupported(m) => RenderFailure::Unsupported(m.clone()),
            RenderError::Decode(m) => RenderFailure::Decode(m.clone()),
            RenderError::TooLarge(m) => RenderFailure::TooLarge(m.clone()),
            RenderError::Encode(m) => RenderFailure::Encode(m.clone()),
            RenderError::Io(e) => RenderFailure::Io(e.to_string()),
            RenderError::Crashed(m) => RenderFailure::Crashed(m.clone()),
        }
    }
}

impl From<RenderFailure> for RenderError {
    fn from(f: RenderFailure) -> Self {
        match f {
            RenderFailure::Unsupported(m) => RenderError::Unsupported(m),
            RenderFailure::Decode(m) => RenderError::Decode(m),
            RenderFailure::TooLarge(m) => RenderError::TooLarge(m),
            RenderFailure::Encode(m) => RenderError::Encode(m),
            RenderFailure::Io(m) => RenderError::Io(std::io::Error::other(m)),
            RenderFailure::Crashed(m) => RenderError::Crashed(m),
        }
    }
}

/// A [`VideoError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum TranscodeFailure {
    NotVideo(String),
    Decode(String),
    TooLarge(String),
    Timeout(u64),
    Unsupported(String),
    Encode(String),
    Io(String),
    Crashed(String),
}

impl From<&VideoError> for TranscodeFailure {
    fn from(e: &VideoError) -> Self {
        match e {
            VideoError::NotVideo(m) => TranscodeFailure::NotVideo(m.clone()),
            VideoError::Decode(m) => TranscodeFailure::Decode(m.clone()),
            VideoError::TooLarge(m) => TranscodeFailure::TooLarge(m.clone()),
            VideoError::Timeout(s) => TranscodeFailure::Timeout(*s),
            VideoError::Unsupported(m) => TranscodeFailure::Unsupported(m.clone()),
            VideoError::Encode(m) => TranscodeFailure::Encode(m.clone()),
            VideoError::Io(e) => TranscodeFailure::Io(e.to_string()),
            VideoError::Crashed(m) => TranscodeFailure::Crashed(m.clone()),
        }
    }
}

impl From<TranscodeFailure> for VideoError {
    fn from(f: TranscodeFailure) -> Self {
        match f {
            TranscodeFailure::NotVideo(m) => VideoError::NotVideo(m),
            TranscodeFailure::Decode(m) => VideoError::Decode(m),
            TranscodeFailure::TooLarge(m) => VideoError::TooLarge(m),
            TranscodeFailure::Timeout(s) => VideoError::Timeout(s),
            TranscodeFailure::Unsupported(m) => VideoError::Unsupported(m),
            TranscodeFailure::Encode(m) => VideoError::Encode(m),
            TranscodeFailure::Io(m) => VideoError::Io(std::io::Error::other(m)),
            TranscodeFailure::Crashed(m) => VideoError::Crashed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_kind_and_words_across_the_wire() {
        let render = RenderError::Decode("truncated".into());
        let back = RenderError::from(RenderFailure::from(&render));
        assert_eq!(back.to_string(), render.to_string());
        assert!(back.is_permanent());
        let io = RenderError::from(RenderFailure::from(&RenderError::Io(
            std::io::Error::other("disk full"),
        )));
        assert!(!io.is_permanent(), "an I/O error stays transient");

        let video = VideoError::Timeout(12);
        let back = VideoError::from(TranscodeFailure::from(&video));
        assert_eq!(back.to_string(), video.to_string());
        assert!(back.is_permanent());
        let io = VideoError::from(TranscodeFailure::from(&VideoError::Io(
            std::io::Error::other("disk full"),
        )));
        assert!(!io.is_permanent());
    }
}
