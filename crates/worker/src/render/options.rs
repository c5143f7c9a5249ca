//! Encoder settings and input limits of the render pipeline.

use thumbfarm_shared::Size;

/// The default WebP quality (docs/benchmarks.md: the same DSSIM as the
/// JPEG at its default quality, on the corpus photos).
pub const DEFAULT_WEBP_QUALITY: u8 = 87;
/// The default AVIF quality (chosen like [`DEFAULT_WEBP_QUALITY`]).
pub const DEFAULT_AVIF_QUALITY: u8 = 76;

/// Limits and encoder settings for rendering.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderOptions {
    /// JPEG quality for boxes above 150 px.
    pub jpeg_quality: u8,
    /// JPEG quality for boxes of 150 px and below.
    pub jpeg_quality_small: u8,
    /// WebP quality (0..=100).
    pub webp_quality: u8,
    /// libwebp's effort (0 fastest .. 6 smallest).
    pub webp_method: u8,
    /// AVIF quality (libheif's 0..=100 scale for libaom).
    pub avif_quality: u8,
    /// libaom speed (0 slowest .. 9 fastest).
    pub avif_speed: u8,
    /// Threads a job encodes its outputs on (the worker gives each job
    /// `cores / --concurrency`; 1: one after the other).
    pub encode_threads: usize,
    /// Largest pixel count of an original (after decoding), e.g. 100 MP.
    pub max_pixels: u64,
    /// Largest original file in bytes.
    pub max_file_size: u64,
    /// Largest width or height of an original.
    pub max_dimension: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            jpeg_quality: 83,
            jpeg_quality_small: 78,
            webp_quality: DEFAULT_WEBP_QUALITY,
            webp_method: 4,
            avif_quality: DEFAULT_AVIF_QUALITY,
            avif_speed: 8,
            encode_threads: 1,
            max_pixels: 100_000_000,
            max_file_size: 512 * 1024 * 1024,
            max_dimension: 65_535,
        }
    }
}

impl RenderOptions {
    /// The JPEG quality for a size (the small quality for boxes ≤ 150 px).
    pub fn quality_for(&self, size: Size) -> u8 {
        if size.long_side() <= 150 {
            self.jpeg_quality_small
        } else {
            self.jpeg_quality
        }
    }
}
