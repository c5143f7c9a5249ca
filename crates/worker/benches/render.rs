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
use thumbfarm_shared::SizeLimits;
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

criterion_group!(benches, bench_decode, bench_resize_and_encode, bench_jobs);
criterion_main!(benches);
