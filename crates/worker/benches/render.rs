//! Render pipeline micro benchmarks (`cargo bench -p thumbfarm-worker --bench render`):
//! JPEG decode at full size vs DCT-scaled, resize per size, encode
//! (libjpeg-turbo progressive vs the `image` crate), and whole jobs.
//!
//! Uses a 12 MP phone JPEG from the shared corpus (`$THUMBFARM_CORPUS`, or
//! `shared/corpus` beside the workspace); skipped when it is missing.

use criterion::{criterion_group, criterion_main, Criterion};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::ImageEncoder;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use thumbfarm_shared::{Size, SizeLimits};
use thumbfarm_worker::render::{render_bytes, RenderOptions};
use turbojpeg::{Decompressor, PixelFormat, ScalingFactor};

fn corpus() -> PathBuf {
    std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}

fn read(rel: &str) -> Option<Vec<u8>> {
    std::fs::read(corpus().join(rel)).ok()
}

fn decode_rgb(data: &[u8], scale: ScalingFactor) -> (Vec<u8>, usize, usize) {
    let mut d = Decompressor::new().expect("decompressor");
    d.set_scaling_factor(scale).expect("scale");
    let header = d.read_header(data).expect("header").scaled(scale);
    let mut pixels = vec![0u8; header.width * header.height * 3];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: header.width,
        pitch: header.width * 3,
        height: header.height,
        format: PixelFormat::RGB,
    };
    // Warnings (damaged camera files) still fill the buffer.
    let _ = d.decompress(data, image);
    (pixels, header.width, header.height)
}

fn bench_decode(c: &mut Criterion) {
    let Some(data) =
        read("ext/photos/pixel4xl_motion_photo.jpg").or_else(|| read("photos/jolla.jpg"))
    else {
        return;
    };
    let mut g = c.benchmark_group("jpeg_decode_12mp");
    g.sample_size(10);
    for (name, scale) in [
        ("full", ScalingFactor::ONE),
        ("half", ScalingFactor::ONE_HALF),
        ("quarter", ScalingFactor::ONE_QUARTER),
        ("eighth", ScalingFactor::ONE_EIGHTH),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(decode_rgb(&data, scale))));
    }
    g.finish();
}

fn bench_resize_and_encode(c: &mut Criterion) {
    let Some(data) =
        read("ext/photos/pixel4xl_motion_photo.jpg").or_else(|| read("photos/jolla.jpg"))
    else {
        return;
    };
    let (pixels, w, h) = decode_rgb(&data, ScalingFactor::ONE_HALF);
    let src = ImageRef::new(w as u32, h as u32, &pixels, PixelType::U8x3).expect("src");
    let mut g = c.benchmark_group("resize_from_half");
    g.sample_size(10);
    let mut resizer = Resizer::new();
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    for (name, dw, dh) in [("fit_1920", 1600u32, 1200u32), ("fit_720", 720, 540)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut dst = Image::new(dw, dh, PixelType::U8x3);
                resizer.resize(&src, &mut dst, &opts).expect("resize");
                black_box(dst)
            })
        });
    }
    g.finish();

    let mut dst = Image::new(1600, 1200, PixelType::U8x3);
    resizer.resize(&src, &mut dst, &opts).expect("resize");
    let rgb = dst.buffer().to_vec();
    let mut g = c.benchmark_group("encode_1600x1200_q83");
    g.sample_size(10);
    for progressive in [true, false] {
        let name = if progressive {
            "turbojpeg_progressive"
        } else {
            "turbojpeg_baseline"
        };
        g.bench_function(name, |b| {
            let mut comp = turbojpeg::Compressor::new().expect("compressor");
            comp.set_quality(83).expect("q");
            comp.set_subsamp(turbojpeg::Subsamp::Sub2x2)
                .expect("subsamp");
            comp.set_progressive(progressive).expect("progressive");
            b.iter(|| {
                let img = turbojpeg::Image {
                    pixels: rgb.as_slice(),
                    width: 1600,
                    pitch: 1600 * 3,
                    height: 1200,
                    format: PixelFormat::RGB,
                };
                black_box(comp.compress_to_vec(img).expect("encode"))
            })
        });
    }
    g.bench_function("image_crate_baseline", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 83)
                .write_image(&rgb, 1600, 1200, image::ExtendedColorType::Rgb8)
                .expect("encode");
            black_box(out)
        })
    });
    g.finish();
}

fn bench_jobs(c: &mut Criterion) {
    let wanted = SizeLimits::default().pregenerated();
    let opts = RenderOptions::default();
    let mut g = c.benchmark_group("render_pregenerated");
    g.sample_size(10);
    for rel in [
        "ext/photos/pixel4xl_motion_photo.jpg",
        "photos/jolla.jpg",
        "seed/iphone_7.heic",
    ] {
        let Some(data) = read(rel) else { continue };
        let name = rel.rsplit('/').next().unwrap_or(rel);
        g.bench_function(name, |b| {
            b.iter(|| black_box(render_bytes(&data, &wanted, &opts).expect("render")))
        });
    }
    g.finish();
}

/// Camera files: the same request served from a RAW's embedded preview and
/// from a full develop, current HEICs, PQ/HLG tone mapping.
fn bench_camera_files(c: &mut Criterion) {
    let opts = RenderOptions::default();
    let fixture = |rel: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(rel),
        )
        .ok()
    };
    let mut g = c.benchmark_group("camera_files");
    g.sample_size(10);
    let cases: [Case; 10] = [
        // The same DNG: fit_720 from its 1024x683 preview, fit_4096 developed.
        (
            "dng_preview_fit720",
            read("seed/canon_eos_6d.dng"),
            &[Size::Fit720],
        ),
        (
            "dng_develop_fit4096",
            read("seed/canon_eos_6d.dng"),
            &[Size::Fit4096],
        ),
        // 6000x4000 JpgFromRaw, DCT-scaled to what fit_720 needs.
        (
            "nef_preview_fit720",
            read("raw/nikon_d7100_truncated.nef"),
            &[Size::Fit720],
        ),
        (
            "arw_preview_pregenerated",
            read("raw/sony_slt-a55v_truncated.arw"),
            &PREGENERATED,
        ),
        (
            "crw_preview_fit720",
            read("raw/canon_eos_d30.crw"),
            &[Size::Fit720],
        ),
        // fit_1920 of a 2160x1440 sensor: no preview is big enough.
        (
            "crw_develop_fit1920",
            read("raw/canon_eos_d30.crw"),
            &[Size::Fit1920],
        ),
        (
            "dng_develop_pregenerated",
            read("seed/canon_eos_6d.dng"),
            &PREGENERATED,
        ),
        (
            "heic_iphone15_pregenerated",
            read("seed/iphone_15_pro.heic"),
            &PREGENERATED,
        ),
        (
            "avif_pq_10bit_tonemapped",
            fixture("hdr/libavif_cosmos1650_yuv444_10bpc_p3pq.avif"),
            &PREGENERATED,
        ),
        (
            "jpeg_ultrahdr_pregenerated",
            fixture("hdr/libavif_seine_sdr_gainmap_srgb.jpg"),
            &PREGENERATED,
        ),
    ];
    for (name, data, sizes) in cases {
        let Some(data) = data else { continue };
        g.bench_function(name, |b| {
            b.iter(|| black_box(render_bytes(&data, sizes, &opts).expect("render")))
        });
    }
    g.finish();
}

/// A named input and the sizes rendered from it.
type Case = (&'static str, Option<Vec<u8>>, &'static [Size]);

/// The pre-generated set at the default static limit.
const PREGENERATED: [Size; 8] = [
    Size::Colors,
    Size::Tile50,
    Size::Tile100,
    Size::Tile224,
    Size::Fit720,
    Size::Tile500,
    Size::Fit1280,
    Size::Fit1920,
];

criterion_group!(
    benches,
    bench_decode,
    bench_resize_and_encode,
    bench_jobs,
    bench_camera_files
);
criterion_main!(benches);
