//! The remux path: the source's H.264 (and AAC) packets copied into a new MP4
//! with `moov` first; nothing is decoded or encoded.

use super::error::{check_deadline, VideoError};
use super::probe::VideoProbe;
use super::progress::Progress;
use super::transcode::{check_complete, mp4_options};
use ffmpeg::{codec, encoder, format, Packet, Rational};
use ffmpeg_next as ffmpeg;
use std::path::Path;
use std::time::Instant;
use tracing::debug;

/// Copies the video stream (and the audio stream, if any) of `input` into
/// the MP4 at `output`. Returns the media seconds written.
pub(crate) fn remux(
    input: &Path,
    output: &Path,
    probe: &VideoProbe,
    deadline: Instant,
    progress: &mut dyn FnMut(u8),
) -> Result<f64, VideoError> {
    let started = Instant::now();
    let enc_err =
        |what: &'static str| move |e: ffmpeg::Error| VideoError::Encode(format!("{what}: {e}"));
    let mut ictx = format::input(input)
        .map_err(|e| VideoError::NotVideo(format!("FFmpeg cannot open it: {e}")))?;
    let mut octx = format::output_as(output, "mp4").map_err(enc_err("creating the MP4"))?;

    // Input stream index -> (output index, input time base, output time base).
    let mut map: Vec<Option<(usize, Rational, Rational)>> = vec![None; ictx.nb_streams() as usize];
    for index in std::iter::once(probe.video_index).chain(probe.audio_index) {
        let ist = ictx
            .stream(index)
            .ok_or_else(|| VideoError::NotVideo("stream vanished".into()))?;
        let mut ost = octx
            .add_stream(encoder::find(codec::Id::None))
            .map_err(enc_err("adding a stream"))?;
        // Codec parameters only: no metadata, no display matrix.
        ost.set_parameters(ist.parameters());
        ost.set_time_base(ist.time_base());
        if let Some(slot) = map.get_mut(index) {
            *slot = Some((ost.index(), ist.time_base(), ist.time_base()));
        }
    }
    octx.write_header_with(mp4_options())
        .map_err(enc_err("writing the MP4 header"))?;
    for (ost, _, ost_tb) in map.iter_mut().flatten() {
        if let Some(s) = octx.stream(*ost) {
            *ost_tb = s.time_base();
        }
    }

    let mut meter = Progress::new(probe.duration);
    let mut first = f64::INFINITY;
    let mut end = 0.0f64;
    let mut video_packets = 0u64;
    let mut packet = Packet::empty();
    loop {
        check_deadline(deadline, started)?;
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::InvalidData) => continue,
            Err(e) => {
                debug!(error = %e, "reading stopped");
                break;
            }
        }
        let index = packet.stream();
        let Some(Some((ost, ist_tb, ost_tb))) = map.get(index).copied() else {
            continue;
        };
        if let Some(pts) = packet.pts().or(packet.dts()) {
            let start = pts as f64 * f64::from(ist_tb);
            let dur = packet.duration().max(0) as f64 * f64::from(ist_tb);
            first = first.min(start);
            end = end.max(start + dur);
        }
        if index == probe.video_index {
            video_packets += 1;
            if first.is_finite() {
                meter.update(end - first, progress);
            }
        }
        packet.rescale_ts(ist_tb, ost_tb);
        packet.set_position(-1);
        packet.set_stream(ost);
        packet
            .write_interleaved(&mut octx)
            .map_err(enc_err("writing a packet"))?;
    }
    if video_packets == 0 {
        return Err(VideoError::Decode("no video packets".into()));
    }
    octx.write_trailer()
        .map_err(enc_err("writing the MP4 index"))?;
    let media = if first.is_finite() {
        (end - first).max(0.0)
    } else {
        0.0
    };
    check_complete(probe.duration, media)?;
    Ok(media)
}
