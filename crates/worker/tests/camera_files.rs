//! Camera files people have, on real files: RAW stills (embedded previews
//! and full develops), current HEICs (the iOS 18 layout, `irot` with EXIF
//! orientation applied once), and HDR photos (gain maps kept as SDR bases,
//! PQ/HLG tone-mapped to SDR and recorded as HDR).
//!
//! Inputs: `../shared/corpus` (or `THUMBFARM_CORPUS`) and the small files in
//! `tests/fixtures` (see its SOURCES.md). A missing input fails the test.

use image::RgbImage;
use std::path::{Path, PathBuf};
use thumbfarm_shared::manifest::{GainMap, HdrTransfer};
use thumbfarm_shared::Size;
use thumbfarm_worker::render::{
    probe_bytes, raw, render_bytes, RenderError, RenderOptions, RenderResult,
};

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

fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    assert!(path.exists(), "fixture {} is missing", path.display());
    path
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn render(data: &[u8], sizes: &[Size], what: &str) -> RenderResult {
    render_bytes(data, sizes, &RenderOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn output(r: &RenderResult, size: Size) -> RgbImage {
    let out = r
        .outputs
        .iter()
        .find(|o| o.size == size)
        .unwrap_or_else(|| {
            panic!(
                "no {size} in {:?}",
                r.outputs.iter().map(|o| o.size).collect::<Vec<_>>()
            )
        });
    let img = image::load_from_memory(&out.bytes)
        .expect("output decodes")
        .into_rgb8();
    assert_eq!((img.width(), img.height()), (out.width, out.height));
    img
}

/// Box-filtered 64x64 version, as f64 RGB.
fn thumb64(img: &RgbImage) -> Vec<[f64; 3]> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![[0.0; 3]; 64 * 64];
    let mut counts = vec![0.0f64; 64 * 64];
    for (x, y, p) in img.enumerate_pixels() {
        let i = (y as usize * 64 / h) * 64 + x as usize * 64 / w;
        for c in 0..3 {
            out[i][c] += f64::from(p[c]);
        }
        counts[i] += 1.0;
    }
    for (o, n) in out.iter_mut().zip(counts) {
        for v in o.iter_mut() {
            *v /= n.max(1.0);
        }
    }
    out
}

/// Mean absolute difference per sample, and the per-channel means of both.
fn compare(a: &[[f64; 3]], b: &[[f64; 3]]) -> (f64, [f64; 3], [f64; 3]) {
    let n = a.len() as f64;
    let mad = a
        .iter()
        .zip(b)
        .map(|(p, q)| (0..3).map(|c| (p[c] - q[c]).abs()).sum::<f64>())
        .sum::<f64>()
        / (n * 3.0);
    let mean = |v: &[[f64; 3]]| {
        let mut m = [0.0; 3];
        for p in v {
            for c in 0..3 {
                m[c] += p[c] / n;
            }
        }
        m
    };
    (mad, mean(a), mean(b))
}

fn luma_stats(img: &RgbImage) -> (f64, f64, f64) {
    let n = f64::from(img.width() * img.height());
    let ys: Vec<f64> = img
        .pixels()
        .map(|p| 0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]))
        .collect();
    let mean = ys.iter().sum::<f64>() / n;
    let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
    let clipped = img
        .pixels()
        .filter(|p| p.0.iter().all(|&v| v >= 254))
        .count() as f64
        / n;
    (mean, sd, clipped)
}

/// Mean HSV saturation.
fn saturation(img: &RgbImage) -> f64 {
    let n = f64::from(img.width() * img.height());
    img.pixels()
        .map(|p| {
            let (mx, mn) = (
                *p.0.iter().max().unwrap_or(&0),
                *p.0.iter().min().unwrap_or(&0),
            );
            if mx == 0 {
                0.0
            } else {
                f64::from(mx - mn) / f64::from(mx)
            }
        })
        .sum::<f64>()
        / n
}

fn not_flat(img: &RgbImage, what: &str) {
    let (mean, sd, _) = luma_stats(img);
    assert!(
        mean > 15.0 && mean < 245.0 && sd > 10.0,
        "{what}: mean {mean:.0} sd {sd:.0}"
    );
}

// ------------------------------------------------------------------- RAW

#[test]
fn every_corpus_raw_with_a_preview_renders() {
    // (file, media type, oriented size, fit_720 size)
    let cases = [
        (
            "seed/canon_eos_6d.dng",
            "image/x-adobe-dng",
            (1224, 816),
            (720, 480),
        ),
        // Truncated sensor data: the size is the largest preview's.
        (
            "raw/nikon_d7100_truncated.nef",
            "image/x-nikon-nef",
            (6000, 4000),
            (720, 480),
        ),
        (
            "raw/sony_slt-a55v_truncated.arw",
            "image/x-sony-arw",
            (1616, 1080),
            (720, 481),
        ),
        (
            "raw/canon_eos_r6_pruned.cr3",
            "image/x-canon-cr3",
            (1620, 1080),
            (720, 480),
        ),
        (
            "raw/canon_eos_d30.crw",
            "image/x-canon-crw",
            (2160, 1440),
            (720, 480),
        ),
    ];
    for (file, media_type, dims, fit720) in cases {
        let data = read(&corpus(file));
        let probe =
            probe_bytes(&data, &RenderOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(probe.media_type, media_type, "{file}");
        assert_eq!((probe.width, probe.height), dims, "{file}");
        let r = render(&data, &[Size::Fit720, Size::Tile224, Size::Colors], file);
        assert_eq!((r.width, r.height), dims, "{file}");
        let img = output(&r, Size::Fit720);
        assert_eq!((img.width(), img.height()), fit720, "{file}");
        not_flat(&img, file);
        assert_eq!(output(&r, Size::Tile224).dimensions(), (224, 224), "{file}");
    }
}

#[test]
fn truncated_raws_serve_their_preview_and_cap_the_sizes() {
    let data = read(&corpus("raw/sony_slt-a55v_truncated.arw"));
    // The develop cannot run (the sensor data is cut): every size comes from
    // the 1616x1080 preview, and fits above it are that size.
    let r = render(&data, &[Size::Fit1920, Size::Fit4096], "ARW");
    let sizes: Vec<Size> = r.outputs.iter().map(|o| o.size).collect();
    assert_eq!(sizes, vec![Size::Fit1920], "fit_4096 is served by fit_1920");
    assert_eq!(output(&r, Size::Fit1920).dimensions(), (1616, 1080));
    // A full develop of such a file fails with a clear reason.
    let err = raw::decode_raw(&data, &raw::RawLimits::default()).unwrap_err();
    assert!(err.to_string().contains("raw data ends at byte"), "{err}");
}

#[test]
fn a_raw_without_preview_or_decoder_fails_clearly() {
    let data = read(&corpus("raw/gopro_hero8_black.gpr"));
    let err = render_bytes(&data, &[Size::Fit720], &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, RenderError::Unsupported(_)), "{err}");
    assert!(err.is_permanent());
    let msg = err.to_string();
    assert!(
        msg.contains("GoPro GPR") && msg.contains("no embedded preview"),
        "{msg}"
    );
}

#[test]
fn raw_orientation_comes_from_the_raw_not_the_preview() {
    for (file, o, dims, fit720) in [
        ("seed/canon_eos_6d.dng", 6, (816, 1224), (480, 720)),
        ("seed/canon_eos_6d.dng", 8, (816, 1224), (480, 720)),
        ("raw/nikon_d7100_truncated.nef", 8, (4000, 6000), (480, 720)),
    ] {
        let mut data = read(&corpus(file));
        raw::set_tiff_orientation(&mut data, o).expect("patch orientation");
        let r = render(&data, &[Size::Fit720], file);
        assert_eq!((r.width, r.height), dims, "{file} orientation {o}");
        assert_eq!(
            output(&r, Size::Fit720).dimensions(),
            fit720,
            "{file} orientation {o}"
        );
    }
    // Orientation 6 turns the picture clockwise: the upright render's left
    // column is the stored bottom row.
    let plain = render(
        &read(&corpus("raw/nikon_d7100_truncated.nef")),
        &[Size::Fit720],
        "NEF",
    );
    let mut rotated = read(&corpus("raw/nikon_d7100_truncated.nef"));
    raw::set_tiff_orientation(&mut rotated, 6).expect("patch");
    let turned = render(&rotated, &[Size::Fit720], "NEF o6");
    let a = image::imageops::rotate90(&output(&plain, Size::Fit720));
    let b = output(&turned, Size::Fit720);
    let (mad, ..) = compare(&thumb64(&a), &thumb64(&b));
    assert!(
        mad < 3.0,
        "rotated by 6 differs from the plain render turned clockwise: {mad:.1}"
    );
}

#[test]
fn raw_develop_matches_libraw_within_tolerance() {
    // (file, reference, max mean abs diff, max channel-mean diff)
    for (file, reference, max_mad, max_mean) in [
        (
            "seed/canon_eos_6d.dng",
            "raw/canon_eos_6d.ref64.png",
            3.5,
            3.0,
        ),
        (
            "raw/canon_eos_d30.crw",
            "raw/canon_eos_d30.ref64.png",
            6.5,
            8.0,
        ),
    ] {
        let data = read(&corpus(file));
        // fit_4096 holds the whole picture: no preview is big enough, so
        // this is the develop.
        let r = render(&data, &[Size::Fit4096], file);
        let out = r.outputs.first().expect("one output");
        let img = image::load_from_memory(&out.bytes)
            .expect("decodes")
            .into_rgb8();
        let ours = thumb64(&img);
        let reference = thumb64(
            &image::open(fixture(reference))
                .expect("reference")
                .into_rgb8(),
        );
        let (mad, m_ours, m_ref) = compare(&ours, &reference);
        eprintln!("{file}: MAD {mad:.2}, means {m_ours:.1?} vs {m_ref:.1?}");
        assert!(mad <= max_mad, "{file}: MAD {mad:.2} > {max_mad}");
        for c in 0..3 {
            assert!(
                (m_ours[c] - m_ref[c]).abs() <= max_mean,
                "{file}: channel {c} mean {:.1} vs {:.1}",
                m_ours[c],
                m_ref[c]
            );
        }
    }
}

// ------------------------------------------------------------------- HEIC

#[test]
fn ios18_heic_layout_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = dir.path().join("ios18.heic");
    let status = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/heif_edit.py"))
        .arg("ios18")
        .arg(corpus("photos/iphone_13_pro_max.HEIC"))
        .arg(&made)
        .status()
        .expect("run python3 tests/tools/heif_edit.py");
    assert!(status.success(), "heif_edit.py ios18 failed");
    let r = render(&read(&made), &[Size::Fit720], "iOS 18 HEIC");
    assert_eq!((r.width, r.height), (3024, 4032));
    assert_eq!(output(&r, Size::Fit720).dimensions(), (540, 720));
    let hdr = r.hdr.expect("an iOS 18 HEIC with a gain map is HDR");
    assert_eq!(hdr.gain_maps, vec![GainMap::Apple, GainMap::Iso21496]);
    assert_eq!(hdr.transfer, None, "the primary is the SDR base");
}

#[test]
fn heic_rotation_box_and_exif_orientation_apply_once() {
    // irot 270 + EXIF 6 (Samsung): libheif's rotation only.
    let r = render(
        &read(&corpus("raw/samsung_sm-s906u_motion_photo.heic")),
        &[Size::Fit720],
        "Samsung",
    );
    assert_eq!((r.width, r.height), (3000, 4000));
    assert_eq!(output(&r, Size::Fit720).dimensions(), (540, 720));
    // EXIF 6 and no irot (a third-party camera app): the EXIF orientation.
    let r = render(
        &read(&corpus("seed/iphone_7.heic")),
        &[Size::Fit720],
        "iPhone 7",
    );
    assert_eq!((r.width, r.height), (3024, 4032));
}

// ------------------------------------------------------------------- HDR

#[test]
fn gain_map_photos_are_recorded_as_hdr_and_rendered_from_their_sdr_base() {
    for (path, kinds) in [
        (
            fixture("hdr/ultrahdr_apple_gainmap_new.jpg"),
            vec![GainMap::Apple],
        ),
        (
            fixture("hdr/libavif_paris_exif_xmp_gainmap_bigendian.jpg"),
            vec![GainMap::Hdrgm],
        ),
        (
            fixture("hdr/libavif_seine_sdr_gainmap_srgb.jpg"),
            vec![GainMap::Hdrgm],
        ),
        (
            fixture("hdr/libavif_seine_sdr_gainmap_srgb.avif"),
            vec![GainMap::Iso21496],
        ),
        (
            corpus("photos/iphone_13_pro_max.HEIC"),
            vec![GainMap::Apple],
        ),
        (corpus("seed/iphone_15_pro.heic"), vec![GainMap::Apple]),
    ] {
        let what = path.display().to_string();
        let r = render(&read(&path), &[Size::Fit720], &what);
        let hdr = r
            .hdr
            .clone()
            .unwrap_or_else(|| panic!("{what}: not recorded as HDR"));
        assert_eq!(hdr.gain_maps, kinds, "{what}");
        assert_eq!(hdr.transfer, None, "{what}");
        not_flat(&output(&r, Size::Fit720), &what);
    }
    for sdr in [
        "photos/jolla.jpg",
        "ext/photos/frozenpond.mpo",
        "seed/elephants.jpg",
    ] {
        let r = render(&read(&corpus(sdr)), &[Size::Fit720], sdr);
        assert_eq!(
            r.hdr, None,
            "{sdr} is not HDR (an MPO stereo pair is no gain map)"
        );
    }
}

#[test]
fn pq_and_hlg_photos_are_tone_mapped_to_good_sdr() {
    // The author's own SDR rendition of the same photo is the reference.
    let sdr = render(
        &read(&fixture("hdr/libavif_seine_sdr_gainmap_srgb.avif")),
        &[Size::Fit720],
        "SDR rendition",
    );
    let reference = output(&sdr, Size::Fit720);
    for (file, transfer, bits) in [
        ("hdr/libavif_seine_hdr_rec2020.avif", HdrTransfer::Pq, 10),
        ("hdr/seine_hlg_bt2020_10bit.avif", HdrTransfer::Hlg, 10),
    ] {
        let r = render(&read(&fixture(file)), &[Size::Fit720], file);
        let hdr = r
            .hdr
            .clone()
            .unwrap_or_else(|| panic!("{file}: not recorded as HDR"));
        assert_eq!(
            (hdr.transfer, hdr.bit_depth),
            (Some(transfer), bits),
            "{file}"
        );
        let img = output(&r, Size::Fit720);
        assert_eq!(img.dimensions(), reference.dimensions(), "{file}");
        let (mean, sd, clipped) = luma_stats(&img);
        let (ref_mean, ref_sd, _) = luma_stats(&reference);
        let (mad, ..) = compare(&thumb64(&img), &thumb64(&reference));
        let (sat, ref_sat) = (saturation(&img), saturation(&reference));
        eprintln!(
            "{file}: mean {mean:.0} (ref {ref_mean:.0}), sd {sd:.0} (ref {ref_sd:.0}), sat {sat:.2} (ref {ref_sat:.2}), clipped {:.2}%, MAD vs SDR rendition {mad:.1}",
            clipped * 100.0
        );
        // Not washed out (a PQ/HLG signal shown as SDR is flat and pale),
        // not clipped, and close to the SDR rendition.
        assert!(
            sd > 0.8 * ref_sd,
            "{file}: contrast {sd:.0} vs {ref_sd:.0}: washed out"
        );
        assert!(
            sat > 0.7 * ref_sat,
            "{file}: saturation {sat:.2} vs {ref_sat:.2}: washed out"
        );
        assert!(clipped < 0.02, "{file}: {:.1}% clipped", clipped * 100.0);
        assert!(mad < 25.0, "{file}: {mad:.1} from the SDR rendition");
    }
}

#[test]
fn ten_bit_p3_pq_renders_every_pregenerated_size() {
    let data = read(&fixture("hdr/libavif_cosmos1650_yuv444_10bpc_p3pq.avif"));
    let sizes = thumbfarm_shared::SizeLimits::default().pregenerated();
    let r = render(&data, &sizes, "cosmos");
    assert_eq!((r.width, r.height), (1024, 428));
    assert_eq!(
        r.hdr.as_ref().and_then(|h| h.transfer),
        Some(HdrTransfer::Pq)
    );
    let img = output(&r, Size::Fit720);
    let (_, sd, clipped) = luma_stats(&img);
    assert!(
        sd > 20.0 && clipped < 0.02,
        "sd {sd:.0}, clipped {clipped:.3}"
    );
    assert_eq!(output(&r, Size::Tile500).dimensions(), (500, 500));
}

#[test]
fn a_heif_pixel_bomb_is_refused_before_decoding() {
    let data = read(&corpus("ext/hostile/17000x17000.avif"));
    let err = render_bytes(&data, &[Size::Fit720], &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, RenderError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("17000x17000"), "{err}");
}
