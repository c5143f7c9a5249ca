//! Poster frames: one still at PhotoPrism's offset, upright, then the normal
//! image cascade (so a video's thumbnails are keyed by the video's own hash).

use super::error::{check_deadline, VideoError};
use super::filters::{video_graph, VideoTarget};
use super::hdr::ToneMap;
use super::init::init;
use super::options::VideoOptions;
use super::probe::{positive, VideoProbe};
use crate::render::{self, RenderError, RenderOptions, RenderResult};
use ffmpeg::codec::{self, threading};
use ffmpeg::util::frame::side_data::Type as FrameSideData;
use ffmpeg::{format, frame, media, Packet};
use ffmpeg_next as ffmpeg;
use std::path::Path;
use std::time::Instant;
use thumbfarm_shared::Rendition;

/// The time of the poster frame for a video of `duration` seconds, as
/// PhotoPrism's `PreviewTimeOffset`: 0.001 s up to 3.1 s, then 3 s, 9 s
/// (over a minute), 30 s (over 3 minutes), 60 s (over 10 minutes) and
/// 150 s (over an hour).
pub fn poster_offset(duration: f64) -> f64 {
    if duration > 3600.0 {
        150.0
    } else if duration > 600.0 {
        60.0
    } else if duration > 180.0 {
        30.0
    } else if duration > 60.0 {
        9.0
    } else if duration > 3.1 {
        3.0
    } else {
        0.001
    }
}

/// A decoded, upright poster frame.
#[derive(Debug, Clone)]
pub struct Poster {
    /// RGB8 pixels, `width * height * 3` bytes, rows packed.
    pub rgb: Vec<u8>,
    /// Width in pixels (display size: rotation and aspect ratio applied).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The time of the frame, in seconds from the start.
    pub at: f64,
    /// The video, as probed.
    pub probe: VideoProbe,
}

/// Decodes the poster frame of the video at `path`: the frame shown at
/// [`poster_offset`] (the last frame when the video is shorter than its
/// header says), rotated upright and converted to RGB.
pub fn extract_poster(path: &Path, opts: &VideoOptions) -> Result<Poster, VideoError> {
    init()?;
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let probe = super::probe::probe_file(path, opts)?;
    // An HDR source that cannot be mapped fails before anything is decoded.
    let tone_map = ToneMap::for_source(probe.hdr.as_ref())?;
    let target_secs = poster_offset(probe.duration);
    let mut ictx = format::input(path)
        .map_err(|e| VideoError::NotVideo(format!("FFmpeg cannot open it: {e}")))?;
    let vst = ictx
        .stream(probe.video_index)
        .ok_or_else(|| VideoError::NotVideo("video stream vanished".into()))?;
    let tb = vst.time_base();
    let frame_secs = positive(vst.avg_frame_rate())
        .or_else(|| positive(vst.rate()))
        .map_or(0.0, |r| 1.0 / f64::from(r));
    let start = {
        let s = vst.start_time();
        if s == ffmpeg::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            s as f64 * f64::from(tb)
        }
    };
    let mut dctx = codec::context::Context::from_parameters(vst.parameters())
        .map_err(|e| VideoError::Decode(format!("video parameters: {e}")))?;
    dctx.set_threading(threading::Config::kind(threading::Type::Frame));
    let mut dec = dctx
        .decoder()
        .video()
        .map_err(|e| VideoError::Decode(format!("video decoder: {e}")))?;

    if target_secs >= 1.0 {
        let ts = ((start + target_secs) * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
        if ictx.seek(ts, ..ts).is_err() {
            // Not seekable: decode from the start.
            let _ = ictx.seek(0, ..0);
        }
    }

    // The frame that is on screen at `target_secs`: the first whose display
    // interval reaches past it.
    let covers = |f: &frame::Video| -> bool {
        f.timestamp()
            .is_some_and(|ts| ts as f64 * f64::from(tb) - start + frame_secs > target_secs)
    };
    let mut frame = frame::Video::empty();
    let mut last: Option<frame::Video> = None;
    let mut found = false;
    let mut packet = Packet::empty();
    let mut eof = false;
    'outer: loop {
        check_deadline(deadline, started)?;
        if !eof {
            match packet.read(&mut ictx) {
                Ok(()) => {
                    if packet.stream() != probe.video_index {
                        continue;
                    }
                    let _ = dec.send_packet(&packet);
                }
                Err(ffmpeg::Error::InvalidData) => continue,
                Err(_) => {
                    eof = true;
                    let _ = dec.send_eof();
                }
            }
        }
        loop {
            match dec.receive_frame(&mut frame) {
                Ok(()) => {
                    if covers(&frame) {
                        found = true;
                        break 'outer;
                    }
                    last = Some(std::mem::replace(&mut frame, frame::Video::empty()));
                }
                Err(ffmpeg::Error::Eof) => break 'outer,
                Err(_) if eof => break 'outer,
                Err(_) => break,
            }
        }
    }
    let chosen = if found {
        frame
    } else {
        last.ok_or_else(|| VideoError::Decode("no decodable video frame".into()))?
    };
    let at = chosen
        .timestamp()
        .map_or(0.0, |ts| (ts as f64 * f64::from(tb) - start).max(0.0));
    let (rgb, width, height) = to_rgb(chosen, tb, &probe, tone_map)?;
    Ok(Poster {
        rgb,
        width,
        height,
        at,
        probe,
    })
}

/// Turns a decoded frame upright and into packed RGB8 at the display size.
fn to_rgb(
    mut frame: frame::Video,
    tb: ffmpeg::Rational,
    probe: &VideoProbe,
    tone_map: Option<ToneMap>,
) -> Result<(Vec<u8>, u32, u32), VideoError> {
    let err = |e: ffmpeg::Error| VideoError::Decode(format!("converting the poster frame: {e}"));
    frame.remove_side_data(FrameSideData::DisplayMatrix);
    let target = VideoTarget {
        width: probe.width.max(1),
        height: probe.height.max(1),
        format: format::Pixel::RGB24,
        rotation: probe.rotation,
        limited_range: false,
        tone_map,
    };
    let mut graph = video_graph(&frame, tb, &target).map_err(err)?;
    let mut out = frame::Video::empty();
    {
        let mut src = graph
            .get("in")
            .ok_or_else(|| VideoError::Decode("filter graph has no input".into()))?;
        src.source().add(&frame).map_err(err)?;
        src.source().flush().map_err(err)?;
    }
    let mut sink = graph
        .get("out")
        .ok_or_else(|| VideoError::Decode("filter graph has no output".into()))?;
    sink.sink().frame(&mut out).map_err(err)?;
    let (w, h) = (out.width(), out.height());
    let row = w as usize * 3;
    let stride = out.stride(0);
    let data = out.data(0);
    let mut rgb = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let line = data
            .get(y * stride..y * stride + row)
            .ok_or_else(|| VideoError::Decode("short poster frame".into()))?;
        rgb.extend_from_slice(line);
    }
    Ok((rgb, w, h))
}

fn video_to_render_error(e: VideoError) -> RenderError {
    match e {
        VideoError::TooLarge(m) => RenderError::TooLarge(m),
        VideoError::Io(e) => RenderError::Io(e),
        VideoError::NotVideo(m) | VideoError::Unsupported(m) => RenderError::Unsupported(m),
        other => RenderError::Decode(other.to_string()),
    }
}

/// Renders `sizes` of a video's poster frame through the image pipeline
/// (blocking). The result carries the video's media type and display size.
pub fn render_poster_file(
    path: &Path,
    sizes: &[Rendition],
    render_opts: &RenderOptions,
    video_opts: &VideoOptions,
) -> Result<RenderResult, RenderError> {
    let started = Instant::now();
    let poster = extract_poster(path, video_opts).map_err(video_to_render_error)?;
    let png = encode_png(&poster.rgb, poster.width, poster.height)?;
    let extract_millis = started.elapsed().as_secs_f64() * 1000.0;
    let mut result = render::render_bytes(&png, sizes, render_opts)?;
    result.media_type = poster.probe.media_type;
    result.hdr = poster.probe.hdr.as_ref().map(|h| h.to_manifest());
    result.decode_millis += extract_millis;
    Ok(result)
}

/// A fast, lossless hand-over to the image pipeline.
fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| RenderError::Encode(format!("poster PNG: {e}")))?;
    Ok(out)
}

/// Whether `path` holds a stream FFmpeg sees as video (used by tests and
/// tools; the consumer sniffs magic numbers instead).
pub fn has_video_stream(path: &Path) -> bool {
    init().is_ok()
        && format::input(path)
            .map(|ictx| ictx.streams().best(media::Type::Video).is_some())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photoprism_offsets() {
        assert_eq!(poster_offset(0.0), 0.001);
        assert_eq!(poster_offset(3.1), 0.001);
        assert_eq!(poster_offset(3.2), 3.0);
        assert_eq!(poster_offset(61.0), 9.0);
        assert_eq!(poster_offset(181.0), 30.0);
        assert_eq!(poster_offset(601.0), 60.0);
        assert_eq!(poster_offset(3601.0), 150.0);
    }
}
