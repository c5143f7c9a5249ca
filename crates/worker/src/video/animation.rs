//! Animated WebP as a short AVC MP4.
//!
//! FFmpeg 5.1 has no animated-WebP decoder, so the frames come from the
//! `image` crate (composited onto the canvas, alpha flattened onto white as
//! for the stills) and are encoded with libx264 through `ffmpeg-next`, each
//! frame shown for its own delay. Animated GIF and APNG take the normal
//! FFmpeg path (`transcode.rs`), under the same limits: frames, duration and
//! pixels per frame ([`VideoOptions`]), over which the job fails for good.

use super::error::{check_deadline, VideoError};
use super::options::VideoOptions;
use super::probe::VideoProbe;
use super::transcode::{
    mp4_options, open_video_encoder, output_size, write_packets, Encoded, VideoEncoderSetup,
};
use ffmpeg::software::scaling;
use ffmpeg::{format, frame, Rational};
use ffmpeg_next as ffmpeg;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, ImageDecoder, RgbaImage};
use std::collections::HashMap;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

/// Frames shown for less than this (0 included) are shown for
/// [`DEFAULT_DELAY_MS`], as browsers do.
const MIN_DELAY_MS: i64 = 10;
/// The delay given to frames without a usable one.
const DEFAULT_DELAY_MS: i64 = 100;

/// Reads an animated WebP's header: the probe the transcode result reports.
pub(crate) fn probe_animated_webp(
    input: &Path,
    opts: &VideoOptions,
) -> Result<VideoProbe, VideoError> {
    let file = std::fs::File::open(input)?;
    let dec = WebPDecoder::new(BufReader::new(file))
        .map_err(|e| VideoError::NotVideo(format!("not a WebP: {e}")))?;
    if !dec.has_animation() {
        return Err(VideoError::NotVideo(
            "a still WebP, not an animation".into(),
        ));
    }
    let (width, height) = dec.dimensions();
    check_canvas(width, height, opts)?;
    Ok(VideoProbe {
        container: "webp".into(),
        media_type: "image/webp",
        duration: 0.0,
        bit_rate: 0,
        video_index: 0,
        video_codec: "webp".into(),
        pixel_format: "rgba".into(),
        coded_width: width,
        coded_height: height,
        rotation: 0,
        width,
        height,
        frame_rate: 0.0,
        audio_index: None,
        audio_codec: None,
        hdr: None,
    })
}

fn check_canvas(width: u32, height: u32, opts: &VideoOptions) -> Result<(), VideoError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(VideoError::Decode(format!(
            "animation canvas is {width}x{height}"
        )));
    }
    if pixels > opts.max_animation_pixels || width.max(height) > opts.max_input_dimension {
        return Err(VideoError::TooLarge(format!(
            "animation frames of {width}x{height} ({pixels} pixels), over the {} pixel limit",
            opts.max_animation_pixels
        )));
    }
    Ok(())
}

/// Encodes the animated WebP at `input` into the MP4 at `output`.
pub(crate) fn transcode_animated_webp(
    input: &Path,
    output: &Path,
    probe: &VideoProbe,
    opts: &VideoOptions,
    deadline: Instant,
) -> Result<Encoded, VideoError> {
    let started = Instant::now();
    let enc_err =
        |what: &'static str| move |e: ffmpeg::Error| VideoError::Encode(format!("{what}: {e}"));
    let file = std::fs::File::open(input)?;
    let dec = WebPDecoder::new(BufReader::new(file))
        .map_err(|e| VideoError::NotVideo(format!("not a WebP: {e}")))?;
    let (cw, ch) = (probe.coded_width, probe.coded_height);
    let (width, height) = output_size(cw, ch, opts.max_long_side);

    let mut octx = format::output_as(output, "mp4").map_err(enc_err("creating the MP4"))?;
    let time_base = Rational::new(1, 1000);
    let setup = VideoEncoderSetup {
        width,
        height,
        time_base,
        frame_rate: None,
        global_header: octx.format().flags().contains(format::Flags::GLOBAL_HEADER),
        bt709: false,
    };
    // Frames are converted to yuv420p here: a software encoder takes them.
    let software = VideoOptions {
        encoder: "libx264".into(),
        ..opts.clone()
    };
    let (mut enc, codec, _, encoder) = open_video_encoder(&setup, &software)?;
    {
        let mut ost = octx.add_stream(codec).map_err(enc_err("video stream"))?;
        ost.set_parameters(&enc);
        ost.set_time_base(time_base);
    }
    octx.write_header_with(mp4_options())
        .map_err(enc_err("writing the MP4 header"))?;
    let ost_tb = octx.stream(0).map_or(time_base, |s| s.time_base());
    let mut scaler = scaling::Context::get(
        format::Pixel::RGB24,
        cw,
        ch,
        format::Pixel::YUV420P,
        width,
        height,
        scaling::Flags::BICUBIC,
    )
    .map_err(enc_err("scaler"))?;

    let max_ms = i64::try_from(opts.max_animation_duration.as_millis()).unwrap_or(i64::MAX);
    let mut durations = HashMap::new();
    let mut rgb = frame::Video::new(format::Pixel::RGB24, cw, ch);
    let mut t_ms = 0i64;
    let mut frames = 0u64;
    for item in dec.into_frames() {
        check_deadline(deadline, started)?;
        let item = item.map_err(|e| VideoError::Decode(format!("animation frame: {e}")))?;
        frames += 1;
        if frames > opts.max_animation_frames {
            return Err(VideoError::TooLarge(format!(
                "animation has more than {} frames",
                opts.max_animation_frames
            )));
        }
        let (num, den) = item.delay().numer_denom_ms();
        let delay = (f64::from(num) / f64::from(den.max(1))).round() as i64;
        let delay = if delay < MIN_DELAY_MS {
            DEFAULT_DELAY_MS
        } else {
            delay
        };
        if t_ms + delay > max_ms {
            return Err(VideoError::TooLarge(format!(
                "animation runs longer than the {} s limit",
                opts.max_animation_duration.as_secs()
            )));
        }
        let (left, top) = (item.left(), item.top());
        fill_on_white(&mut rgb, &item.into_buffer(), left, top);
        let mut yuv = frame::Video::empty();
        scaler.run(&rgb, &mut yuv).map_err(enc_err("scaling"))?;
        yuv.set_pts(Some(t_ms));
        durations.insert(t_ms, delay);
        enc.send_frame(&yuv).map_err(enc_err("encoding video"))?;
        write_packets(
            &mut enc,
            0,
            time_base,
            ost_tb,
            &mut octx,
            Some(&mut durations),
        )?;
        t_ms += delay;
    }
    if frames == 0 {
        return Err(VideoError::Decode("animation without frames".into()));
    }
    enc.send_eof().map_err(enc_err("flushing video"))?;
    write_packets(
        &mut enc,
        0,
        time_base,
        ost_tb,
        &mut octx,
        Some(&mut durations),
    )?;
    octx.write_trailer()
        .map_err(enc_err("writing the MP4 index"))?;
    Ok(Encoded {
        encoder,
        width,
        height,
        media_seconds: t_ms as f64 / 1000.0,
    })
}

/// Writes `canvas` (RGBA) at (`left`, `top`) into the RGB24 `out`,
/// compositing alpha onto white; pixels it does not cover become white.
fn fill_on_white(out: &mut frame::Video, canvas: &RgbaImage, left: u32, top: u32) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let stride = out.stride(0);
    let data = out.data_mut(0);
    for y in 0..h {
        let Some(row) = data.get_mut(y * stride..y * stride + w * 3) else {
            return;
        };
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let source = (x as u32)
                .checked_sub(left)
                .zip((y as u32).checked_sub(top))
                .and_then(|(sx, sy)| canvas.get_pixel_checked(sx, sy));
            match source {
                Some(p) => {
                    let a = u32::from(p[3]);
                    for c in 0..3 {
                        px[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
                    }
                }
                None => px.fill(255),
            }
        }
    }
}
