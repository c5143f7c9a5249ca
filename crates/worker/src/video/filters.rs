//! libavfilter graphs: rotation + scaling + pixel format for video, and
//! resampling + channel layout + fixed frame size for audio.

use super::hdr::{tonemap_chain, ToneMap};
use super::probe::positive;
use ffmpeg::{filter, format, frame, Rational};
use ffmpeg_next as ffmpeg;

/// The filters that turn a picture upright (clockwise rotation in degrees).
fn rotation_filters(rotation: u16) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// What the video graph produces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VideoTarget {
    pub width: u32,
    pub height: u32,
    pub format: format::Pixel,
    /// Clockwise rotation to apply first.
    pub rotation: u16,
    /// Convert to limited ("TV") range (for YUV outputs).
    pub limited_range: bool,
    /// Tone-map an HDR source to SDR BT.709 (after the rotation).
    pub tone_map: Option<ToneMap>,
}

/// A video graph for frames shaped like `frame`, in time base `tb`.
pub(crate) fn video_graph(
    frame: &frame::Video,
    tb: Rational,
    target: &VideoTarget,
) -> Result<filter::Graph, ffmpeg::Error> {
    let mut graph = filter::Graph::new();
    let sar = positive(frame.aspect_ratio()).unwrap_or(Rational::new(1, 1));
    let tb = positive(tb).unwrap_or(Rational::new(1, 90_000));
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        frame.width(),
        frame.height(),
        ffmpeg::ffi::AVPixelFormat::from(frame.format()) as i32,
        tb.numerator(),
        tb.denominator(),
        sar.numerator(),
        sar.denominator(),
    );
    let buffer = filter::find("buffer").ok_or(ffmpeg::Error::FilterNotFound)?;
    let sink = filter::find("buffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
    graph.add(&buffer, "in", &args)?;
    graph.add(&sink, "out", "")?;
    if let Some(mut out) = graph.get("out") {
        out.set_pixel_format(target.format);
    }
    let name = target.format.descriptor().map_or("yuv420p", |d| d.name());
    // Only full-range ("JPEG") sources need converting: asking for TV range
    // on a source that already is (or does not say) would make the scaler
    // copy every frame instead of passing it through.
    let range = if target.limited_range && frame.color_range() == ffmpeg::color::Range::JPEG {
        ":out_range=tv"
    } else {
        ""
    };
    // After a tone map the pictures are BT.709: say so to the scaler, which
    // would otherwise assume BT.601 for the RGB conversion of a poster.
    let (tone_map, matrix) = match &target.tone_map {
        Some(map) => (
            tonemap_chain(map, target.width, target.height),
            ":in_color_matrix=bt709",
        ),
        None => (String::new(), ""),
    };
    let spec = format!(
        "{}{tone_map}scale=w={}:h={}:flags=bicubic{matrix}{range},setsar=1,format={name}",
        rotation_filters(target.rotation),
        target.width,
        target.height,
    );
    graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
    graph.validate()?;
    Ok(graph)
}

/// An audio graph for frames shaped like `frame` (time base `tb`) that
/// outputs `fltp` at `rate` with `channels` (1 or 2) in frames of
/// `frame_size` samples.
pub(crate) fn audio_graph(
    frame: &frame::Audio,
    tb: Rational,
    rate: u32,
    channels: u16,
    frame_size: u32,
) -> Result<filter::Graph, ffmpeg::Error> {
    let mut graph = filter::Graph::new();
    let tb = positive(tb).unwrap_or(Rational::new(1, frame.rate().max(1) as i32));
    let layout = frame.channel_layout();
    let layout_arg = if layout.bits() != 0 {
        format!("channel_layout=0x{:x}", layout.bits())
    } else {
        format!(
            "channel_layout=0x{:x}",
            ffmpeg::ChannelLayout::default(i32::from(frame.channels().max(1))).bits()
        )
    };
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:{layout_arg}",
        tb.numerator(),
        tb.denominator(),
        frame.rate(),
        frame.format().name(),
    );
    let buffer = filter::find("abuffer").ok_or(ffmpeg::Error::FilterNotFound)?;
    let sink = filter::find("abuffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
    graph.add(&buffer, "in", &args)?;
    graph.add(&sink, "out", "")?;
    let out_layout = if channels == 1 { "mono" } else { "stereo" };
    let spec = format!(
        "aresample={rate},aformat=sample_fmts=fltp:sample_rates={rate}:channel_layouts={out_layout}"
    );
    graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
    graph.validate()?;
    if let Some(mut out) = graph.get("out") {
        out.sink().set_frame_size(frame_size);
    }
    Ok(graph)
}
