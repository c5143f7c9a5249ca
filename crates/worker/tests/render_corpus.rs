//! The render pipeline against the shared media corpus: every seed file to
//! every pre-generated size, orientation, colour management, hostile files
//! and decompression bombs.
//!
//! The corpus is `$THUMBFARM_CORPUS`, or `shared/corpus` beside the
//! workspace (`<workspace>/../shared/corpus`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thumbfarm_shared::sizes::{self, Plan};
use thumbfarm_shared::{Size, SizeLimits};
use thumbfarm_worker::render::{
    probe_bytes, render_bytes, render_file, RenderError, RenderOptions, RenderResult,
};

/// The corpus folder; fails the test, naming `THUMBFARM_CORPUS`, when it is
/// missing (a test never passes without its input).
fn corpus() -> PathBuf {
    let dir = std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "test input missing: corpus not found at {} (set THUMBFARM_CORPUS)",
        dir.display()
    );
    dir
}

/// `path` under the corpus; fails the test when it is missing.
fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "test input missing: {} (set THUMBFARM_CORPUS)",
        path.display()
    );
    path
}

/// Rows of a MANIFEST.tsv as column-name -> value maps.
fn manifest(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("manifest");
    let mut lines = text.lines();
    let head: Vec<String> = lines
        .next()
        .expect("header")
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            head.iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

fn exif_orientation(path: &Path) -> u32 {
    let Ok(file) = std::fs::File::open(path) else {
        return 1;
    };
    let mut reader = std::io::BufReader::new(file);
    exif::Reader::new()
        .read_from_container(&mut reader)
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        })
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn decode_output(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("output decodes")
}

fn pregenerated() -> Vec<Size> {
    SizeLimits::default().pregenerated()
}

/// Checks every output against the shared geometry for a `w`×`h` original.
fn check_outputs(name: &str, result: &RenderResult, w: u32, h: u32, wanted: &[Size]) {
    assert_eq!(
        (result.width, result.height),
        (w, h),
        "{name}: oriented size"
    );
    let got: Vec<Size> = result.outputs.iter().map(|o| o.size).collect();
    assert_eq!(got, sizes::render_set(wanted, w, h), "{name}: sizes");
    for out in &result.outputs {
        let Plan::Render(g) = sizes::plan(out.size, w, h) else {
            panic!("{name}: {} is not rendered for {w}x{h}", out.size);
        };
        let img = decode_output(&out.bytes);
        assert_eq!(
            (img.width(), img.height(), out.width, out.height),
            (g.width, g.height, g.width, g.height),
            "{name}: {}",
            out.size
        );
        match out.size.format() {
            sizes::Format::Png => {
                assert!(out.bytes.starts_with(b"\x89PNG"), "{name}: colors is PNG");
                assert_eq!((g.width, g.height), (3, 3));
            }
            sizes::Format::Jpeg => {
                assert!(
                    out.bytes.starts_with(&[0xFF, 0xD8]),
                    "{name}: {} is JPEG",
                    out.size
                );
                // No metadata: no APP1 (EXIF/XMP) or APP2 (ICC) segment.
                assert!(
                    !out.bytes.windows(6).any(|w| w == b"Exif\0\0"),
                    "{name}: {} carries EXIF",
                    out.size
                );
            }
            other => panic!("{name}: {} asked as JPEG, written as {other:?}", out.size),
        }
    }
}

#[test]
fn seed_corpus_renders_every_pregenerated_size() {
    let corpus = corpus();
    let wanted = pregenerated();
    let opts = RenderOptions::default();
    let mut rendered = 0;
    for row in manifest(&corpus.join("MANIFEST.tsv")) {
        let rel = &row["path"];
        if !rel.starts_with("seed/") {
            continue;
        }
        let lower = rel.to_ascii_lowercase();
        if [".mp4", ".mov", ".avi"].iter().any(|e| lower.ends_with(e)) {
            continue;
        }
        let path = corpus.join(rel);
        let result = render_file(&path, &wanted, &opts);
        let result = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
        if lower.ends_with(".dng") {
            // A RAW's size is its developed size (camera_files.rs checks it).
            assert_eq!(result.media_type, "image/x-adobe-dng", "{rel}");
            check_outputs(rel, &result, result.width, result.height, &wanted);
            rendered += 1;
            continue;
        }
        let dims = row["identify"].split_whitespace().next().expect("dims");
        let (iw, ih) = dims.split_once('x').expect("WxH");
        let (mut w, mut h): (u32, u32) = (iw.parse().expect("w"), ih.parse().expect("h"));
        // identify reports JPEG's stored size; HEIF's is already displayed
        // (irot applied), except for a HEIC with an EXIF orientation and no
        // irot (iphone_7.heic, written by a third-party camera app), which
        // thumbfarm turns upright by its EXIF orientation.
        if (result.media_type == "image/jpeg" || rel == "seed/iphone_7.heic")
            && exif_orientation(&path) >= 5
        {
            std::mem::swap(&mut w, &mut h);
        }
        check_outputs(rel, &result, w, h, &wanted);
        rendered += 1;
    }
    assert!(rendered >= 20, "only {rendered} seed files rendered");
}

#[test]
fn format_is_detected_by_magic_bytes() {
    let corpus = corpus();
    let data = std::fs::read(corpus.join("seed/this-is-a-jpeg.png")).expect("read");
    let probe = probe_bytes(&data, &RenderOptions::default()).expect("probe");
    assert_eq!(probe.media_type, "image/jpeg");
    assert_eq!((probe.width, probe.height), (240, 180));
    for (file, media) in [
        ("seed/iphone_7.heic", "image/heic"),
        ("seed/fox.profile0.8bpc.yuv420.avif", "image/avif"),
        ("seed/example.tif", "image/tiff"),
        ("seed/example.bmp", "image/bmp"),
        ("seed/example.gif", "image/gif"),
    ] {
        let data = std::fs::read(corpus.join(file)).expect("read");
        let probe = probe_bytes(&data, &RenderOptions::default()).expect(file);
        assert_eq!(probe.media_type, media, "{file}");
    }
}

/// Mean absolute difference per channel of two same-sized images.
fn mad(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

fn fit720(path: &Path) -> image::RgbImage {
    let result = render_file(path, &[Size::Fit720], &RenderOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode_output(&result.outputs[0].bytes).into_rgb8()
}

#[test]
fn orientation_set_comes_out_upright() {
    let corpus = corpus();
    let dir = require(corpus.join("ext/orientation"));
    for (name, landscape) in [("Landscape", true), ("Portrait", false)] {
        let reference = fit720(&dir.join(format!("{name}_1.jpg")));
        assert_eq!(
            reference.width() > reference.height(),
            landscape,
            "{name}_1 shape"
        );
        // A mirrored reference differs a lot: the threshold below is meaningful.
        let mirrored = image::imageops::flip_horizontal(&reference);
        let wrong = mad(&reference, &mirrored);
        assert!(wrong > 20.0, "{name}: mirrored MAD only {wrong}");
        for n in 0..=8 {
            let file = format!("{name}_{n}.jpg");
            let img = fit720(&dir.join(&file));
            assert_eq!(img.dimensions(), reference.dimensions(), "{file}");
            let d = mad(&img, &reference);
            assert!(d < 6.0, "{file}: MAD {d} against {name}_1");
        }
    }
}

#[test]
fn webp_exif_orientation_is_applied() {
    let corpus = corpus();
    let path = require(corpus.join("ext/orientation/hopper_orientation_6.webp"));
    let data = std::fs::read(&path).expect("read");
    let probe = probe_bytes(&data, &RenderOptions::default()).expect("probe");
    assert_eq!(probe.orientation, 6);
}

/// A Display P3 profile built with Little CMS (P3 primaries, D65, sRGB curve).
fn display_p3_icc() -> Vec<u8> {
    use lcms2::{CIExyY, CIExyYTRIPLE, Profile, ToneCurve};
    let d65 = CIExyY {
        x: 0.3127,
        y: 0.3290,
        Y: 1.0,
    };
    let primaries = CIExyYTRIPLE {
        Red: CIExyY {
            x: 0.680,
            y: 0.320,
            Y: 1.0,
        },
        Green: CIExyY {
            x: 0.265,
            y: 0.690,
            Y: 1.0,
        },
        Blue: CIExyY {
            x: 0.150,
            y: 0.060,
            Y: 1.0,
        },
    };
    let curve =
        ToneCurve::new_parametric(4, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045])
            .expect("curve");
    let profile = Profile::new_rgb(&d65, &primaries, &[&curve, &curve, &curve]).expect("profile");
    profile.icc().expect("icc bytes")
}

/// A JPEG of four flat colour patches with `icc` embedded.
fn patches_jpeg(colors: &[[u8; 3]; 4], icc: Option<Vec<u8>>) -> Vec<u8> {
    use image::ImageEncoder;
    let img = image::RgbImage::from_fn(256, 256, |x, y| {
        image::Rgb(colors[(usize::from(y >= 128) << 1) | usize::from(x >= 128)])
    });
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 98);
    if let Some(icc) = icc {
        enc.set_icc_profile(icc).expect("icc");
    }
    enc.write_image(img.as_raw(), 256, 256, image::ExtendedColorType::Rgb8)
        .expect("encode");
    out
}

#[test]
fn display_p3_is_converted_to_srgb() {
    let colors = [[40, 200, 60], [200, 60, 40], [60, 220, 200], [230, 200, 40]];
    let icc = display_p3_icc();
    let tagged = patches_jpeg(&colors, Some(icc.clone()));
    let untagged = patches_jpeg(&colors, None);
    let opts = RenderOptions::default();
    let render = |data: &[u8]| {
        let r = render_bytes(data, &[Size::Fit720], &opts).expect("render");
        decode_output(&r.outputs[0].bytes).into_rgb8()
    };
    let (p3, plain) = (render(&tagged), render(&untagged));
    // The reference: the patch colours converted by Little CMS directly.
    let src = lcms2::Profile::new_icc(&icc).expect("profile");
    let t = lcms2::Transform::<[u8; 3], [u8; 3]>::new(
        &src,
        lcms2::PixelFormat::RGB_8,
        &lcms2::Profile::new_srgb(),
        lcms2::PixelFormat::RGB_8,
        lcms2::Intent::Perceptual,
    )
    .expect("transform");
    let mut expected = colors;
    t.transform_in_place(&mut expected);
    // Sample the middle of each patch (outputs are 256x256: fit never upscales).
    for (i, (c, e)) in colors.iter().zip(expected).enumerate() {
        let (x, y) = (64 + 128 * (i as u32 % 2), 64 + 128 * (i as u32 / 2));
        let got = p3.get_pixel(x, y).0;
        let raw = plain.get_pixel(x, y).0;
        let dist = |a: [u8; 3], b: [u8; 3]| (0..3).map(|k| a[k].abs_diff(b[k]) as u32).max();
        assert!(
            dist(got, e) <= Some(6),
            "patch {i}: got {got:?}, lcms2 says {e:?}"
        );
        assert!(
            dist(raw, *c) <= Some(6),
            "patch {i}: untagged changed: {raw:?} vs {c:?}"
        );
        assert!(
            dist(e, *c) >= Some(15),
            "patch {i}: the test colour is not saturated enough"
        );
    }
}

#[test]
fn heic_and_avif_decode() {
    let corpus = corpus();
    for (file, w, h) in [
        // EXIF orientation 6 and no irot: turned upright once (as Apple does).
        ("seed/iphone_7.heic", 3024, 4032),
        ("seed/iphone_15_pro.heic", 3024, 4032),
        ("seed/fox.profile0.8bpc.yuv420.avif", 1204, 800),
    ] {
        let r = render_file(
            &corpus.join(file),
            &[Size::Fit720],
            &RenderOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((r.width, r.height), (w, h), "{file}");
        let img = decode_output(&r.outputs[0].bytes).into_rgb8();
        // Real content, not a flat or black frame.
        let mean =
            img.as_raw().iter().map(|&v| u64::from(v)).sum::<u64>() / img.as_raw().len() as u64;
        let var = img
            .as_raw()
            .iter()
            .map(|&v| (i64::from(v) - mean as i64).pow(2) as u64)
            .sum::<u64>()
            / img.as_raw().len() as u64;
        assert!(mean > 20 && var > 100, "{file}: mean {mean} var {var}");
    }
}

#[test]
fn hostile_files_fail_cleanly_with_bounded_memory() {
    let corpus = corpus();
    let ext = require(corpus.join("ext/MANIFEST.tsv"));
    let opts = RenderOptions::default();
    let wanted = pregenerated();
    let mut errors = 0;
    for row in manifest(&ext) {
        let rel = &row["path"];
        if !rel.starts_with("hostile/") {
            continue;
        }
        let result = render_file(&corpus.join("ext").join(rel), &wanted, &opts);
        match (row["expected"].as_str(), row["kind"].as_str(), &result) {
            ("error", _, Err(e)) => {
                assert!(e.is_permanent(), "{rel}: {e}");
                errors += 1;
            }
            ("error", _, Ok(_)) => panic!("{rel}: rendered, expected an error"),
            ("ok", _, _) if [".mp4", ".webm", ".mov"].iter().any(|e| rel.ends_with(e)) => {
                // Videos are the video pipeline's; here they are only refused.
            }
            ("ok", _, Ok(r)) => assert!(!r.outputs.is_empty(), "{rel}"),
            ("ok", _, Err(e)) => panic!("{rel}: {e}"),
            (other, _, _) => panic!("{rel}: unknown expectation {other}"),
        }
    }
    assert!(errors >= 15, "only {errors} hostile files checked");
    let corrupted = corpus.join("hostile/corrupted.jpg");
    if corrupted.is_file() {
        // Damaged entropy data but a complete file: libjpeg warns and decodes.
        render_file(&corrupted, &wanted, &opts).expect("corrupted.jpg renders");
    }
    if let Some(hwm) = vm_hwm_kib() {
        assert!(hwm < 1536 * 1024, "peak memory {} MiB", hwm / 1024);
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose IHDR claims `w`×`h` RGB pixels, followed by a tiny IDAT.
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], body: &[u8]| {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(body);
        png.extend_from_slice(&c);
        png.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

/// A JPEG header whose SOF claims `w`×`h`, with no scan data.
fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8];
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

#[test]
fn synthetic_bombs_are_refused_before_allocation() {
    let opts = RenderOptions::default();
    let before = vm_hwm_kib();
    for (name, data) in [
        ("png 100000x100000", png_bomb(100_000, 100_000)),
        ("png 20000x20000", png_bomb(20_000, 20_000)),
        ("jpeg 60000x60000", jpeg_bomb(60_000, 60_000)),
    ] {
        let started = std::time::Instant::now();
        let err = render_bytes(&data, &pregenerated(), &opts).expect_err(name);
        assert!(matches!(err, RenderError::TooLarge(_)), "{name}: {err}");
        assert!(err.is_permanent());
        let probe = probe_bytes(&data, &opts).expect_err(name);
        assert!(matches!(probe, RenderError::TooLarge(_)), "{name}: {probe}");
        // Refused from the header: no time spent on (or memory given to) pixels.
        assert!(started.elapsed().as_millis() < 500, "{name}");
    }
    if let (Some(b), Some(a)) = (before, vm_hwm_kib()) {
        // Tests run in parallel, so only a gross allocation would show here:
        // a 20000x20000 RGB buffer alone would be 1.1 GiB.
        assert!(
            a.saturating_sub(b) < 512 * 1024,
            "peak grew by {} MiB",
            (a - b) / 1024
        );
    }
    // A lower configured limit is honoured too.
    let small = RenderOptions {
        max_pixels: 1000,
        ..RenderOptions::default()
    };
    let err = render_bytes(&png_bomb(100, 100), &[Size::Fit720], &small).expect_err("limit");
    assert!(matches!(err, RenderError::TooLarge(_)), "{err}");
    let tiny_file = RenderOptions {
        max_file_size: 10,
        ..RenderOptions::default()
    };
    let err = render_bytes(&png_bomb(10, 10), &[Size::Fit720], &tiny_file).expect_err("file size");
    assert!(matches!(err, RenderError::TooLarge(_)), "{err}");
}

#[test]
fn garbage_never_panics() {
    let opts = RenderOptions::default();
    let mut cases = 0;
    let mut seed = 0x1234_5678u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let headers: [&[u8]; 5] = [
        b"\xFF\xD8\xFF",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
    ];
    for header in headers {
        for len in [0usize, 1, 16, 100, 1000] {
            let mut data = header.to_vec();
            data.extend((0..len).map(|_| next() as u8));
            match render_bytes(&data, &[Size::Fit720, Size::Tile50], &opts) {
                Ok(r) => panic!(
                    "{} random bytes after {:?} rendered as a {}x{} image",
                    len,
                    String::from_utf8_lossy(header),
                    r.width,
                    r.height
                ),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        !message.trim().is_empty() && message.len() < 2000,
                        "a clear, bounded error: {message:?}"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 25, "every case ran");
}

#[test]
fn ext_images_marked_ok_render() {
    let corpus = corpus();
    let ext = require(corpus.join("ext/MANIFEST.tsv"));
    let opts = RenderOptions::default();
    let wanted = pregenerated();
    // Containers the pipeline does not decode (the report lists them).
    // multipage.tiff: 1-bit palette pages, which the `image` crate's TIFF
    // decoder does not support.
    let unsupported = [".psd", ".ico", ".jp2", ".svg", ".avifs", "multipage.tiff"];
    let mut failures = Vec::new();
    for row in manifest(&ext) {
        let rel = &row["path"];
        let lower = rel.to_ascii_lowercase();
        if row["kind"] != "image"
            || row["expected"] != "ok"
            || unsupported.iter().any(|e| lower.ends_with(e))
        {
            continue;
        }
        match render_file(&corpus.join("ext").join(rel), &wanted, &opts) {
            Ok(r) => {
                let (w, h) = (r.width, r.height);
                check_outputs(rel, &r, w, h, &wanted);
            }
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Decodes an AVIF output to RGB8 through libheif (dav1d).
fn decode_avif(bytes: &[u8]) -> image::RgbImage {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let ctx = HeifContext::read_from_bytes(bytes).expect("AVIF container");
    let handle = ctx.primary_image_handle().expect("AVIF image");
    let img = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .expect("AVIF decodes");
    let plane = img.planes().interleaved.expect("interleaved RGB");
    let row = plane.width as usize * 3;
    let mut px = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        px.extend_from_slice(&plane.data[y * plane.stride..][..row]);
    }
    image::RgbImage::from_raw(plane.width, plane.height, px).expect("RGB buffer")
}

/// Mean absolute difference per channel of two images of the same size.
fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn webp_and_avif_match_the_jpeg_from_one_decode_without_metadata() {
    use thumbfarm_shared::renditions::{OutputFormat, Rendition};
    // A phone photo with EXIF (orientation, camera data) and an ICC profile.
    let path = require(corpus().join("photos/HMD_Nokia_8.3_5G.jpg"));
    let sizes = [Size::Tile224, Size::Fit720];
    let wanted: Vec<Rendition> = sizes
        .iter()
        .flat_map(|s| {
            [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif]
                .map(|f| Rendition::new(*s, f).expect("photo sizes have every format"))
        })
        .collect();
    let result = render_file(&path, &wanted, &RenderOptions::default()).expect("renders");
    assert_eq!(result.outputs.len(), 6, "every size in every format");
    assert!(result.thumbhash.is_some(), "fit_720 gives the ThumbHash");
    // Encoding on several threads (a job with cores to spare) gives the
    // same files, in the same order.
    let parallel = RenderOptions {
        encode_threads: 3,
        ..RenderOptions::default()
    };
    let again = render_file(&path, &wanted, &parallel).expect("renders on 3 threads");
    let key = |r: &RenderResult| -> Vec<(Size, String, Vec<u8>)> {
        r.outputs
            .iter()
            .map(|o| (o.size, o.format.to_string(), o.bytes.clone()))
            .collect()
    };
    assert_eq!(key(&again), key(&result));
    for size in sizes {
        let of = |f: OutputFormat| {
            result
                .outputs
                .iter()
                .find(|o| o.size == size && o.format == f)
                .unwrap_or_else(|| panic!("{size} as {f}"))
        };
        let jpeg = of(OutputFormat::Jpeg);
        let reference = decode_output(&jpeg.bytes).to_rgb8();
        let webp = of(OutputFormat::Webp);
        assert!(
            webp.bytes.starts_with(b"RIFF") && &webp.bytes[8..12] == b"WEBP",
            "{size}: WebP"
        );
        let avif = of(OutputFormat::Avif);
        assert_eq!(&avif.bytes[4..12], b"ftypavif", "{size}: AVIF brand");
        for (out, decoded) in [
            (webp, decode_output(&webp.bytes).to_rgb8()),
            (avif, decode_avif(&avif.bytes)),
        ] {
            let what = format!("{size} as {}", out.format);
            assert_eq!(decoded.dimensions(), (jpeg.width, jpeg.height), "{what}");
            assert_eq!((out.width, out.height), (jpeg.width, jpeg.height), "{what}");
            // The same pixels encoded three ways: close to the JPEG
            // (orientation and colour management happened once, before).
            let d = mean_abs_diff(&decoded, &reference);
            assert!(d < 6.0, "{what}: mean difference {d:.2} from the JPEG");
            // No metadata copied from the original.
            for marker in [
                &b"Exif"[..],
                b"EXIF",
                b"XMP ",
                b"<x:xmpmeta",
                b"ICCP",
                b"prof",
            ] {
                assert!(
                    !out.bytes.windows(marker.len()).any(|w| w == marker),
                    "{what} carries {:?}",
                    String::from_utf8_lossy(marker)
                );
            }
            assert!(
                out.bytes.len() < jpeg.bytes.len(),
                "{what}: {} bytes, JPEG {}",
                out.bytes.len(),
                jpeg.bytes.len()
            );
        }
    }
}
