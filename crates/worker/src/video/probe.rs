//! Reading a video's container and streams, and checking the limits, before
//! anything is decoded.

use super::error::VideoError;
use super::hdr::{StreamColour, VideoHdr};
use super::init::init;
use super::options::VideoOptions;
use ffmpeg::codec::packet::side_data::Type as SideDataType;
use ffmpeg::{codec, media, Rational};
use ffmpeg_next as ffmpeg;
use std::path::Path;

/// What the container and stream headers of a video say.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoProbe {
    /// FFmpeg's demuxer name (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `avi`, `gif`).
    pub container: String,
    /// The media type (`video/mp4`, `video/quicktime`, `video/webm`, …).
    pub media_type: &'static str,
    /// Duration in seconds (0 when the container does not say).
    pub duration: f64,
    /// Overall bitrate in bits per second (0 when unknown).
    pub bit_rate: u64,
    /// Index of the video stream used.
    pub video_index: usize,
    /// Video codec name (`h264`, `hevc`, `vp9`, …).
    pub video_codec: String,
    /// Pixel format name (`yuv420p`, `yuvj420p`, `yuv420p10le`, …).
    pub pixel_format: String,
    /// Width as coded.
    pub coded_width: u32,
    /// Height as coded.
    pub coded_height: u32,
    /// Clockwise rotation needed to show the picture upright (0, 90, 180, 270),
    /// from the display matrix or the `rotate` tag.
    pub rotation: u16,
    /// Display width: sample aspect ratio and rotation applied.
    pub width: u32,
    /// Display height: sample aspect ratio and rotation applied.
    pub height: u32,
    /// Average frame rate (frames per second; 0 when unknown).
    pub frame_rate: f64,
    /// Index of the audio stream used, if any.
    pub audio_index: Option<usize>,
    /// Audio codec name (`aac`, `vorbis`, …), if any.
    pub audio_codec: Option<String>,
    /// Set for HDR sources (PQ, HLG, Dolby Vision): tone-mapped, never remuxed.
    pub hdr: Option<VideoHdr>,
}

impl VideoProbe {
    /// Whether the source is an animated image FFmpeg reads (GIF, APNG): the
    /// animation limits apply.
    pub fn is_animation(&self) -> bool {
        matches!(self.container.as_str(), "gif" | "apng")
    }

    /// Checks an animation's duration and frame size against the limits
    /// (its frame count is checked while decoding).
    pub fn check_animation_limits(&self, opts: &VideoOptions) -> Result<(), VideoError> {
        let max_secs = opts.max_animation_duration.as_secs_f64();
        if self.duration > max_secs {
            return Err(VideoError::TooLarge(format!(
                "animation of {:.1} s, over the {max_secs:.0} s limit",
                self.duration
            )));
        }
        let pixels = u64::from(self.coded_width) * u64::from(self.coded_height);
        if pixels > opts.max_animation_pixels {
            return Err(VideoError::TooLarge(format!(
                "animation frames of {}x{} ({pixels} pixels), over the {} pixel limit",
                self.coded_width, self.coded_height, opts.max_animation_pixels
            )));
        }
        Ok(())
    }

    /// Whether the container is MP4 or QuickTime (packets can be copied into MP4).
    pub fn is_mp4_family(&self) -> bool {
        self.container.split(',').any(|n| n == "mp4" || n == "mov")
    }

    /// `None` when the source can be remuxed into the AVC MP4 as it is; else
    /// why it must be transcoded.
    pub fn remux_blocker(&self, opts: &VideoOptions) -> Option<String> {
        if let Some(hdr) = &self.hdr {
            return Some(match (hdr.transfer, hdr.dolby_vision) {
                (_, Some(dv)) => format!("Dolby Vision profile {} (tone-mapped)", dv.profile),
                (Some(t), None) => format!("HDR {t:?} (tone-mapped)"),
                (None, None) => "Dolby Vision (tone-mapped)".to_string(),
            });
        }
        if !self.is_mp4_family() {
            return Some(format!("container {} is not MP4/MOV", self.container));
        }
        if self.video_codec != "h264" {
            return Some(format!("video codec {} is not H.264", self.video_codec));
        }
        if self.pixel_format != "yuv420p" {
            return Some(format!("pixel format {} is not yuv420p", self.pixel_format));
        }
        if let Some(audio) = &self.audio_codec {
            if audio != "aac" {
                return Some(format!("audio codec {audio} is not AAC"));
            }
        }
        if self.rotation != 0 {
            return Some(format!("rotated by {} degrees", self.rotation));
        }
        if self.width.max(self.height) > opts.max_long_side {
            return Some(format!(
                "long side {} above {}",
                self.width.max(self.height),
                opts.max_long_side
            ));
        }
        if opts.max_remux_bitrate > 0 && self.bit_rate > opts.max_remux_bitrate {
            return Some(format!(
                "bitrate {} above {}",
                self.bit_rate, opts.max_remux_bitrate
            ));
        }
        None
    }
}

/// Opens the video at `path`, reads its headers and checks them against
/// the limits (file size, duration, resolution).
pub fn probe_file(path: &Path, opts: &VideoOptions) -> Result<VideoProbe, VideoError> {
    init()?;
    let size = std::fs::metadata(path)?.len();
    if size > opts.max_input_bytes {
        return Err(VideoError::TooLarge(format!(
            "file is {size} bytes, over the {} byte limit",
            opts.max_input_bytes
        )));
    }
    if size == 0 {
        return Err(VideoError::NotVideo("empty file".into()));
    }
    let ictx = ffmpeg::format::input(path)
        .map_err(|e| VideoError::NotVideo(format!("FFmpeg cannot open it: {e}")))?;
    let probe = probe_input(&ictx, path)?;
    if opts.max_duration.as_secs_f64() > 0.0 && probe.duration > opts.max_duration.as_secs_f64() {
        return Err(VideoError::TooLarge(format!(
            "duration {:.1} s above the {} s limit",
            probe.duration,
            opts.max_duration.as_secs()
        )));
    }
    let long = probe.coded_width.max(probe.coded_height);
    if long > opts.max_input_dimension {
        return Err(VideoError::TooLarge(format!(
            "{}x{} above the {} px limit",
            probe.coded_width, probe.coded_height, opts.max_input_dimension
        )));
    }
    Ok(probe)
}

/// Reads the probe of an opened input.
pub(crate) fn probe_input(
    ictx: &ffmpeg::format::context::Input,
    path: &Path,
) -> Result<VideoProbe, VideoError> {
    let container = ictx.format().name().to_string();
    // Still images open as one-frame "videos" (image2, jpeg_pipe, png_pipe, …);
    // animated GIFs are the one image format accepted.
    if container == "image2" || container.ends_with("_pipe") {
        return Err(VideoError::NotVideo(format!(
            "a still image ({container}), not a video"
        )));
    }
    let vst = ictx
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| VideoError::NotVideo(format!("no video stream in the {container} file")))?;
    let params = vst.parameters();
    let video_index = vst.index();
    let video_codec = params.id().name().to_string();
    if params.id() == codec::Id::None {
        return Err(VideoError::NotVideo("unknown video codec".into()));
    }
    let ctx = codec::Context::from_parameters(params.clone())
        .map_err(|e| VideoError::Decode(format!("video parameters: {e}")))?;
    let dec = ctx
        .decoder()
        .video()
        .map_err(|e| VideoError::Decode(format!("no video decoder for {video_codec}: {e}")))?;
    let (coded_width, coded_height) = (dec.width(), dec.height());
    if coded_width == 0 || coded_height == 0 {
        return Err(VideoError::Decode(format!(
            "video stream has no size ({coded_width}x{coded_height})"
        )));
    }
    let pixel_format = pixel_name(dec.format());
    let hdr = stream_hdr(&vst, &dec);
    let sar = positive(dec.aspect_ratio());
    let rotation = stream_rotation(&vst);
    let (width, height) = display_size(coded_width, coded_height, sar, rotation);

    let duration = {
        let d = ictx.duration();
        if d > 0 {
            d as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
        } else if vst.duration() > 0 {
            vst.duration() as f64 * f64::from(vst.time_base())
        } else {
            0.0
        }
    };
    let frame_rate = positive(vst.avg_frame_rate())
        .or_else(|| positive(vst.rate()))
        .map_or(0.0, f64::from);

    let audio = ictx.streams().best(media::Type::Audio);
    let audio_index = audio.as_ref().map(|s| s.index());
    let audio_codec = audio.map(|s| s.parameters().id().name().to_string());

    let head = read_head(path);
    let media_type = media_type_for(&container, &head);

    Ok(VideoProbe {
        container,
        media_type,
        duration,
        bit_rate: u64::try_from(ictx.bit_rate()).unwrap_or(0),
        video_index,
        video_codec,
        pixel_format,
        coded_width,
        coded_height,
        rotation,
        width,
        height,
        frame_rate,
        audio_index,
        audio_codec,
        hdr,
    })
}

/// The HDR facts of a video stream (`None` for SDR).
fn stream_hdr(
    stream: &ffmpeg::format::stream::Stream,
    dec: &ffmpeg::decoder::Video,
) -> Option<VideoHdr> {
    let dovi = stream
        .side_data()
        .find(|s| s.kind() == SideDataType::DOVI_CONF)
        .map(|s| s.data().to_vec());
    // SAFETY: the parameters belong to the live stream; only a plain field is read.
    let codec_tag = unsafe { (*stream.parameters().as_ptr()).codec_tag };
    VideoHdr::detect(&StreamColour {
        transfer: dec.color_transfer_characteristic(),
        primaries: dec.color_primaries(),
        matrix: dec.color_space(),
        range: dec.color_range(),
        codec_tag,
        dovi_record: dovi.as_deref(),
        bit_depth: bit_depth(dec.format()),
    })
}

/// Bits per sample of a pixel format (8 when unknown).
fn bit_depth(format: ffmpeg::format::Pixel) -> u8 {
    // SAFETY: av_pix_fmt_desc_get returns a pointer into a static table or null.
    let desc = unsafe { ffmpeg::ffi::av_pix_fmt_desc_get(format.into()) };
    if desc.is_null() {
        return 8;
    }
    // SAFETY: non-null descriptors are valid for the program's lifetime.
    let depth = unsafe { (*desc).comp[0].depth };
    u8::try_from(depth).unwrap_or(8).max(1)
}

fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64).read_to_end(&mut head);
    }
    head
}

/// The media type of a video from its magic numbers, else its demuxer.
fn media_type_for(container: &str, head: &[u8]) -> &'static str {
    if let Some(t) = thumbfarm_shared::manifest::sniff_media_type(head) {
        if t.starts_with("video/") || t == "image/gif" {
            return t;
        }
    }
    let names: Vec<&str> = container.split(',').collect();
    if names.contains(&"mov") || names.contains(&"mp4") {
        if head.len() >= 12 && &head[4..8] == b"ftyp" && &head[8..12] != b"qt  " {
            "video/mp4"
        } else {
            "video/quicktime"
        }
    } else if names.contains(&"webm") {
        "video/webm"
    } else if names.contains(&"matroska") {
        "video/x-matroska"
    } else if names.contains(&"avi") {
        "video/x-msvideo"
    } else if names.contains(&"gif") {
        "image/gif"
    } else {
        "video/octet-stream"
    }
}

/// The name of a pixel format (`none` when unknown).
pub(crate) fn pixel_name(format: ffmpeg::format::Pixel) -> String {
    format
        .descriptor()
        .map_or_else(|| "none".to_string(), |d| d.name().to_string())
}

/// `Some(r)` when `r` is a positive ratio.
pub(crate) fn positive(r: Rational) -> Option<Rational> {
    (r.numerator() > 0 && r.denominator() > 0).then_some(r)
}

/// The display size: square pixels, then rotated.
pub(crate) fn display_size(w: u32, h: u32, sar: Option<Rational>, rotation: u16) -> (u32, u32) {
    let w = match sar {
        Some(r) if r.numerator() != r.denominator() => {
            let scaled = (f64::from(w) * f64::from(r)).round();
            if (1.0..=65_535.0).contains(&scaled) {
                scaled as u32
            } else {
                w
            }
        }
        _ => w,
    };
    if rotation == 90 || rotation == 270 {
        (h, w)
    } else {
        (w, h)
    }
}

/// The clockwise rotation that shows a stream upright, as FFmpeg's CLI
/// computes it (`-autorotate`): from the display matrix side data, else the
/// legacy `rotate` tag; rounded to a multiple of 90.
fn stream_rotation(stream: &ffmpeg::format::stream::Stream) -> u16 {
    for side in stream.side_data() {
        if side.kind() == SideDataType::DisplayMatrix {
            if let Some(theta) = display_matrix_rotation(side.data()) {
                return quantize(theta);
            }
        }
    }
    stream
        .metadata()
        .get("rotate")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, quantize)
}

/// The clockwise display rotation in degrees of a 3×3 16.16 display matrix
/// (`-av_display_rotation_get`, as `get_rotation` in FFmpeg's CLI).
pub(crate) fn display_matrix_rotation(data: &[u8]) -> Option<f64> {
    if data.len() < 36 {
        return None;
    }
    let m = |i: usize| -> f64 {
        let b = [
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ];
        f64::from(i32::from_ne_bytes(b)) / 65536.0
    };
    let scale0 = m(0).hypot(m(3));
    let scale1 = m(1).hypot(m(4));
    if scale0 == 0.0 || scale1 == 0.0 {
        return None;
    }
    // av_display_rotation_get() is the negated angle; the CLI negates it back.
    let angle = (m(1) / scale1).atan2(m(0) / scale0).to_degrees();
    Some(angle.round())
}

/// Normalizes an angle to 0, 90, 180 or 270.
fn quantize(theta: f64) -> u16 {
    let t = theta.rem_euclid(360.0);
    ((t / 90.0).round() as u16 % 4) * 90
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display matrix with the given 16.16 entries a, b, c, d (rows 0 and 1).
    fn matrix(a: f64, b: f64, c: f64, d: f64) -> Vec<u8> {
        let fp = |x: f64| ((x * 65536.0).round() as i32).to_ne_bytes();
        let mut out = Vec::new();
        for v in [a, b, 0.0, c, d, 0.0, 0.0, 0.0] {
            out.extend(fp(v));
        }
        out.extend((1i32 << 30).to_ne_bytes());
        out
    }

    #[test]
    fn rotation_from_matrix() {
        // The same formula as FFmpeg's CLI: -av_display_rotation_get().
        let cases = [
            (matrix(1.0, 0.0, 0.0, 1.0), 0),
            (matrix(0.0, 1.0, -1.0, 0.0), 90),
            (matrix(-1.0, 0.0, 0.0, -1.0), 180),
            (matrix(0.0, -1.0, 1.0, 0.0), 270),
        ];
        for (m, expect) in cases {
            let theta = display_matrix_rotation(&m).unwrap();
            assert_eq!(quantize(theta), expect);
        }
        assert_eq!(display_matrix_rotation(&[0u8; 8]), None);
        assert_eq!(quantize(-90.0), 270);
        assert_eq!(quantize(-180.0), 180);
    }

    #[test]
    fn display_sizes() {
        assert_eq!(display_size(640, 480, None, 90), (480, 640));
        assert_eq!(
            display_size(720, 576, Some(Rational::new(16, 15)), 0),
            (768, 576)
        );
    }
}
