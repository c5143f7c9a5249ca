//! The part of a job that reads the original's bytes with the decoders:
//! rendering its sizes (a still, or a video's poster frame) and making its
//! AVC MP4. These run in a decoder child when decoders are isolated and in
//! the worker's own process otherwise — the same functions either way; the
//! jobs in `crate::jobs` do everything around them (store, manifest,
//! broker).

use crate::live_photo::{self, Half};
use crate::render::{self, RenderError, RenderOptions, RenderResult};
use crate::video::{self, TranscodeResult, VideoError, VideoOptions, VideoPath};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;
use thumbfarm_shared::manifest::{sniff_media_type, HdrInfo, StillVideo, VideoKind};
use thumbfarm_shared::renditions::Rendition;
use tracing::warn;

/// What a still's bytes say beyond its pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StillExtras {
    /// A motion photo's embedded video, or an animation (APNG, WebP).
    pub motion: Option<StillVideo>,
    /// A Live Photo half: its ContentIdentifier and which half it is.
    pub live: Option<(String, Half)>,
}

/// The sizes of one original, rendered, with what else its bytes say.
#[derive(Debug)]
pub struct RenderedOriginal {
    /// The outputs and the original's facts.
    pub result: RenderResult,
    /// Motion photo, animation and Live Photo facts.
    pub extras: StillExtras,
}

/// Renders `sizes` of the original at `path`: a still through the image
/// pipeline, a video (by its first bytes, or the job's `media_hint`) through
/// its poster frame.
pub fn render_original(
    path: &Path,
    sizes: &[Rendition],
    media_hint: Option<&str>,
    render_opts: &RenderOptions,
    video_opts: &VideoOptions,
) -> Result<RenderedOriginal, RenderError> {
    if video::file_looks_like_video(path, media_hint)? {
        let result = video::render_poster_file(path, sizes, render_opts, video_opts)?;
        let live = live_photo::video_content_id(path).map(|id| (id, Half::Video));
        return Ok(RenderedOriginal {
            result,
            extras: StillExtras { motion: None, live },
        });
    }
    let result = render::render_file(path, sizes, render_opts)?;
    let extras = still_extras(path, result.media_type);
    Ok(RenderedOriginal { result, extras })
}

/// Reads a rendered still again for its motion-photo video, its animation
/// (APNG, WebP) and its Live Photo ContentIdentifier (byte scans, no decoding).
fn still_extras(path: &Path, media_type: &str) -> StillExtras {
    let animated = matches!(media_type, "image/png" | "image/webp");
    if !animated && !video::motion_photo::may_be_motion_photo(media_type) {
        return StillExtras::default();
    }
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "motion/Live Photo check: original unreadable");
            return StillExtras::default();
        }
    };
    if animated {
        return StillExtras {
            motion: thumbfarm_shared::animation::is_animated_image(&data)
                .then(|| StillVideo::new(VideoKind::Animation)),
            live: None,
        };
    }
    let motion = motion_photo_video(&data);
    let live = if motion.is_none() {
        live_photo::photo_content_id(&data).map(|id| (id, Half::Photo))
    } else {
        None
    };
    StillExtras { motion, live }
}

/// The video of a motion photo, for the manifest: `None` for a plain still,
/// and for a still whose declared video cannot be found (logged: its
/// transcode would fail for good, so no video is offered).
fn motion_photo_video(data: &[u8]) -> Option<StillVideo> {
    match video::motion_photo::embedded_video(data) {
        Ok(Some(found)) => {
            let mut v = StillVideo::new(VideoKind::MotionPhoto);
            v.offset = Some(found.offset);
            v.length = Some(found.length);
            Some(v)
        }
        Ok(None) => None,
        Err(e) => {
            warn!(error = %e, "still says it is a motion photo; no video offered");
            None
        }
    }
}

/// A finished AVC MP4: what the log, the metrics and the manifest need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcoded {
    /// Remuxed or transcoded.
    pub path: VideoPath,
    /// Why the source was transcoded (`None` when remuxed).
    pub transcode_reason: Option<String>,
    /// The video encoder used (`None` when remuxed).
    pub encoder: Option<String>,
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
    /// The video's source: its media type, display size, duration and HDR.
    pub source: TranscodedSource,
    /// Set when the original is a still (motion photo or animation).
    pub still: Option<StillSource>,
}

/// What the manifest records of a transcoded source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodedSource {
    /// The media type of the video stream's file.
    pub media_type: String,
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Duration in seconds.
    pub duration: f64,
    /// HDR facts of an HDR source.
    pub hdr: Option<HdrInfo>,
}

/// The video of a still, when the original is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StillSource {
    /// The still's media type.
    pub media_type: String,
    /// What the manifest records.
    pub video: StillVideo,
}

impl Transcoded {
    /// Media seconds per wall second.
    pub fn speed(&self) -> f64 {
        video::media_speed(self.media_seconds, self.wall_seconds)
    }

    fn new(result: TranscodeResult, still: Option<StillSource>) -> Self {
        Transcoded {
            path: result.path,
            transcode_reason: result.transcode_reason,
            encoder: result.encoder,
            width: result.width,
            height: result.height,
            media_seconds: result.media_seconds,
            wall_seconds: result.wall_seconds,
            bytes: result.bytes,
            source: TranscodedSource {
                media_type: result.source.media_type.to_string(),
                width: result.source.width,
                height: result.source.height,
                duration: result.source.duration,
                hdr: result.source.hdr.as_ref().map(|h| h.to_manifest()),
            },
            still,
        }
    }
}

/// Makes the AVC MP4 of the original at `original` in `output`; a motion
/// photo's MP4 is cut out into `work_dir` first. `progress` hears every
/// 10 % of long sources.
pub fn transcode_original(
    original: &Path,
    work_dir: &Path,
    output: &Path,
    opts: &VideoOptions,
    deadline: Instant,
    progress: &mut dyn FnMut(u8),
) -> Result<Transcoded, VideoError> {
    let (source, still) = video_source(original, work_dir)?;
    let result = video::transcode_file(&source, output, opts, deadline, progress)?;
    Ok(Transcoded::new(result, still))
}

/// The file to transcode: the original itself (a video, an animated GIF,
/// APNG or WebP), or the MP4 cut out of a motion photo. A JPEG/HEIC without
/// a video, like a still PNG/WebP, fails for good.
fn video_source(
    original: &Path,
    work_dir: &Path,
) -> Result<(PathBuf, Option<StillSource>), VideoError> {
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(original)?
        .take(64)
        .read_to_end(&mut head)?;
    let media_type = sniff_media_type(&head).unwrap_or("");
    if matches!(media_type, "image/gif" | "image/png" | "image/webp") {
        // An animation: FFmpeg (GIF, APNG) or the WebP frame encoder reads it.
        let video = StillVideo::new(VideoKind::Animation);
        return Ok((
            original.to_path_buf(),
            Some(StillSource {
                media_type: media_type.to_string(),
                video,
            }),
        ));
    }
    if !video::motion_photo::may_be_motion_photo(media_type) {
        return Ok((original.to_path_buf(), None));
    }
    match video::motion_photo::extract_motion_video(original, work_dir)? {
        Some((path, found)) => {
            let mut video = StillVideo::new(VideoKind::MotionPhoto);
            video.offset = Some(found.offset);
            video.length = Some(found.length);
            Ok((
                path,
                Some(StillSource {
                    media_type: media_type.to_string(),
                    video,
                }),
            ))
        }
        None => Err(VideoError::NotVideo(format!(
            "a still ({media_type}) without an embedded video"
        ))),
    }
}
