//! The transcode path: decode, turn upright, scale, encode H.264 + AAC into
//! an MP4 with `moov` first.

use super::error::{check_deadline, VideoError};
use super::filters::{audio_graph, video_graph, VideoTarget};
use super::hdr::ToneMap;
use super::options::VideoOptions;
use super::probe::{positive, VideoProbe};
use super::progress::Progress;
use ffmpeg::codec::{self, threading};
use ffmpeg::util::frame::side_data::Type as FrameSideData;
use ffmpeg::{encoder, filter, format, frame, picture, Dictionary, Packet, Rational, Rescale};
use ffmpeg_next as ffmpeg;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use tracing::{debug, warn};

/// Sample rates the AAC encoder takes; anything else is resampled to 48 kHz.
const AAC_RATES: &[u32] = &[
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
];

/// What the transcode produced.
pub(crate) struct Encoded {
    pub encoder: String,
    pub width: u32,
    pub height: u32,
    pub media_seconds: f64,
}

/// The output size: long side capped, even dimensions.
pub(crate) fn output_size(width: u32, height: u32, max_long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    let (w, h) = if max_long_side > 0 && long > max_long_side {
        let s = f64::from(max_long_side) / f64::from(long);
        (
            (f64::from(width) * s).round() as u32,
            (f64::from(height) * s).round() as u32,
        )
    } else {
        (width, height)
    };
    ((w & !1).max(2), (h & !1).max(2))
}

/// Muxer options: `moov` before `mdat`.
pub(crate) fn mp4_options() -> Dictionary<'static> {
    let mut d = Dictionary::new();
    d.set("movflags", "+faststart");
    d
}

fn enc_err(what: &'static str) -> impl Fn(ffmpeg::Error) -> VideoError {
    move |e| VideoError::Encode(format!("{what}: {e}"))
}

/// Sends every packet the encoder has ready to the muxer. `durations` maps
/// the pts of frames sent to their display duration, for encoders that leave
/// packet durations unset (so the last frame of a GIF keeps its 15 s).
pub(crate) fn write_packets(
    enc: &mut encoder::Encoder,
    ost: usize,
    enc_tb: Rational,
    ost_tb: Rational,
    octx: &mut format::context::Output,
    mut durations: Option<&mut HashMap<i64, i64>>,
) -> Result<(), VideoError> {
    let mut packet = Packet::empty();
    while enc.receive_packet(&mut packet).is_ok() {
        if let (Some(map), Some(pts)) = (durations.as_deref_mut(), packet.pts()) {
            if let Some(d) = map.remove(&pts) {
                if packet.duration() <= 0 {
                    packet.set_duration(d);
                }
            }
        }
        packet.set_stream(ost);
        packet.rescale_ts(enc_tb, ost_tb);
        packet
            .write_interleaved(octx)
            .map_err(enc_err("writing a packet"))?;
    }
    Ok(())
}

/// The pixel format a named encoder is fed with.
fn encoder_pixel_format(name: &str) -> format::Pixel {
    match name {
        "h264_qsv" => format::Pixel::NV12,
        "h264_vaapi" => format::Pixel::VAAPI,
        _ => format::Pixel::YUV420P,
    }
}

/// Encoder settings of one encoder.
pub(crate) struct VideoEncoderSetup {
    pub width: u32,
    pub height: u32,
    pub time_base: Rational,
    pub frame_rate: Option<Rational>,
    pub global_header: bool,
    /// Tag the stream BT.709 (primaries, transfer, matrix): set for
    /// tone-mapped HDR sources.
    pub bt709: bool,
}

/// Opens the named H.264 encoder.
fn try_open_encoder(
    name: &str,
    setup: &VideoEncoderSetup,
    opts: &VideoOptions,
) -> Result<(encoder::Video, ffmpeg::Codec, format::Pixel), String> {
    let codec =
        encoder::find_by_name(name).ok_or_else(|| format!("{name} is not in this FFmpeg build"))?;
    let pix = encoder_pixel_format(name);
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| e.to_string())?;
    enc.set_width(setup.width);
    enc.set_height(setup.height);
    enc.set_format(pix);
    enc.set_time_base(setup.time_base);
    enc.set_frame_rate(setup.frame_rate);
    enc.set_color_range(ffmpeg::color::Range::MPEG);
    if setup.bt709 {
        enc.set_color_primaries(ffmpeg::color::Primaries::BT709);
        enc.set_color_transfer_characteristic(ffmpeg::color::TransferCharacteristic::BT709);
        enc.set_colorspace(ffmpeg::color::Space::BT709);
    }
    if setup.global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let crf = opts.crf.to_string();
    let mut dict = Dictionary::new();
    match name {
        "libx264" => {
            dict.set("preset", &opts.preset);
            dict.set("crf", &crf);
        }
        "h264_nvenc" => {
            dict.set("preset", "p4");
            dict.set("rc", "vbr");
            dict.set("cq", &crf);
            dict.set("b", "0");
        }
        "h264_qsv" => {
            dict.set("global_quality", &crf);
        }
        "h264_vaapi" => {
            dict.set("qp", &crf);
        }
        _ => {}
    }
    let opened = enc.open_with(dict).map_err(|e| e.to_string())?;
    Ok((opened, codec, pix))
}

/// Opens the configured encoder, falling back to libx264 when it cannot be
/// opened (hardware absent, not in this FFmpeg build).
pub(crate) fn open_video_encoder(
    setup: &VideoEncoderSetup,
    opts: &VideoOptions,
) -> Result<(encoder::Video, ffmpeg::Codec, format::Pixel, String), VideoError> {
    match try_open_encoder(&opts.encoder, setup, opts) {
        Ok((enc, codec, pix)) => Ok((enc, codec, pix, opts.encoder.clone())),
        Err(e) if opts.encoder != "libx264" => {
            warn!(
                requested = %opts.encoder,
                error = %e,
                "video encoder cannot be opened; falling back to libx264"
            );
            let (enc, codec, pix) = try_open_encoder("libx264", setup, opts)
                .map_err(|e| VideoError::Encode(format!("libx264: {e}")))?;
            Ok((enc, codec, pix, "libx264".to_string()))
        }
        Err(e) => Err(VideoError::Encode(format!("{}: {e}", opts.encoder))),
    }
}

/// Decoded-frame bookkeeping shared by audio and video.
#[derive(Default)]
struct Span {
    first: Option<f64>,
    end: f64,
}

impl Span {
    fn add(&mut self, start: f64, duration: f64) {
        self.first = Some(self.first.map_or(start, |f| f.min(start)));
        self.end = self.end.max(start + duration);
    }
}

/// The video half of a transcode.
struct VideoPipe {
    stream: usize,
    in_tb: Rational,
    frame_secs: f64,
    dec: ffmpeg::decoder::Video,
    enc: encoder::Video,
    enc_tb: Rational,
    ost: usize,
    ost_tb: Rational,
    target: VideoTarget,
    graph: Option<(filter::Graph, (u32, u32, format::Pixel))>,
    last_pts: Option<i64>,
    /// Frame duration in the encoder time base when a frame carries none.
    default_duration: i64,
    /// Display duration of frames sent to the encoder, by pts.
    durations: HashMap<i64, i64>,
    frames: u64,
    packets: u64,
    errors: u64,
    span: Span,
    /// Animation limits: most frames and seconds decoded.
    max_frames: Option<u64>,
    max_seconds: Option<f64>,
}

impl VideoPipe {
    fn send(
        &mut self,
        packet: &Packet,
        octx: &mut format::context::Output,
    ) -> Result<(), VideoError> {
        self.packets += 1;
        if let Err(e) = self.dec.send_packet(packet) {
            debug!(error = %e, "video packet not decodable");
            self.errors += 1;
        }
        self.drain_decoder(octx)
    }

    fn drain_decoder(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let mut frame = frame::Video::empty();
        loop {
            match self.dec.receive_frame(&mut frame) {
                Ok(()) => self.filter(&mut frame, octx)?,
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(e) => {
                    debug!(error = %e, "video decode error");
                    self.errors += 1;
                    break;
                }
            }
        }
        Ok(())
    }

    fn filter(
        &mut self,
        frame: &mut frame::Video,
        octx: &mut format::context::Output,
    ) -> Result<(), VideoError> {
        self.frames += 1;
        if let Some(max) = self.max_frames.filter(|m| self.frames > *m) {
            return Err(VideoError::TooLarge(format!(
                "animation has more than {max} frames"
            )));
        }
        let ts = frame.timestamp();
        frame.set_pts(ts);
        frame.set_kind(picture::Type::None);
        frame.remove_side_data(FrameSideData::DisplayMatrix);
        if let Some(ts) = ts {
            let d = frame.packet().duration;
            let d = if d > 0 {
                d as f64 * f64::from(self.in_tb)
            } else {
                self.frame_secs
            };
            self.span.add(ts as f64 * f64::from(self.in_tb), d);
            if let (Some(max), Some(first)) = (self.max_seconds, self.span.first) {
                if self.span.end - first > max {
                    return Err(VideoError::TooLarge(format!(
                        "animation runs longer than the {max:.0} s limit"
                    )));
                }
            }
        }
        let key = (frame.width(), frame.height(), frame.format());
        if self.graph.as_ref().map(|(_, k)| *k) != Some(key) {
            let graph = video_graph(frame, self.in_tb, &self.target)
                .map_err(enc_err("video filter graph"))?;
            self.graph = Some((graph, key));
        }
        if let Some((graph, _)) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                src.source().add(frame).map_err(enc_err("video filter"))?;
            }
        }
        self.drain_graph(octx)
    }

    fn drain_graph(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let Some((graph, _)) = self.graph.as_mut() else {
            return Ok(());
        };
        let Some(mut sink) = graph.get("out") else {
            return Ok(());
        };
        let mut filtered = frame::Video::empty();
        while sink.sink().frame(&mut filtered).is_ok() {
            // x264 and the muxer need strictly increasing timestamps.
            let pts = match (filtered.pts(), self.last_pts) {
                (Some(p), Some(last)) if p <= last => last + 1,
                (Some(p), _) => p,
                (None, Some(last)) => last + 1,
                (None, None) => 0,
            };
            self.last_pts = Some(pts);
            filtered.set_pts(Some(pts));
            let duration = filtered.packet().duration;
            let duration = if duration > 0 {
                duration
            } else {
                self.default_duration
            };
            if duration > 0 {
                self.durations.insert(pts, duration);
            }
            filtered.set_kind(picture::Type::None);
            self.enc
                .send_frame(&filtered)
                .map_err(enc_err("encoding video"))?;
            write_packets(
                &mut self.enc,
                self.ost,
                self.enc_tb,
                self.ost_tb,
                octx,
                Some(&mut self.durations),
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let _ = self.dec.send_eof();
        self.drain_decoder(octx)?;
        if let Some((graph, _)) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                let _ = src.source().flush();
            }
        }
        self.drain_graph(octx)?;
        self.enc.send_eof().map_err(enc_err("flushing video"))?;
        write_packets(
            &mut self.enc,
            self.ost,
            self.enc_tb,
            self.ost_tb,
            octx,
            Some(&mut self.durations),
        )
    }
}

/// The audio half of a transcode (AAC).
struct AudioPipe {
    stream: usize,
    in_tb: Rational,
    dec: ffmpeg::decoder::Audio,
    enc: encoder::Audio,
    enc_tb: Rational,
    ost: usize,
    ost_tb: Rational,
    rate: u32,
    channels: u16,
    frame_size: u32,
    graph: Option<(filter::Graph, (u32, i32, u64))>,
    span: Span,
}

impl AudioPipe {
    fn new(
        ictx: &format::context::Input,
        octx: &mut format::context::Output,
        index: usize,
        bitrate: u64,
    ) -> Result<Self, VideoError> {
        let ist = ictx
            .stream(index)
            .ok_or_else(|| VideoError::Decode("audio stream vanished".into()))?;
        let in_tb = ist.time_base();
        let dec = codec::context::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| VideoError::Decode(format!("audio decoder: {e}")))?;
        let codec = encoder::find_by_name("aac")
            .ok_or_else(|| VideoError::Encode("no AAC encoder in this FFmpeg build".into()))?;
        let rate = if AAC_RATES.contains(&dec.rate()) {
            dec.rate()
        } else {
            48_000
        };
        let channels: u16 = if dec.channels() == 1 { 1 } else { 2 };
        let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(enc_err("AAC encoder"))?;
        enc.set_rate(rate as i32);
        let layout = if channels == 1 {
            ffmpeg::ChannelLayout::MONO
        } else {
            ffmpeg::ChannelLayout::STEREO
        };
        enc.set_channel_layout(layout);
        enc.set_channels(i32::from(channels));
        enc.set_format(format::Sample::F32(format::sample::Type::Planar));
        enc.set_bit_rate(usize::try_from(bitrate).unwrap_or(128_000));
        enc.set_time_base(Rational::new(1, rate as i32));
        if global {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let enc = enc.open_as(codec).map_err(enc_err("opening AAC"))?;
        let frame_size = enc.frame_size().max(1);
        let mut ost = octx.add_stream(codec).map_err(enc_err("audio stream"))?;
        ost.set_parameters(&enc);
        ost.set_time_base(Rational::new(1, rate as i32));
        let ost_index = ost.index();
        Ok(AudioPipe {
            stream: index,
            in_tb,
            dec,
            enc,
            enc_tb: Rational::new(1, rate as i32),
            ost: ost_index,
            ost_tb: Rational::new(1, rate as i32),
            rate,
            channels,
            frame_size,
            graph: None,
            span: Span::default(),
        })
    }

    fn send(
        &mut self,
        packet: &Packet,
        octx: &mut format::context::Output,
    ) -> Result<(), VideoError> {
        if let Err(e) = self.dec.send_packet(packet) {
            debug!(error = %e, "audio packet not decodable");
        }
        self.drain_decoder(octx)
    }

    fn drain_decoder(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let mut frame = frame::Audio::empty();
        while self.dec.receive_frame(&mut frame).is_ok() {
            let ts = frame.timestamp();
            frame.set_pts(ts);
            if let (Some(ts), true) = (ts, frame.rate() > 0) {
                self.span.add(
                    ts as f64 * f64::from(self.in_tb),
                    frame.samples() as f64 / f64::from(frame.rate()),
                );
            }
            let key = (
                frame.rate(),
                ffmpeg::ffi::AVSampleFormat::from(frame.format()) as i32,
                frame.channel_layout().bits() | u64::from(frame.channels()) << 56,
            );
            if self.graph.as_ref().map(|(_, k)| *k) != Some(key) {
                let graph = audio_graph(
                    &frame,
                    self.in_tb,
                    self.rate,
                    self.channels,
                    self.frame_size,
                )
                .map_err(enc_err("audio filter graph"))?;
                self.graph = Some((graph, key));
            }
            if let Some((graph, _)) = self.graph.as_mut() {
                if let Some(mut src) = graph.get("in") {
                    src.source().add(&frame).map_err(enc_err("audio filter"))?;
                }
            }
            self.drain_graph(octx)?;
        }
        Ok(())
    }

    fn drain_graph(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let Some((graph, _)) = self.graph.as_mut() else {
            return Ok(());
        };
        let Some(mut sink) = graph.get("out") else {
            return Ok(());
        };
        let sink_tb = sink.sink().time_base();
        let mut filtered = frame::Audio::empty();
        while sink.sink().frame(&mut filtered).is_ok() {
            let pts = filtered.pts().map(|p| p.rescale(sink_tb, self.enc_tb));
            filtered.set_pts(pts);
            self.enc
                .send_frame(&filtered)
                .map_err(enc_err("encoding audio"))?;
            write_packets(
                &mut self.enc,
                self.ost,
                self.enc_tb,
                self.ost_tb,
                octx,
                None,
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let _ = self.dec.send_eof();
        self.drain_decoder(octx)?;
        if let Some((graph, _)) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                let _ = src.source().flush();
            }
        }
        self.drain_graph(octx)?;
        self.enc.send_eof().map_err(enc_err("flushing audio"))?;
        write_packets(
            &mut self.enc,
            self.ost,
            self.enc_tb,
            self.ost_tb,
            octx,
            None,
        )
    }
}

/// Rejects an output whose content ends well before the declared duration
/// (a truncated source).
pub(crate) fn check_complete(declared: f64, content: f64) -> Result<(), VideoError> {
    if declared > 1.0 && content < declared * 0.9 - 0.25 {
        return Err(VideoError::Decode(format!(
            "truncated: {content:.2} s of the declared {declared:.2} s are present"
        )));
    }
    Ok(())
}

/// Transcodes `input` (probed as `probe`) into the MP4 at `output`.
pub(crate) fn transcode(
    input: &Path,
    output: &Path,
    probe: &VideoProbe,
    opts: &VideoOptions,
    deadline: Instant,
    progress: &mut dyn FnMut(u8),
) -> Result<Encoded, VideoError> {
    let started = Instant::now();
    let tone_map = ToneMap::for_source(probe.hdr.as_ref())?;
    let animation = probe.is_animation();
    if animation {
        probe.check_animation_limits(opts)?;
    }
    let mut ictx = format::input(input)
        .map_err(|e| VideoError::NotVideo(format!("FFmpeg cannot open it: {e}")))?;
    let mut octx = format::output_as(output, "mp4").map_err(enc_err("creating the MP4"))?;
    let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

    let vst = ictx
        .stream(probe.video_index)
        .ok_or_else(|| VideoError::NotVideo("video stream vanished".into()))?;
    let in_tb = vst.time_base();
    let frame_rate = positive(vst.avg_frame_rate()).or_else(|| positive(vst.rate()));
    let mut dctx = codec::context::Context::from_parameters(vst.parameters())
        .map_err(|e| VideoError::Decode(format!("video parameters: {e}")))?;
    dctx.set_threading(threading::Config::kind(threading::Type::Frame));
    let dec = dctx
        .decoder()
        .video()
        .map_err(|e| VideoError::Decode(format!("video decoder: {e}")))?;

    let (width, height) = output_size(probe.width, probe.height, opts.max_long_side);
    let enc_tb = positive(in_tb).unwrap_or(Rational::new(1, 90_000));
    let setup = VideoEncoderSetup {
        width,
        height,
        time_base: enc_tb,
        frame_rate,
        global_header,
        bt709: tone_map.is_some(),
    };
    let (enc, codec, pix, encoder_name) = open_video_encoder(&setup, opts)?;
    let vost = {
        let mut ost = octx.add_stream(codec).map_err(enc_err("video stream"))?;
        ost.set_parameters(&enc);
        ost.set_time_base(enc_tb);
        ost.index()
    };
    let mut video = VideoPipe {
        stream: probe.video_index,
        in_tb,
        frame_secs: frame_rate.map_or(0.0, |r| 1.0 / f64::from(r)),
        dec,
        enc,
        enc_tb,
        ost: vost,
        ost_tb: enc_tb,
        target: VideoTarget {
            width,
            height,
            format: pix,
            rotation: probe.rotation,
            limited_range: true,
            tone_map,
        },
        graph: None,
        last_pts: None,
        default_duration: frame_rate.map_or(0, |r| {
            (f64::from(r.invert()) / f64::from(enc_tb)).round() as i64
        }),
        durations: HashMap::new(),
        frames: 0,
        packets: 0,
        errors: 0,
        span: Span::default(),
        max_frames: animation.then_some(opts.max_animation_frames),
        max_seconds: animation.then_some(opts.max_animation_duration.as_secs_f64()),
    };

    let mut audio = match probe.audio_index {
        Some(index) => match AudioPipe::new(&ictx, &mut octx, index, opts.audio_bitrate) {
            Ok(a) => Some(a),
            Err(e) => {
                warn!(error = %e, "audio track dropped");
                None
            }
        },
        None => None,
    };

    octx.write_header_with(mp4_options())
        .map_err(enc_err("writing the MP4 header"))?;
    if let Some(s) = octx.stream(video.ost) {
        video.ost_tb = s.time_base();
    }
    if let Some(a) = audio.as_mut() {
        if let Some(s) = octx.stream(a.ost) {
            a.ost_tb = s.time_base();
        }
    }

    let mut meter = Progress::new(probe.duration);
    let mut packet = Packet::empty();
    let mut bad_reads = 0u32;
    loop {
        check_deadline(deadline, started)?;
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::InvalidData) => {
                bad_reads += 1;
                if bad_reads > 1000 {
                    return Err(VideoError::Decode("too many corrupt packets".into()));
                }
                continue;
            }
            Err(e) => {
                debug!(error = %e, "reading stopped");
                break;
            }
        }
        let index = packet.stream();
        if index == video.stream {
            video.send(&packet, &mut octx)?;
            if let Some(first) = video.span.first {
                meter.update(video.span.end - first, progress);
            }
        } else if let Some(a) = audio.as_mut().filter(|a| a.stream == index) {
            a.send(&packet, &mut octx)?;
        }
    }
    video.finish(&mut octx)?;
    if let Some(a) = audio.as_mut() {
        a.finish(&mut octx)?;
    }
    if video.frames == 0 {
        return Err(VideoError::Decode(format!(
            "no decodable video frame ({} of {} packets failed)",
            video.errors, video.packets
        )));
    }
    if video.errors > 10 && video.errors * 2 > video.packets {
        return Err(VideoError::Decode(format!(
            "corrupt video: {} of {} packets failed to decode",
            video.errors, video.packets
        )));
    }
    octx.write_trailer()
        .map_err(enc_err("writing the MP4 index"))?;

    let first = [Some(&video.span), audio.as_ref().map(|a| &a.span)]
        .into_iter()
        .flatten()
        .filter_map(|s| s.first)
        .fold(f64::INFINITY, f64::min);
    let end = video
        .span
        .end
        .max(audio.as_ref().map_or(0.0, |a| a.span.end));
    let media_seconds = if first.is_finite() {
        (end - first).max(0.0)
    } else {
        0.0
    };
    check_complete(probe.duration, media_seconds)?;
    Ok(Encoded {
        encoder: encoder_name,
        width,
        height,
        media_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_are_even_and_capped() {
        assert_eq!(output_size(1920, 1080, 4096), (1920, 1080));
        assert_eq!(output_size(642, 642, 4096), (642, 642));
        assert_eq!(output_size(641, 359, 4096), (640, 358));
        assert_eq!(output_size(8000, 4000, 4096), (4096, 2048));
        assert_eq!(output_size(1, 1, 4096), (2, 2));
    }

    #[test]
    fn truncation_is_detected() {
        assert!(check_complete(10.0, 9.9).is_ok());
        assert!(check_complete(10.0, 4.0).is_err());
        assert!(check_complete(0.5, 0.1).is_ok());
    }
}
