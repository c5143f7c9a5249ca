//! HDR and rotated video on real files: PQ (HDR10), HLG and Dolby Vision
//! sources are tone-mapped to SDR BT.709 for the AVC transcode and the
//! poster, the MP4 is tagged BT.709, rotation is applied, and Dolby Vision
//! profile 5 fails for good.
//!
//! The reference rendering is FFmpeg's CLI with the same `zscale` +
//! `tonemap` graph; "washed out" is caught by comparing the mean chroma
//! (max − min of RGB) with a naive conversion that ignores the transfer.
//!
//! Inputs: `../shared/corpus` (or `THUMBFARM_CORPUS`); HLG, rotated and
//! Dolby Vision clips are made from the corpus' HDR10 clip here with the
//! `ffmpeg` CLI (libx265) and `ffmpeg-next`. A missing input fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use thumbfarm_shared::manifest::HdrTransfer;
use thumbfarm_shared::sizes::Size;
use thumbfarm_worker::render::RenderOptions;
use thumbfarm_worker::video::{
    extract_poster, probe_file, render_poster_file, transcode_file, VideoError, VideoOptions,
    VideoPath, VideoTransfer,
};

const HDR10: &str = "ext/video/hdr10-video-with-sdr-container.mp4";

fn corpus(rel: &str) -> PathBuf {
    let dir = std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    let path = dir.join(rel);
    assert!(
        path.exists(),
        "test input {} is missing: set THUMBFARM_CORPUS to the shared corpus",
        path.display()
    );
    path
}

fn fast() -> VideoOptions {
    VideoOptions {
        preset: "ultrafast".into(),
        ..VideoOptions::default()
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(300)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("ffmpeg/ffprobe on PATH (make deps)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first video stream as `ffprobe` reports it.
fn video_stream(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {}", path.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .expect("a video stream")
}

/// The first frame of `path` as `w`×`h` RGB24, through `filters` (FFmpeg CLI).
fn first_frame_rgb(path: &Path, filters: &str, w: u32, h: u32) -> Vec<u8> {
    let vf = if filters.is_empty() {
        format!("scale={w}:{h},format=rgb24")
    } else {
        format!("{filters},scale={w}:{h},format=rgb24")
    };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf", &vf, "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (w * h * 3) as usize);
    out.stdout
}

/// The reference tone map, as the FFmpeg CLI runs it.
fn reference_graph(curve: &str) -> String {
    format!(
        "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap={curve}:desat=0,\
         zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    )
}

/// Mean luma (BT.709) and mean chroma (max − min of RGB) of RGB24 pixels.
fn luma_chroma(rgb: &[u8]) -> (f64, f64) {
    let n = (rgb.len() / 3) as f64;
    let (mut y, mut c) = (0.0, 0.0);
    for p in rgb.chunks_exact(3) {
        let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
        y += 0.2126 * r + 0.7152 * g + 0.0722 * b;
        c += r.max(g).max(b) - r.min(g).min(b);
    }
    (y / n, c / n)
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// Makes a 640x360 HLG (ARIB STD-B67, BT.2020, 10-bit HEVC) clip from the
/// HDR10 clip, optionally with a `rotate` tag.
fn make_hlg(dir: &Path, rotate: Option<&str>) -> PathBuf {
    let out = dir.join(format!("hlg{}.mp4", rotate.unwrap_or("")));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-i"])
        .arg(corpus(HDR10))
        .args([
            "-t",
            "1",
            "-vf",
            "zscale=w=640:h=360:tin=smpte2084:min=bt2020nc:pin=bt2020:rin=tv:\
             t=arib-std-b67:m=bt2020nc:p=bt2020:r=tv:npl=1000,format=yuv420p10le",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "arib-std-b67",
            "-colorspace",
            "bt2020nc",
            "-c:a",
            "copy",
        ]);
    run(cmd.arg(&out));
    let Some(r) = rotate else { return out };
    // The `rotate` tag becomes a display matrix only when copying.
    let rotated = dir.join(format!("hlg-rotated{r}.mp4"));
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&out)
        .args(["-c", "copy", "-metadata:s:v:0", &format!("rotate={r}")])
        .arg(&rotated));
    rotated
}

/// Copies the video stream of `src` into an MP4 carrying a Dolby Vision
/// configuration record (`dvcC`) with `profile` and base-layer
/// `compatibility`, as FFmpeg's muxer writes it from stream side data.
fn make_dolby_vision(src: &Path, dst: &Path, profile: u8, compatibility: u8) {
    ffmpeg::init().expect("ffmpeg init");
    let mut ictx = ffmpeg::format::input(&src).expect("open source");
    let ist = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .expect("video stream");
    let (index, in_tb) = (ist.index(), ist.time_base());
    let mut octx = ffmpeg::format::output_as(&dst, "mp4").expect("create mp4");
    {
        let mut ost = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
            .expect("stream");
        ost.set_parameters(ist.parameters());
        ost.set_time_base(in_tb);
        // SAFETY: the stream is live and owned by `octx`; the record is the
        // 8-byte AVDOVIDecoderConfigurationRecord the muxer reads.
        unsafe {
            let st = ost.as_mut_ptr();
            (*(*st).codecpar).codec_tag = 0;
            let data = ffmpeg::ffi::av_stream_new_side_data(
                st,
                ffmpeg::ffi::AVPacketSideDataType::AV_PKT_DATA_DOVI_CONF,
                8,
            );
            assert!(!data.is_null());
            let record = [1u8, 0, profile, 6, 1, 0, 1, compatibility];
            std::ptr::copy_nonoverlapping(record.as_ptr(), data, 8);
        }
    }
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("strict", "unofficial");
    octx.write_header_with(opts).expect("header");
    let out_tb = octx.stream(0).expect("out stream").time_base();
    for (stream, mut packet) in ictx.packets() {
        if stream.index() != index {
            continue;
        }
        packet.rescale_ts(in_tb, out_tb);
        packet.set_position(-1);
        packet.set_stream(0);
        packet.write_interleaved(&mut octx).expect("packet");
    }
    octx.write_trailer().expect("trailer");
}

fn assert_bt709_tagged(out: &Path) -> serde_json::Value {
    let v = video_stream(out);
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(v["color_primaries"], "bt709", "{v}");
    assert_eq!(v["color_transfer"], "bt709", "{v}");
    assert_eq!(v["color_space"], "bt709", "{v}");
    assert_eq!(v["color_range"], "tv", "{v}");
    v
}

/// Transcodes `src`, checks the BT.709 tags, and compares the first frame
/// with FFmpeg's reference tone map (`curve`) and with a naive conversion.
fn check_tone_mapped(src: &Path, curve: &str, expect: (u32, u32)) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let result = transcode_file(src, &out, &fast(), later(), &mut |_| {}).expect("transcode");
    assert_eq!(
        result.path,
        VideoPath::Transcode,
        "an HDR source is never remuxed"
    );
    assert!(
        result
            .transcode_reason
            .as_deref()
            .is_some_and(|r| r.contains("tone-mapped")),
        "{:?}",
        result.transcode_reason
    );
    assert_eq!((result.width, result.height), expect);
    let v = assert_bt709_tagged(&out);
    assert_eq!(
        (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
        (u64::from(expect.0), u64::from(expect.1))
    );

    let (w, h) = (160, 90);
    let ours = first_frame_rgb(&out, "", w, h);
    let reference = first_frame_rgb(src, &reference_graph(curve), w, h);
    let naive = first_frame_rgb(src, "", w, h);
    let d = mean_abs_diff(&ours, &reference);
    assert!(
        d < 6.0,
        "{}: {d:.2} from FFmpeg's tonemap={curve}",
        src.display()
    );
    let (y, c) = luma_chroma(&ours);
    let (ny, nc) = luma_chroma(&naive);
    assert!(
        c > nc * 2.0,
        "{}: washed out: chroma {c:.1} vs naive {nc:.1}",
        src.display()
    );
    assert!(
        (60.0..200.0).contains(&y),
        "mean luma {y:.1} (naive {ny:.1})"
    );
}

#[test]
fn pq_clip_is_tone_mapped_with_hable_and_tagged_bt709() {
    let src = corpus(HDR10);
    let probe = probe_file(&src, &fast()).unwrap();
    let hdr = probe.hdr.expect("the HDR10 clip is HDR");
    assert_eq!(hdr.transfer, Some(VideoTransfer::Pq));
    assert_eq!(hdr.bit_depth, 10);
    check_tone_mapped(&src, "hable", (1920, 1080));
}

#[test]
fn hlg_clip_is_tone_mapped_with_mobius_and_tagged_bt709() {
    let dir = tempfile::tempdir().unwrap();
    let src = make_hlg(dir.path(), None);
    let probe = probe_file(&src, &fast()).unwrap();
    assert_eq!(probe.hdr.and_then(|h| h.transfer), Some(VideoTransfer::Hlg));
    check_tone_mapped(&src, "mobius", (640, 360));
}

#[test]
fn hdr_posters_are_tone_mapped_not_washed_out() {
    let src = corpus(HDR10);
    let poster = extract_poster(&src, &fast()).expect("poster");
    assert_eq!((poster.width, poster.height), (1920, 1080));
    // The same frame from FFmpeg's CLI, full size.
    let reference = first_frame_rgb(&src, &reference_graph("hable"), 1920, 1080);
    let naive = first_frame_rgb(&src, "", 1920, 1080);
    let d = mean_abs_diff(&poster.rgb, &reference);
    assert!(d < 6.0, "poster differs from FFmpeg's tone map by {d:.2}");
    let (_, c) = luma_chroma(&poster.rgb);
    let (_, nc) = luma_chroma(&naive);
    assert!(
        c > nc * 2.0,
        "washed out poster: chroma {c:.1} vs naive {nc:.1}"
    );

    // Through the image cascade, the result says HDR (for the manifest).
    let result = render_poster_file(
        &src,
        &[Size::Fit720.into()],
        &RenderOptions::default(),
        &fast(),
    )
    .expect("poster thumbnails");
    let hdr = result.hdr.expect("recorded as HDR");
    assert_eq!((hdr.transfer, hdr.bit_depth), (Some(HdrTransfer::Pq), 10));
}

#[test]
fn rotated_hdr_clip_comes_out_upright_and_untagged() {
    let dir = tempfile::tempdir().unwrap();
    // FFmpeg 5.1 writes rotate=90 as a display matrix shown 270° clockwise.
    let src = make_hlg(dir.path(), Some("90"));
    let probe = probe_file(&src, &fast()).unwrap();
    assert_eq!((probe.rotation, probe.width, probe.height), (270, 360, 640));
    let out = dir.path().join("out.mp4");
    let result = transcode_file(&src, &out, &fast(), later(), &mut |_| {}).unwrap();
    assert_eq!((result.width, result.height), (360, 640));
    let v = assert_bt709_tagged(&out);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(360), Some(640))
    );
    let rotation_left = v["side_data_list"]
        .as_array()
        .is_some_and(|l| l.iter().any(|sd| sd["rotation"].as_i64().unwrap_or(0) != 0))
        || !v["tags"]["rotate"].is_null();
    assert!(!rotation_left, "rotation metadata left: {v}");
    // Upright as FFmpeg's autorotate + tone map shows it.
    let ours = first_frame_rgb(&out, "", 90, 160);
    let reference = first_frame_rgb(&src, &reference_graph("mobius"), 90, 160);
    let d = mean_abs_diff(&ours, &reference);
    assert!(d < 8.0, "not upright or not tone-mapped: {d:.2}");
    let poster = extract_poster(&src, &fast()).unwrap();
    assert_eq!((poster.width, poster.height), (360, 640));
}

#[test]
fn dolby_vision_profile_8_1_is_mapped_through_its_hdr10_base() {
    let dir = tempfile::tempdir().unwrap();
    let dv = dir.path().join("dv81.mp4");
    make_dolby_vision(&corpus(HDR10), &dv, 8, 1);
    let probe = probe_file(&dv, &fast()).unwrap();
    let hdr = probe.hdr.expect("HDR");
    let record = hdr.dolby_vision.expect("the dvcC record is read");
    assert_eq!((record.profile, record.compatibility), (8, 1));
    let out = dir.path().join("out.mp4");
    let result = transcode_file(&dv, &out, &fast(), later(), &mut |_| {}).unwrap();
    assert_eq!(result.path, VideoPath::Transcode);
    assert_bt709_tagged(&out);
    let manifest = hdr.to_manifest();
    assert_eq!(manifest.dolby_vision.map(|d| d.profile), Some(8));
}

#[test]
fn dolby_vision_profile_5_fails_for_good_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dv = dir.path().join("dv5.mp4");
    make_dolby_vision(&corpus(HDR10), &dv, 5, 0);
    let out = dir.path().join("out.mp4");
    let err = transcode_file(&dv, &out, &fast(), later(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, VideoError::Unsupported(_)), "{err:?}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("Dolby Vision profile 5"), "{err}");
    let err = extract_poster(&dv, &fast()).unwrap_err();
    assert!(matches!(err, VideoError::Unsupported(_)), "{err:?}");
    let err = render_poster_file(
        &dv,
        &[Size::Tile224.into()],
        &RenderOptions::default(),
        &fast(),
    )
    .unwrap_err();
    assert!(err.is_permanent(), "{err}");
}

#[test]
fn sdr_sources_are_not_hdr() {
    let probe = probe_file(&corpus("ext/video/sample_h264_aac.mp4"), &fast()).unwrap();
    assert_eq!(probe.hdr, None);
    let probe = probe_file(&corpus("ext/video/pixel7_videoOnly_cleaned.mp4"), &fast()).unwrap();
    assert_eq!(probe.hdr, None);
}
