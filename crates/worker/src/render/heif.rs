//! HEIC/HEIF (HEVC through libde265) and AVIF (AV1 through dav1d/aom) with
//! the system libheif (1.15 on Debian 12, through libheif-rs 0.20).
//!
//! libheif applies the `irot`/`imir`/`clap` transforms while decoding, and
//! the primary handle's width and height are already the displayed size, so
//! the EXIF orientation inside a HEIF file is ignored (applying it too would
//! rotate iPhone pictures twice).

use super::error::RenderError;
use super::pixels::{flatten_rgba, Decoded};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

fn heif_err(e: libheif_rs::HeifError) -> RenderError {
    RenderError::Decode(format!("HEIF: {e}"))
}

/// The displayed size of the primary image, from the container boxes only.
pub fn probe(data: &[u8]) -> Result<(u32, u32), RenderError> {
    let ctx = HeifContext::read_from_bytes(data).map_err(heif_err)?;
    let handle = ctx.primary_image_handle().map_err(heif_err)?;
    Ok((handle.width(), handle.height()))
}

/// Decodes the primary image to RGB8 (alpha flattened onto white), upright.
pub fn decode(data: &[u8]) -> Result<Decoded, RenderError> {
    let ctx = HeifContext::read_from_bytes(data).map_err(heif_err)?;
    let handle = ctx.primary_image_handle().map_err(heif_err)?;
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let icc = handle.color_profile_raw().map(|p| p.data);
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(heif_err)?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| RenderError::Decode("HEIF: no interleaved plane".into()))?;
    let bpp = if alpha { 4 } else { 3 };
    if plane.storage_bits_per_pixel != 8 * bpp as u8 {
        return Err(RenderError::Decode(format!(
            "HEIF: unexpected {} bits per pixel",
            plane.storage_bits_per_pixel
        )));
    }
    let (w, h) = (plane.width, plane.height);
    let row = w as usize * bpp;
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| RenderError::Decode("HEIF: short plane".into()))?;
        pixels.extend_from_slice(line);
    }
    let pixels = if alpha { flatten_rgba(&pixels) } else { pixels };
    Ok(Decoded {
        pixels,
        width: w,
        height: h,
        full_width: w,
        full_height: h,
        icc,
    })
}
