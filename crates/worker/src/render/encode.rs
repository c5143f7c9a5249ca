//! Encoding: progressive JPEG with libjpeg-turbo's TurboJPEG 3 compressor
//! (4:2:0, optimised Huffman tables as part of progressive coding), PNG for
//! `colors`. No metadata is written.

use super::error::RenderError;
use image::ImageEncoder;
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

fn enc_err(e: impl std::fmt::Display) -> RenderError {
    RenderError::Encode(e.to_string())
}

/// A reusable JPEG compressor (one per job).
pub struct JpegEncoder {
    compressor: Compressor,
}

impl JpegEncoder {
    /// A progressive 4:2:0 compressor.
    pub fn new() -> Result<Self, RenderError> {
        let mut compressor = Compressor::new().map_err(enc_err)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(enc_err)?;
        compressor.set_progressive(true).map_err(enc_err)?;
        Ok(JpegEncoder { compressor })
    }

    /// Encodes packed RGB8 at `quality` (1..=100).
    pub fn encode(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        quality: u8,
    ) -> Result<Vec<u8>, RenderError> {
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

/// Encodes packed RGB8 as PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(enc_err)?;
    Ok(out)
}
