//! The video pipeline against real files: every corpus video becomes a
//! playable AVC MP4 (checked with `ffprobe`, which `make deps` installs),
//! H.264 MP4 sources are remuxed, rotated clips come out upright, posters go
//! through the image cascade, and hostile or over-limit input fails for good.
//!
//! The corpus is `$THUMBFARM_CORPUS`, or `shared/corpus` beside the workspace.
//! Encodes use `preset=ultrafast` to keep the suite fast.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use thumbfarm_shared::Rendition;

use thumbfarm_shared::sizes::{Size, SizeLimits};
use thumbfarm_worker::render::RenderOptions;
use thumbfarm_worker::video::{
    self, extract_poster, probe_file, render_poster_file, transcode_file, VideoError, VideoOptions,
    VideoPath,
};

/// The corpus folder; fails the test, naming `THUMBFARM_CORPUS`, when it is
/// missing (a test never passes without its input).
fn corpus() -> PathBuf {
    let dir = std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.is_dir(),
        "test input missing: corpus not found at {} (set THUMBFARM_CORPUS)",
        dir.display()
    );
    dir
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

/// `ffprobe` as JSON.
fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (installed by `make deps`)");
    assert!(
        out.status.success(),
        "ffprobe {}: {:?}",
        path.display(),
        out
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn format_duration(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

fn video_stream(probe: &serde_json::Value) -> serde_json::Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .expect("a video stream")
}

/// The top-level box types of an MP4 file, in order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).expect("read mp4");
    let mut boxes = Vec::new();
    let mut i = 0usize;
    while i + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[i + 4..i + 8]).to_string();
        if size == 1 && i + 16 <= data.len() {
            size = u64::from_be_bytes(data[i + 8..i + 16].try_into().unwrap());
        } else if size == 0 {
            size = (data.len() - i) as u64;
        }
        boxes.push(kind);
        if size < 8 {
            break;
        }
        i += size as usize;
    }
    boxes
}

/// Asserts that `out` is a streamable AVC MP4 of `src`.
fn assert_playable(src: &Path, out: &Path) -> serde_json::Value {
    let name = src.file_name().unwrap().to_string_lossy().to_string();
    let boxes = top_level_boxes(out);
    let moov = boxes.iter().position(|b| b == "moov");
    let mdat = boxes.iter().position(|b| b == "mdat");
    assert!(
        matches!((moov, mdat), (Some(m), Some(d)) if m < d),
        "{name}: moov must come before mdat: {boxes:?}"
    );
    let p = ffprobe(out);
    let v = video_stream(&p);
    assert_eq!(v["codec_name"], "h264", "{name}");
    assert_eq!(v["pix_fmt"], "yuv420p", "{name}");
    let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
    assert!(w % 2 == 0 && h % 2 == 0, "{name}: odd size {w}x{h}");
    let no_rotation = v["side_data_list"]
        .as_array()
        .is_none_or(|l| l.iter().all(|sd| sd["rotation"].as_i64().unwrap_or(0) == 0))
        && v["tags"]["rotate"].is_null();
    assert!(no_rotation, "{name}: rotation metadata left: {v}");
    for s in p["streams"].as_array().unwrap() {
        if s["codec_type"] == "audio" {
            assert_eq!(s["codec_name"], "aac", "{name}");
        }
    }
    let (ds, dout) = (format_duration(&ffprobe(src)), format_duration(&p));
    assert!(
        (ds - dout).abs() <= 0.1,
        "{name}: duration {dout:.3} s, source {ds:.3} s"
    );
    // Every frame decodes.
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(out)
        .args(["-f", "null", "-"])
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "{name}: output does not decode");
    p
}

/// Checks the poster thumbnails of a video.
fn assert_poster_sizes(src: &Path, display: (u32, u32)) {
    let sizes: Vec<Rendition> = SizeLimits::default()
        .pregenerated()
        .into_iter()
        .map(Rendition::from)
        .collect();
    let result = render_poster_file(src, &sizes, &RenderOptions::default(), &fast())
        .unwrap_or_else(|e| panic!("{}: poster: {e}", src.display()));
    assert_eq!((result.width, result.height), display, "{}", src.display());
    // The poster gets a ThumbHash of the video's shape, from the same pixels.
    let hash = result.thumbhash.as_deref().expect("a poster ThumbHash");
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(hash).expect("ThumbHash");
    let want = display.0 as f32 / display.1 as f32;
    assert!(
        (ratio - want).abs() / want < 0.2,
        "{}: ThumbHash aspect {ratio}, video {want}",
        src.display()
    );
    assert!(result.media_type.starts_with("video/") || result.media_type == "image/gif");
    let get = |s: Size| result.outputs.iter().find(|o| o.size == s);
    for tile in [Size::Tile50, Size::Tile100, Size::Tile224, Size::Tile500] {
        let o = get(tile).unwrap_or_else(|| panic!("{}: no {tile:?}", src.display()));
        let side = tile.long_side();
        assert_eq!((o.width, o.height), (side, side), "{tile:?}");
        let img = image::load_from_memory(&o.bytes).expect("decodes");
        assert_eq!((img.width(), img.height()), (side, side));
    }
    let fit = get(Size::Fit720).expect("fit_720");
    let (dw, dh) = display;
    let scale = (720.0 / f64::from(dw.max(dh))).min(1.0);
    let expect_long = (f64::from(dw.max(dh)) * scale).round() as u32;
    assert_eq!(fit.width.max(fit.height), expect_long, "{}", src.display());
    assert_eq!(fit.width >= fit.height, dw >= dh, "orientation kept");
    assert!(get(Size::Colors).is_some());
}

#[test]
fn every_corpus_video_becomes_a_streamable_avc_mp4() {
    let corpus = corpus();
    let cases: &[(&str, VideoPath)] = &[
        ("seed/christmas.mp4", VideoPath::Remux),
        ("seed/example.mp4", VideoPath::Remux),
        ("seed/earth.mov", VideoPath::Remux),
        ("seed/earth.avi", VideoPath::Transcode),
        ("ext/video/sample_h264_aac.mp4", VideoPath::Remux),
        (
            "ext/video/pixel7_videoOnly_cleaned.mp4",
            VideoPath::Transcode,
        ),
        (
            "ext/video/bbb_1920x1080_60fps_vp8.webm",
            VideoPath::Transcode,
        ),
        (
            "ext/video/bbb_642x642_768kbps_30fps_vp9.webm",
            VideoPath::Transcode,
        ),
        ("ext/video/roadtrip-vp92-10bit.webm", VideoPath::Transcode),
        ("ext/video/sample_av1.mp4", VideoPath::Transcode),
        (
            "ext/video/hdr10-video-with-sdr-container.mp4",
            VideoPath::Transcode,
        ),
        ("ext/formats/animated-loop-3.gif", VideoPath::Transcode),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut table = Vec::new();
    for (rel, expect_path) in cases {
        let src = corpus.join(rel);
        let out = dir.path().join("out.mp4");
        let mut progress = Vec::new();
        let result = transcode_file(&src, &out, &fast(), later(), &mut |p| progress.push(p))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            result.path, *expect_path,
            "{rel}: {:?}",
            result.transcode_reason
        );
        match result.path {
            VideoPath::Remux => assert!(result.encoder.is_none()),
            VideoPath::Transcode => assert_eq!(result.encoder.as_deref(), Some("libx264")),
        }
        let p = assert_playable(&src, &out);
        let v = video_stream(&p);
        assert_eq!(
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
            (u64::from(result.width), u64::from(result.height)),
            "{rel}"
        );
        // Long sources report progress every 10 %.
        if result.source.duration >= 10.0 {
            assert_eq!(progress, vec![10, 20, 30, 40, 50, 60, 70, 80, 90], "{rel}");
        }
        assert_poster_sizes(&src, (result.source.width, result.source.height));
        table.push(format!(
            "{rel}: {:?} {}x{} {:.2} s media in {:.2} s ({:.1}x), {} bytes",
            result.path,
            result.width,
            result.height,
            result.media_seconds,
            result.wall_seconds,
            result.speed(),
            result.bytes
        ));
        std::fs::remove_file(&out).unwrap();
    }
    eprintln!("{}", table.join("\n"));
}

/// An MD5 of the video elementary stream (`-c copy`, so identical bitstreams
/// give identical sums).
fn video_stream_md5(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "md5",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn h264_mp4_is_remuxed_bit_for_bit() {
    let corpus = corpus();
    let src = corpus.join("seed/example.mp4");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let result = transcode_file(&src, &out, &fast(), later(), &mut |_| {}).unwrap();
    assert_eq!(result.path, VideoPath::Remux);
    assert!(result.encoder.is_none() && result.transcode_reason.is_none());
    // The source has mdat before moov; the remux has moov first.
    assert_eq!(
        top_level_boxes(&src).last().map(String::as_str),
        Some("moov")
    );
    assert_playable(&src, &out);
    assert_eq!(video_stream_md5(&src), video_stream_md5(&out), "re-encoded");
}

/// A small grey thumbnail of the first frame, as FFmpeg's CLI shows it
/// (`autorotate` on or off).
fn first_frame_gray(path: &Path, autorotate: bool, w: u32, h: u32) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if !autorotate {
        cmd.arg("-noautorotate");
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("scale={w}:{h}"))
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// Transcodes a rotated clip and checks it against FFmpeg's own autorotate
/// (`compare`: pixel by pixel, for clips whose first frame has content).
fn check_upright(src: &Path, coded: (u32, u32), rotation: u16, compare: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let result = transcode_file(src, &out, &fast(), later(), &mut |_| {}).unwrap();
    assert_eq!(result.source.rotation, rotation);
    assert_eq!(result.path, VideoPath::Transcode);
    let expect = if rotation % 180 == 90 {
        (coded.1, coded.0)
    } else {
        coded
    };
    assert_eq!((result.width, result.height), expect);
    assert_playable(src, &out);
    if compare {
        let (w, h) = (expect.0 / 8, expect.1 / 8);
        let ours = first_frame_gray(&out, true, w, h);
        let reference = first_frame_gray(src, true, w, h);
        let d = mean_abs_diff(&ours, &reference);
        assert!(
            d < 6.0,
            "{}: differs from FFmpeg's autorotate by {d:.1}",
            src.display()
        );
        if rotation == 180 {
            let unrotated = first_frame_gray(src, false, w, h);
            let u = mean_abs_diff(&ours, &unrotated);
            assert!(u > d + 5.0, "the picture was not turned ({u:.1} vs {d:.1})");
        }
    }
    // The poster is upright too.
    let poster = extract_poster(src, &fast()).unwrap();
    assert_eq!((poster.width, poster.height), expect);
}

#[test]
fn rotated_clips_come_out_upright() {
    let corpus = corpus();
    // A real phone recording with a 180° display matrix.
    // (Its frames are nearly black: sizes and metadata only.)
    check_upright(
        &corpus.join("ext/video/pixel7_videoOnly_cleaned.mp4"),
        (1920, 1080),
        180,
        false,
    );
    // Clips made here (the `rotate` tag becomes a display matrix), compared
    // pixel by pixel with FFmpeg's autorotate.
    let dir = tempfile::tempdir().unwrap();
    // FFmpeg 5.1's MP4 muxer writes `rotate=90` as a display matrix of +90°
    // counter-clockwise, which its CLI shows turned 270° clockwise: what
    // matters is that the pixels match FFmpeg's own autorotate below.
    for (tag, expect) in [("90", 270u16), ("180", 180u16), ("270", 90u16)] {
        let rotated = dir.path().join(format!("rot{tag}.mp4"));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(corpus.join("seed/christmas.mp4"))
            .args(["-c", "copy", "-metadata:s:v:0"])
            .arg(format!("rotate={tag}"))
            .arg(&rotated)
            .status()
            .expect("ffmpeg");
        assert!(status.success());
        check_upright(&rotated, (640, 416), expect, true);
    }
}

#[test]
fn poster_offsets_follow_photoprism() {
    let corpus = corpus();
    // 30.6 s: the frame at 3 s.
    let poster = extract_poster(&corpus.join("seed/earth.mov"), &fast()).unwrap();
    assert!((poster.at - 3.0).abs() < 0.1, "at {}", poster.at);
    assert_eq!((poster.width, poster.height), (480, 270));
    assert_eq!(poster.rgb.len(), 480 * 270 * 3);
    // 0.8 s: the first frame.
    let poster = extract_poster(&corpus.join("seed/christmas.mp4"), &fast()).unwrap();
    assert!(poster.at < 0.1, "at {}", poster.at);
    assert_eq!(video::poster_offset(30.6), 3.0);
}

#[test]
fn long_side_is_capped_and_dimensions_even() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let opts = VideoOptions {
        max_long_side: 640,
        ..fast()
    };
    // 1080x720 H.264: remuxable, but too large: transcoded to 640x426.
    let src = corpus.join("ext/video/sample_h264_aac.mp4");
    let result = transcode_file(&src, &out, &opts, later(), &mut |_| {}).unwrap();
    assert_eq!(result.path, VideoPath::Transcode);
    assert!(result.transcode_reason.unwrap().contains("long side"));
    assert_eq!((result.width, result.height), (640, 426));
    let v = video_stream(&assert_playable(&src, &out));
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(426))
    );
}

#[test]
fn hardware_encoder_falls_back_to_libx264() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let src = corpus.join("ext/video/roadtrip-vp92-10bit.webm");
    for encoder in ["h264_vaapi", "h264_qsv", "h264_nvenc"] {
        let opts = VideoOptions {
            encoder: encoder.into(),
            ..fast()
        };
        let result = transcode_file(&src, &out, &opts, later(), &mut |_| {}).unwrap();
        let used = result.encoder.unwrap();
        let gpu = Path::new("/dev/nvidia0").exists() || Path::new("/dev/dri").exists();
        if !gpu {
            assert_eq!(used, "libx264", "{encoder} without a device");
        } else {
            assert!(used == "libx264" || used == encoder, "{used}");
        }
        assert_playable(&src, &out);
    }
}

#[test]
fn hostile_truncated_and_non_video_inputs_fail_for_good() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let truncate = |rel: &str, keep: f64, name: &str| -> PathBuf {
        let data = std::fs::read(corpus.join(rel)).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &data[..(data.len() as f64 * keep) as usize]).unwrap();
        path
    };
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"this is not a video at all\n".repeat(100)).unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let cases = [
        corpus.join("ext/hostile/invalid-bitstream.webm"),
        // moov first, mdat cut: the packets run out early.
        truncate("ext/video/sample_h264_aac.mp4", 0.4, "cut-mdat.mp4"),
        // mdat first, moov cut off: nothing to index.
        truncate("seed/earth.mov", 0.5, "cut-moov.mov"),
        // A video that needs decoding, cut.
        truncate(
            "ext/video/bbb_642x642_768kbps_30fps_vp9.webm",
            0.3,
            "cut.webm",
        ),
        corpus.join("seed/elephants.jpg"),
        text,
        empty,
    ];
    for src in &cases {
        let out = dir.path().join("out.mp4");
        let err = transcode_file(src, &out, &fast(), later(), &mut |_| {})
            .expect_err(&format!("{} must fail", src.display()));
        assert!(err.is_permanent(), "{}: {err}", src.display());
        assert!(!err.to_string().is_empty());
        eprintln!("{}: {err}", src.file_name().unwrap().to_string_lossy());
        assert!(
            extract_poster(src, &fast()).is_err() || src.to_string_lossy().contains("cut"),
            "{}: poster",
            src.display()
        );
    }
}

#[test]
fn limits_fail_with_a_reason() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let earth = corpus.join("seed/earth.mov");
    let bbb = corpus.join("ext/video/bbb_1920x1080_60fps_vp8.webm");
    let too_long = VideoOptions {
        max_duration: Duration::from_secs(10),
        ..fast()
    };
    let too_wide = VideoOptions {
        max_input_dimension: 1280,
        ..fast()
    };
    let too_big = VideoOptions {
        max_input_bytes: 1000,
        ..fast()
    };
    for (src, opts, needle) in [
        (&earth, &too_long, "duration"),
        (&bbb, &too_wide, "1920x1080"),
        (&earth, &too_big, "bytes"),
    ] {
        match transcode_file(src, &out, opts, later(), &mut |_| {}) {
            Err(e @ VideoError::TooLarge(_)) => {
                assert!(e.is_permanent());
                assert!(e.to_string().contains(needle), "{e}");
            }
            other => panic!("{}: {other:?}", src.display()),
        }
    }
    // The wall-clock limit: a deadline already passed.
    let err = transcode_file(&earth, &out, &fast(), Instant::now(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, VideoError::Timeout(_)), "{err}");
    assert!(err.is_permanent());
    // Probing alone reports the facts.
    let p = probe_file(&earth, &fast()).unwrap();
    assert_eq!((p.width, p.height, p.rotation), (480, 270, 0));
    assert_eq!(p.video_codec, "h264");
    assert_eq!(p.audio_codec.as_deref(), Some("aac"));
    assert!(p.remux_blocker(&fast()).is_none());
}
