//! Resizing with `fast_image_resize` (SIMD convolution, Lanczos3), with the
//! fractional crop of fill sizes applied inside the resize (no copy).

use super::error::RenderError;
use super::pixels::Rgb;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use thumbfarm_shared::sizes::CropRect;

fn fir_err(e: impl std::fmt::Display) -> RenderError {
    RenderError::Decode(format!("resize: {e}"))
}

/// Scales the `crop` of `src` (`sw`×`sh` RGB8) onto a new `dw`×`dh` image.
pub fn resize(
    resizer: &mut Resizer,
    src: &[u8],
    sw: u32,
    sh: u32,
    crop: CropRect,
    dw: u32,
    dh: u32,
) -> Result<Rgb, RenderError> {
    let src_view = ImageRef::new(sw, sh, src, PixelType::U8x3).map_err(fir_err)?;
    let mut dst = Image::new(dw.max(1), dh.max(1), PixelType::U8x3);
    // Keep the crop inside the source (floating-point error at the edges).
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
    Ok(Rgb {
        pixels: dst.into_vec(),
        width: dw.max(1),
        height: dh.max(1),
    })
}
