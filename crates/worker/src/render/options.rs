//! Encoder settings and input limits of the render pipeline.

use thumbfarm_shared::Size;

/// Limits and encoder settings for rendering.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderOptions {
    /// JPEG quality for boxes above 150 px.
    pub jpeg_quality: u8,
    /// JPEG quality for boxes of 150 px and below.
    pub jpeg_quality_small: u8,
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
