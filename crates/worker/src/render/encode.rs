//! Encoding: JPEG with libjpeg-turbo's TurboJPEG 3 compressor (4:2:0,
//! optimised Huffman tables; progressive only above
//! [`PROGRESSIVE_ABOVE_PIXELS`], where it pays), PNG for
//! `colors`, lossy WebP through libwebp and AVIF through libaom (libheif). No
//! metadata is written: no EXIF, no XMP; the pixels are sRGB (every earlier
//! step converts to it), which is what a JPEG or WebP without a profile
//! means, and libheif gives the AVIF an `nclx` box saying sRGB.

use super::error::RenderError;
use image::ImageEncoder;
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

fn enc_err(e: impl std::fmt::Display) -> RenderError {
    RenderError::Encode(e.to_string())
}

/// Outputs with more pixels than this are encoded progressively; smaller
/// ones baseline with optimised Huffman tables (the same pixels either way:
/// only the entropy coding differs). Measured on the corpus photos
/// (docs/benchmarks.md "JPEG encoding"): progressive saves ~3 % of the bytes
/// of the large fits at 1.3–1.5× their encode time, and nothing (or less than
/// nothing: tiles ≤ 100 px are 4–16 % *smaller* baseline) on small ones.
/// 1.5 MP keeps `fit_1920` (1600×1200 for a 4:3 photo) and every larger fit
/// progressive — they hold half of the pre-generated set's bytes — and the
/// set as a whole within 2 % of all-progressive.
pub const PROGRESSIVE_ABOVE_PIXELS: u64 = 1_500_000;

/// A reusable JPEG compressor (one per job).
pub struct JpegEncoder {
    compressor: Compressor,
    progressive: bool,
}

impl JpegEncoder {
    /// A 4:2:0 compressor with optimised Huffman tables.
    pub fn new() -> Result<Self, RenderError> {
        let mut compressor = Compressor::new().map_err(enc_err)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(enc_err)?;
        compressor.set_optimize(true).map_err(enc_err)?;
        compressor.set_progressive(false).map_err(enc_err)?;
        Ok(JpegEncoder {
            compressor,
            progressive: false,
        })
    }

    /// Encodes packed RGB8 at `quality` (1..=100): progressive above
    /// [`PROGRESSIVE_ABOVE_PIXELS`], baseline below.
    pub fn encode(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        quality: u8,
    ) -> Result<Vec<u8>, RenderError> {
        let progressive = u64::from(width) * u64::from(height) > PROGRESSIVE_ABOVE_PIXELS;
        self.encode_with(rgb, width, height, quality, progressive)
    }

    /// Encodes packed RGB8 at `quality`, progressive or baseline as told
    /// (for benchmarks; [`JpegEncoder::encode`] chooses by size).
    pub fn encode_with(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        quality: u8,
        progressive: bool,
    ) -> Result<Vec<u8>, RenderError> {
        if progressive != self.progressive {
            self.compressor
                .set_progressive(progressive)
                .map_err(enc_err)?;
            self.progressive = progressive;
        }
        self.compressor
            .set_quality(i32::from(quality.clamp(1, 100)))
            .map_err(enc_err)?;
        let image = Image {
            pixels: rgb,
            width: width as usize,
            pitch: width as usize * 3,
            height: height as usize,
            format: PixelFormat::RGB,
        };
        self.compressor.compress_to_vec(image).map_err(enc_err)
    }
}

/// Encodes packed RGB8 as lossy WebP at `quality` (0..=100) with libwebp's
/// `method` (0 fastest .. 6 smallest).
pub fn encode_webp(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    method: u8,
) -> Result<Vec<u8>, RenderError> {
    let mut config = webp::WebPConfig::new().map_err(|()| enc_err("libwebp: no config"))?;
    config.quality = f32::from(quality.min(100));
    config.method = i32::from(method.min(6));
    let encoder = webp::Encoder::from_rgb(rgb, width, height);
    let out = encoder
        .encode_advanced(&config)
        .map_err(|e| enc_err(format!("libwebp: {e:?}")))?;
    Ok(out.to_vec())
}

/// Encodes packed RGB8 as AVIF (8-bit 4:2:0, sRGB `nclx`) with libaom
/// through libheif, at `quality` (0..=100, libheif's scale) and aom `speed`
/// (0 slowest .. 9 fastest), on `threads` threads (`None`: one).
pub fn encode_avif(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    speed: u8,
    threads: Option<usize>,
) -> Result<Vec<u8>, RenderError> {
    use libheif_rs::{
        Channel, ColorSpace, CompressionFormat, EncoderParameterValue as Param, EncoderQuality,
        HeifContext, Image, LibHeif, RgbChroma,
    };
    let heif = |what: &str, e: libheif_rs::HeifError| enc_err(format!("AVIF: {what}: {e}"));
    let row = width as usize * 3;
    if rgb.len() != row * height as usize || width == 0 || height == 0 {
        return Err(enc_err("AVIF: pixel buffer does not match the size"));
    }
    let mut image =
        Image::new(width, height, ColorSpace::Rgb(RgbChroma::Rgb)).map_err(|e| heif("image", e))?;
    image
        .create_plane(Channel::Interleaved, width, height, 8)
        .map_err(|e| heif("plane", e))?;
    {
        let planes = image.planes_mut();
        let plane = planes
            .interleaved
            .ok_or_else(|| enc_err("AVIF: no interleaved plane"))?;
        for (y, src) in rgb.chunks_exact(row).enumerate() {
            plane.data[y * plane.stride..][..row].copy_from_slice(src);
        }
    }
    let lib = LibHeif::new();
    let mut encoder = lib
        .encoder_for_format(CompressionFormat::Av1)
        .map_err(|e| heif("no AV1 encoder", e))?;
    encoder
        .set_quality(EncoderQuality::Lossy(quality.min(100)))
        .map_err(|e| heif("quality", e))?;
    let threads = threads.unwrap_or(1).clamp(1, 64) as i32;
    for (name, value) in [
        ("speed", Param::Int(i32::from(speed.min(9)))),
        ("threads", Param::Int(threads)),
        ("chroma", Param::String("420".into())),
    ] {
        encoder
            .set_parameter_value(name, value)
            .map_err(|e| heif(name, e))?;
    }
    let mut context = HeifContext::new().map_err(|e| heif("context", e))?;
    context
        .encode_image(&image, &mut encoder, None)
        .map_err(|e| heif("encode", e))?;
    context.write_to_bytes().map_err(|e| heif("write", e))
}

/// Encodes packed RGB8 as PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(enc_err)?;
    Ok(out)
}
