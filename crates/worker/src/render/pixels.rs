//! The pixel buffers passed between the pipeline's steps.

use super::tonemap::Signal;
use thumbfarm_shared::sizes::CropRect;

/// A region of the stored original that some output is scaled from, and that
/// output's size in stored orientation: what a DCT-scaled decode must cover.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// The crop in stored full-resolution coordinates.
    pub crop: CropRect,
    /// Output width (stored orientation).
    pub width: u32,
    /// Output height (stored orientation).
    pub height: u32,
}

/// Decoded pixels: RGB8, tightly packed, alpha flattened onto white, in the
/// stored orientation, possibly reduced by DCT scaling.
#[derive(Debug)]
pub struct Decoded {
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// Stored width of the original at full resolution.
    pub full_width: u32,
    /// Stored height of the original at full resolution.
    pub full_height: u32,
    /// Embedded ICC profile of the RGB pixels, still to convert to sRGB.
    pub icc: Option<Vec<u8>>,
}

/// Decoded pixels of more than 8 bits per channel (10/12-bit HEIC/AVIF, a
/// RAW develop): RGB16, tightly packed, alpha flattened onto white, in the
/// stored orientation, and how to bring them to SDR RGB8 after resizing.
#[derive(Debug)]
pub struct Decoded16 {
    /// `width * height * 3` samples, full range.
    pub pixels: Vec<u16>,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// Stored width of the original at full resolution.
    pub full_width: u32,
    /// Stored height of the original at full resolution.
    pub full_height: u32,
    /// Embedded ICC profile (SDR only: HDR pixels are described by `signal`).
    pub icc: Option<Vec<u8>>,
    /// SDR (round to 8 bits) or PQ/HLG (tone map to SDR).
    pub signal: Signal,
}

/// What a decoder hands to the resize step.
#[derive(Debug)]
pub enum Decoding {
    /// 8 bits per channel.
    Rgb8(Decoded),
    /// More than 8 bits per channel.
    Rgb16(Decoded16),
}

impl Decoding {
    /// (decoded width, height, full width, full height).
    pub fn dims(&self) -> (u32, u32, u32, u32) {
        match self {
            Decoding::Rgb8(d) => (d.width, d.height, d.full_width, d.full_height),
            Decoding::Rgb16(d) => (d.width, d.height, d.full_width, d.full_height),
        }
    }

    /// Samples per the decoded size (3 per pixel) and the samples present.
    pub fn sample_counts(&self) -> (usize, usize) {
        let (w, h, ..) = self.dims();
        let want = w as usize * h as usize * 3;
        let have = match self {
            Decoding::Rgb8(d) => d.pixels.len(),
            Decoding::Rgb16(d) => d.pixels.len(),
        };
        (want, have)
    }
}

/// A packed RGB8 image.
#[derive(Debug, Clone)]
pub struct Rgb {
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Composites RGBA8 onto white, returning RGB8.
pub fn flatten_rgba(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let a = u32::from(px[3]);
        for &c in &px[..3] {
            let v = (u32::from(c) * a + 255 * (255 - a) + 127) / 255;
            out.push(v as u8);
        }
    }
    out
}
