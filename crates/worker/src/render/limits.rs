//! The limits every original is checked against before any pixel buffer is
//! allocated.

use super::error::RenderError;
use super::options::RenderOptions;

/// Refuses a file larger than the configured maximum (checked from the
/// file's metadata, before it is read).
pub fn check_file_size(len: u64, opts: &RenderOptions) -> Result<(), RenderError> {
    if len > opts.max_file_size {
        return Err(RenderError::TooLarge(format!(
            "file is {len} bytes, the limit is {}",
            opts.max_file_size
        )));
    }
    Ok(())
}

/// Refuses a header that declares an empty image, a side above the maximum
/// dimension or more pixels than the maximum pixel count.
pub fn check_dimensions(width: u32, height: u32, opts: &RenderOptions) -> Result<(), RenderError> {
    if width == 0 || height == 0 {
        return Err(RenderError::Decode(format!(
            "image declares {width}x{height} pixels"
        )));
    }
    if width > opts.max_dimension || height > opts.max_dimension {
        return Err(RenderError::TooLarge(format!(
            "{width}x{height} exceeds the maximum side of {} px",
            opts.max_dimension
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > opts.max_pixels {
        return Err(RenderError::TooLarge(format!(
            "{width}x{height} ({pixels} px) exceeds the limit of {} px",
            opts.max_pixels
        )));
    }
    Ok(())
}

/// The `image` crate's own limits, a second line of defence behind
/// [`check_dimensions`]: the same sides, and allocations bounded by an RGBA8
/// buffer of the maximum pixel count plus working memory.
pub fn image_limits(opts: &RenderOptions) -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(opts.max_dimension);
    limits.max_image_height = Some(opts.max_dimension);
    limits.max_alloc = Some(
        opts.max_pixels
            .saturating_mul(4)
            .saturating_add(64 * 1024 * 1024),
    );
    limits
}
