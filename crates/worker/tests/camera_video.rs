//! Videos of stills on real files: motion photos (Pixel JPEG, Samsung and
//! Google HEIC), Apple Live Photo pairs, and animated GIF/APNG/WebP, through
//! the real jobs over a local store, with the outputs checked by `ffprobe`.
//!
//! Inputs: `../shared/corpus` (or `THUMBFARM_CORPUS`). A missing input fails.

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use thumbfarm_shared::manifest::{Manifest, VideoKind};
use thumbfarm_shared::messages::{RenderJob, SourceRef, TranscodeJob, V1};
use thumbfarm_shared::motion_photo::{find_embedded_video, MotionPhotoError, MotionPhotoLayout};
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::store::{self, LocalStore, Store};
use thumbfarm_shared::{AssetHash, Size};
use thumbfarm_worker::jobs::{render_job, transcode_job, JobContext};
use thumbfarm_worker::live_photo::{photo_content_id, video_content_id};
use thumbfarm_worker::render::{render_bytes, RenderOptions};
use thumbfarm_worker::video::{transcode_file, VideoError, VideoOptions, VideoPath};
use thumbfarm_worker::WorkerOptions;

const PIXEL: &str = "raw/PXL_20200710_061629144.MP.jpg";
const SAMSUNG: &str = "raw/samsung_sm-s906u_motion_photo.heic";
const GOOGLE_HEIC: &str = "ext/formats/sample_MP.heic";
const LIVE_JPG: &str = "raw/iphone6s_livephoto.jpg";
const LIVE_MOV: &str = "raw/iphone6s_livephoto.mov";
const LIVE_ID: &str = "E905E6C6-C747-4805-942F-9904A0281F02";

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

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(corpus(rel)).expect("read corpus file")
}

fn fast() -> VideoOptions {
    VideoOptions {
        preset: "ultrafast".into(),
        ..VideoOptions::default()
    }
}

fn worker_options() -> WorkerOptions {
    WorkerOptions {
        video: fast(),
        ..WorkerOptions::default()
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(300)
}

/// The first video stream and the format of `path`, as `ffprobe` counts them.
fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (make deps)");
    assert!(out.status.success(), "ffprobe {}", path.display());
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn video_stream(p: &serde_json::Value) -> &serde_json::Value {
    p["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .expect("a video stream")
}

fn dims(v: &serde_json::Value) -> (u64, u64) {
    (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
}

fn no_rotation(v: &serde_json::Value) -> bool {
    v["side_data_list"]
        .as_array()
        .is_none_or(|l| l.iter().all(|sd| sd["rotation"].as_i64().unwrap_or(0) == 0))
        && v["tags"]["rotate"].is_null()
}

/// A local store holding `files` as originals; returns their sources.
async fn store_with(
    dir: &Path,
    files: &[(&[u8], &str)],
) -> (LocalStore, Vec<(AssetHash, SourceRef)>) {
    let store = LocalStore::open(dir).expect("store");
    let layout = thumbfarm_shared::KeyLayout::default();
    let mut out = Vec::new();
    for (data, ext) in files {
        let hash = AssetHash::of_bytes(data);
        let key = layout.original(&hash, ext);
        store
            .put(
                &key,
                Bytes::copy_from_slice(data),
                "application/octet-stream",
            )
            .await
            .expect("put original");
        out.push((hash, SourceRef { bucket: None, key }));
    }
    (store, out)
}

fn render(hash: AssetHash, source: &SourceRef, media_type: Option<&str>) -> RenderJob {
    RenderJob {
        v: V1,
        hash: Some(hash),
        source: source.clone(),
        sizes: vec![Size::Tile224.into()],
        force: false,
        media_type: media_type.map(str::to_string),
    }
}

fn transcode(hash: AssetHash, source: &SourceRef) -> TranscodeJob {
    TranscodeJob {
        v: V1,
        hash: Some(hash),
        source: source.clone(),
        format: "avc".into(),
        force: false,
    }
}

async fn manifest(store: &dyn Store, hash: &AssetHash) -> Manifest {
    let key = thumbfarm_shared::KeyLayout::default().manifest(hash);
    store::get_json::<Manifest>(store, &key)
        .await
        .expect("read manifest")
        .expect("manifest written")
}

fn stored_video(dir: &Path, hash: &AssetHash) -> PathBuf {
    let key = thumbfarm_shared::KeyLayout::default().video(hash);
    let path = dir.join(key);
    assert!(path.exists(), "no video stored at {}", path.display());
    path
}

// ---------------------------------------------------------------- motion photos

#[test]
fn motion_photo_offsets_match_the_corpus_notes() {
    // SOURCES.md: the Pixel's primary JPEG ends at 2728123, the MP4 runs to EOF.
    let pixel = read(PIXEL);
    let found = find_embedded_video(&pixel)
        .unwrap()
        .expect("a motion photo");
    assert_eq!(found.layout, MotionPhotoLayout::GoogleContainer);
    assert_eq!((found.offset, found.length), (2_728_123, 1_317_283));
    // The Samsung HEIC: XMP Container:Directory too, and the mpvd box at 452276.
    let samsung = read(SAMSUNG);
    let found = find_embedded_video(&samsung)
        .unwrap()
        .expect("a motion photo");
    assert_eq!(found.offset, 452_276 + 8, "{found:?}");
    let google = read(GOOGLE_HEIC);
    let found = find_embedded_video(&google)
        .unwrap()
        .expect("a motion photo");
    assert_eq!(
        &google[found.offset as usize + 4..found.offset as usize + 8],
        b"ftyp"
    );
    // Plain stills are no motion photos.
    assert_eq!(find_embedded_video(&read(LIVE_JPG)), Ok(None));
    assert_eq!(
        find_embedded_video(&read("seed/iphone_15_pro.heic")),
        Ok(None)
    );
}

#[test]
fn damaged_motion_photos_fail_with_a_reason() {
    let pixel = read(PIXEL);
    // Cut before the declared video start: the length reaches past the start.
    let err = find_embedded_video(&pixel[..1_000_000]).unwrap_err();
    assert!(matches!(err, MotionPhotoError::PastEnd { .. }), "{err}");
    // Garbage where the MP4 should be.
    let mut garbage = pixel.clone();
    for b in &mut garbage[2_728_123..2_728_200] {
        *b = 0x5A;
    }
    let err = find_embedded_video(&garbage).unwrap_err();
    assert!(matches!(err, MotionPhotoError::NoVideo { .. }), "{err}");
    // Cut short at every 4 KiB step through the trailer: no panic.
    for cut in (2_700_000..pixel.len()).step_by(4096) {
        let _ = find_embedded_video(&pixel[..cut]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixel_motion_photo_is_rendered_and_its_video_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let pixel = read(PIXEL);
    let (store, srcs) = store_with(dir.path(), &[(&pixel, "jpg")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];

    let done = render_job(&ctx, &render(*hash, source, Some("image/jpeg")))
        .await
        .expect("the still renders as usual");
    assert!(done.stored.contains(&Size::Tile224.into()));
    let m = manifest(&store, hash).await;
    let video = m.video.clone().expect("recorded as a motion photo");
    assert_eq!(video.kind, VideoKind::MotionPhoto);
    assert_eq!(
        (video.offset, video.length),
        (Some(2_728_123), Some(1_317_283))
    );
    assert_eq!((m.width, m.height), (4032, 3024));

    let done = transcode_job(&ctx, &transcode(*hash, source))
        .await
        .expect("transcode");
    let result = done.result.expect("made");
    // The Pixel 3a wrote full-range (yuvj420p) H.264: encoded, like any such video.
    assert_eq!(result.path, VideoPath::Transcode);
    assert!(
        result
            .transcode_reason
            .as_deref()
            .is_some_and(|r| r.contains("yuvj420p")),
        "{:?}",
        result.transcode_reason
    );
    assert_eq!((result.width, result.height), (1024, 768));
    let mp4 = stored_video(dir.path(), hash);
    let p = ffprobe(&mp4);
    let v = video_stream(&p);
    assert_eq!(v["codec_name"], "h264");
    assert!(no_rotation(v));
    let m = manifest(&store, hash).await;
    assert_eq!(
        (m.width, m.height),
        (4032, 3024),
        "the still keeps its size"
    );
    assert_eq!(m.media_type, "image/jpeg");
    assert!(m.outputs.contains_key("avc"));
    assert_eq!(m.video.map(|v| v.kind), Some(VideoKind::MotionPhoto));
    assert!(
        m.duration_ms.is_some_and(|d| (600..1000).contains(&d)),
        "{:?}",
        m.duration_ms
    );
}

/// A Motion Photo v1 JPEG made here: a corpus JPEG with the Google XMP
/// directory in an APP1 segment, followed by a corpus H.264/AAC MP4.
fn made_motion_photo(jpeg: &[u8], mp4: &[u8]) -> Vec<u8> {
    let xmp = format!(
        "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF><rdf:Description \
         GCamera:MotionPhoto=\"1\"><Container:Directory><rdf:Seq>\
         <rdf:li><Container:Item Item:Mime=\"image/jpeg\" Item:Semantic=\"Primary\"/></rdf:li>\
         <rdf:li><Container:Item Item:Mime=\"video/mp4\" Item:Semantic=\"MotionPhoto\" Item:Length=\"{}\"/></rdf:li>\
         </rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>",
        mp4.len()
    );
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((xmp.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(xmp.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out.extend_from_slice(mp4);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avc_motion_photo_video_is_remuxed_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = read("ext/video/sample_h264_aac.mp4");
    let photo = made_motion_photo(&read("seed/elephants.jpg"), &mp4);
    let (store, srcs) = store_with(dir.path(), &[(&photo, "jpg")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    render_job(&ctx, &render(*hash, source, Some("image/jpeg")))
        .await
        .expect("the still renders");
    let done = transcode_job(&ctx, &transcode(*hash, source))
        .await
        .expect("transcode");
    let result = done.result.expect("made");
    assert_eq!(
        result.path,
        VideoPath::Remux,
        "{:?}",
        result.transcode_reason
    );
    let out = stored_video(dir.path(), hash);
    let p = ffprobe(&out);
    assert_eq!(dims(video_stream(&p)), (1080, 720));
    // The same H.264 packets as the MP4 on its own.
    let md5 = |path: &Path| {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v", "-c", "copy", "-f", "md5", "-"])
            .output()
            .expect("ffmpeg");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(md5(&out), md5(&corpus("ext/video/sample_h264_aac.mp4")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samsung_heic_motion_photo_video_is_transcoded_upright() {
    let dir = tempfile::tempdir().unwrap();
    let samsung = read(SAMSUNG);
    let (store, srcs) = store_with(dir.path(), &[(&samsung, "heic")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    let done = transcode_job(&ctx, &transcode(*hash, source))
        .await
        .expect("transcode");
    let result = done.result.expect("made");
    // HEVC with a 90° track rotation: transcoded, turned upright.
    assert_eq!(result.path, VideoPath::Transcode);
    let mp4 = stored_video(dir.path(), hash);
    let p = ffprobe(&mp4);
    let v = video_stream(&p);
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(dims(v), (1080, 1440));
    assert!(no_rotation(v), "{v}");
    let m = manifest(&store, hash).await;
    assert_eq!(m.video.map(|v| v.kind), Some(VideoKind::MotionPhoto));
    assert_eq!(m.media_type, "image/heif");
}

#[test]
fn google_heic_motion_photo_video_plays() {
    let dir = tempfile::tempdir().unwrap();
    let google = read(GOOGLE_HEIC);
    let found = find_embedded_video(&google).unwrap().unwrap();
    let mp4 = dir.path().join("in.mp4");
    std::fs::write(&mp4, found.slice(&google).unwrap()).unwrap();
    let out = dir.path().join("out.mp4");
    let result = transcode_file(&mp4, &out, &fast(), later(), &mut |_| {}).expect("transcode");
    let p = ffprobe(&out);
    let v = video_stream(&p);
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(dims(v), (u64::from(result.width), u64::from(result.height)));
    assert!(
        v["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
            > 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_trailer_keeps_the_still_and_fails_the_video_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let mut garbage = read(PIXEL);
    for b in &mut garbage[2_728_123..2_728_200] {
        *b = 0x5A;
    }
    let (store, srcs) = store_with(dir.path(), &[(&garbage, "jpg")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    render_job(&ctx, &render(*hash, source, Some("image/jpeg")))
        .await
        .expect("the still still renders");
    assert_eq!(manifest(&store, hash).await.video, None, "no video offered");
    match transcode_job(&ctx, &transcode(*hash, source)).await {
        Err(WorkError::Permanent(reason)) => {
            assert!(reason.contains("motion photo"), "{reason}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_still_has_no_video_to_transcode() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = read("seed/elephants.jpg");
    let (store, srcs) = store_with(dir.path(), &[(&jpg, "jpg")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    match transcode_job(&ctx, &transcode(*hash, source)).await {
        Err(WorkError::Permanent(reason)) => {
            assert!(reason.contains("without an embedded video"), "{reason}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------- Live Photos

#[test]
fn live_photo_halves_carry_the_same_identifier() {
    assert_eq!(photo_content_id(&read(LIVE_JPG)).as_deref(), Some(LIVE_ID));
    assert_eq!(
        video_content_id(&corpus(LIVE_MOV)).as_deref(),
        Some(LIVE_ID)
    );
    assert_eq!(photo_content_id(&read(PIXEL)), None);
    // iPhone HEICs with an Apple MakerNote but no Live Photo: no identifier.
    for rel in ["seed/iphone_15_pro.heic", "photos/iphone_13_pro_max.HEIC"] {
        assert_eq!(photo_content_id(&read(rel)), None, "{rel}");
    }
    assert_eq!(video_content_id(&corpus("seed/earth.mov")), None);
}

async fn pair_in_order(photo_first: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (jpg, mov) = (read(LIVE_JPG), read(LIVE_MOV));
    let (store, srcs) = store_with(dir.path(), &[(&jpg, "jpg"), (&mov, "mov")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let ((photo, photo_src), (video, video_src)) = (&srcs[0], &srcs[1]);
    let photo_job = render(*photo, photo_src, Some("image/jpeg"));
    let video_job = render(*video, video_src, Some("video/quicktime"));
    if photo_first {
        render_job(&ctx, &photo_job).await.expect("photo");
        assert_eq!(manifest(&store, photo).await.video, None, "not linked yet");
        render_job(&ctx, &video_job).await.expect("video poster");
    } else {
        render_job(&ctx, &video_job).await.expect("video poster");
        render_job(&ctx, &photo_job).await.expect("photo");
    }
    let m = manifest(&store, photo).await;
    let link = m.video.expect("the still is linked to its MOV");
    assert_eq!(link.kind, VideoKind::LivePhoto);
    assert_eq!(link.source_hash, Some(*video));
    assert_eq!(link.source.as_ref(), Some(video_src));
    assert_eq!(link.content_id.as_deref(), Some(LIVE_ID));
    assert!(dir
        .path()
        .join(format!("live/{LIVE_ID}/photo.json"))
        .exists());
    assert!(dir
        .path()
        .join(format!("live/{LIVE_ID}/video.json"))
        .exists());
    // The MOV's own manifest is a plain video.
    assert_eq!(manifest(&store, video).await.video, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_photo_pair_links_when_the_photo_comes_first() {
    pair_in_order(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_photo_pair_links_when_the_video_comes_first() {
    pair_in_order(false).await;
}

// ---------------------------------------------------------------- animations

const ANIMATIONS: [(&str, u64); 3] = [
    ("ext/formats/iss634.gif", 42),
    ("ext/formats/iss634.apng", 41),
    ("ext/formats/iss634.webp", 42),
];

#[test]
fn animations_become_short_clips_with_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut durations = Vec::new();
    for (rel, frames) in ANIMATIONS {
        let src = corpus(rel);
        let out = dir.path().join("out.mp4");
        let result = transcode_file(&src, &out, &fast(), later(), &mut |_| {})
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(result.path, VideoPath::Transcode, "{rel}");
        let p = ffprobe(&out);
        let v = video_stream(&p);
        assert_eq!(v["codec_name"], "h264", "{rel}");
        assert_eq!(v["pix_fmt"], "yuv420p", "{rel}");
        assert_eq!(dims(v), (244, 244), "{rel}: 245x245 made even");
        let n: u64 = v["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert_eq!(n, frames, "{rel}: every frame kept");
        let d: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
        durations.push(d);
    }
    // The same animation lasts as long in every format.
    let (min, max) = durations
        .iter()
        .fold((f64::MAX, 0.0f64), |(a, b), d| (a.min(*d), b.max(*d)));
    assert!(max - min < 0.3 && min > 1.0, "durations {durations:?}");
}

#[test]
fn animation_stills_are_the_first_whole_frame() {
    let gif = render_bytes(
        &read(ANIMATIONS[0].0),
        &[Size::Fit720],
        &RenderOptions::default(),
    )
    .expect("gif still");
    let mut firsts = Vec::new();
    for (rel, _) in ANIMATIONS {
        let r = render_bytes(&read(rel), &[Size::Fit720], &RenderOptions::default())
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!((r.width, r.height), (245, 245), "{rel}");
        let img = image::load_from_memory(&r.outputs[0].bytes)
            .unwrap()
            .into_rgb8();
        firsts.push(img);
    }
    assert_eq!(gif.outputs.len(), 1);
    // GIF (palette) vs APNG and WebP (truecolour) of the same first frame.
    for other in &firsts[1..] {
        let d: f64 = firsts[0]
            .as_raw()
            .iter()
            .zip(other.as_raw())
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / other.as_raw().len() as f64;
        assert!(d < 12.0, "first frames differ by {d:.1}");
    }
}

#[test]
fn animation_bombs_fail_for_good_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let few_frames = VideoOptions {
        max_animation_frames: 10,
        ..fast()
    };
    let short = VideoOptions {
        max_animation_duration: Duration::from_secs(1),
        ..fast()
    };
    let small = VideoOptions {
        max_animation_pixels: 10_000,
        ..fast()
    };
    for (rel, _) in ANIMATIONS {
        let src = corpus(rel);
        for (opts, words) in [
            (&few_frames, "more than 10 frames"),
            (&short, "s limit"),
            (&small, "pixel limit"),
        ] {
            let err = transcode_file(&src, &out, opts, later(), &mut |_| {})
                .err()
                .unwrap_or_else(|| panic!("{rel}: {words}: no error"));
            assert!(matches!(err, VideoError::TooLarge(_)), "{rel}: {err:?}");
            assert!(err.is_permanent());
            assert!(err.to_string().contains(words), "{rel}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_stills_are_recorded_and_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let webp = read("ext/formats/iss634.webp");
    let still = read("ext/formats/simple-rgb.webp");
    let (store, srcs) = store_with(dir.path(), &[(&webp, "webp"), (&still, "webp")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    render_job(&ctx, &render(*hash, source, Some("image/webp")))
        .await
        .expect("still");
    let m = manifest(&store, hash).await;
    assert_eq!(m.video.map(|v| v.kind), Some(VideoKind::Animation));
    transcode_job(&ctx, &transcode(*hash, source))
        .await
        .expect("clip");
    let m = manifest(&store, hash).await;
    assert_eq!((m.width, m.height), (245, 245));
    assert_eq!(
        m.outputs.get("avc").map(|o| (o.width, o.height)),
        Some((244, 244))
    );
    // A still WebP has no clip.
    let (hash, source) = &srcs[1];
    render_job(&ctx, &render(*hash, source, Some("image/webp")))
        .await
        .expect("still");
    assert_eq!(manifest(&store, hash).await.video, None);
    match transcode_job(&ctx, &transcode(*hash, source)).await {
        Err(WorkError::Permanent(reason)) => assert!(reason.contains("still"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_motion_photo_with_a_shortened_video_fails_for_good() {
    // androidx shortened this Pixel 4 XL motion photo: the MP4's header is
    // there (1024x768 H.264, 38 samples), its media data is not.
    let dir = tempfile::tempdir().unwrap();
    let photo = read("ext/photos/pixel4xl_motion_photo.jpg");
    let found = find_embedded_video(&photo).unwrap().expect("found");
    assert_eq!(found.length, 8730);
    let (store, srcs) = store_with(dir.path(), &[(&photo, "jpg")]).await;
    let opts = worker_options();
    let ctx = JobContext::new(&opts, &store);
    let (hash, source) = &srcs[0];
    match transcode_job(&ctx, &transcode(*hash, source)).await {
        Err(WorkError::Permanent(reason)) => {
            assert!(reason.contains("cannot decode video"), "{reason}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(!dir
        .path()
        .join(thumbfarm_shared::KeyLayout::default().video(hash))
        .exists());
}
