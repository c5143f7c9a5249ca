//! The 16-bit counterpart of `resize::resize` (fast_image_resize U16x3, Lanczos3,
//! fractional crop inside the resize): 10/12-bit HEIC/AVIF keep their
//! precision until the output is tone-mapped / rounded to 8 bits.

use super::error::RenderError;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use thumbfarm_shared::sizes::CropRect;

fn fir_err(e: impl std::fmt::Display) -> RenderError {
    RenderError::Decode(format!("resize: {e}"))
}

/// Scales the `crop` of `src` (`sw`x`sh` RGB16) onto a new `dw`x`dh` RGB16 image.
pub fn resize16(
    resizer: &mut Resizer,
    src: &[u16],
    sw: u32,
    sh: u32,
    crop: CropRect,
    dw: u32,
    dh: u32,
) -> Result<Vec<u16>, RenderError> {
    // SAFETY: u16 -> u8 view of the same memory (alignment 1 <= 2, length x2).
    let bytes = unsafe {
        std::slice::from_raw_parts(src.as_ptr().cast::<u8>(), std::mem::size_of_val(src))
    };
    let src_view = ImageRef::new(sw, sh, bytes, PixelType::U16x3).map_err(fir_err)?;
    let (dw, dh) = (dw.max(1), dh.max(1));
    let mut dst = Image::new(dw, dh, PixelType::U16x3);
    let (swf, shf) = (f64::from(sw), f64::from(sh));
    let x = crop.x.clamp(0.0, swf);
    let y = crop.y.clamp(0.0, shf);
    let w = crop.width.min(swf - x).max(f64::MIN_POSITIVE);
    let h = crop.height.min(shf - y).max(f64::MIN_POSITIVE);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(x, y, w, h);
    resizer
        .resize(&src_view, &mut dst, &options)
        .map_err(fir_err)?;
    Ok(dst
        .buffer()
        .chunks_exact(2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .collect())
}
