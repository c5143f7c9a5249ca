//! The formats the `image` crate decodes (PNG, GIF, WebP, TIFF, BMP): their
//! header facts and their pixels (first frame, alpha flattened onto white).

use super::error::RenderError;
use super::limits::{check_dimensions, image_limits};
use super::options::RenderOptions;
use super::pixels::{flatten_rgba, Decoded};
use super::probe::{self, ImageFormat};
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;

/// The `image` crate's format for one of ours (`None`: not decoded here).
pub fn image_format(f: ImageFormat) -> Option<image::ImageFormat> {
    Some(match f {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Jpeg | ImageFormat::Heic | ImageFormat::Avif | ImageFormat::Raw(_) => {
            return None
        }
    })
}

fn img_err(e: image::ImageError) -> RenderError {
    match e {
        image::ImageError::Limits(l) => RenderError::TooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => RenderError::Unsupported(u.to_string()),
        other => RenderError::Decode(other.to_string()),
    }
}

fn decoder<'a>(
    data: &'a [u8],
    format: ImageFormat,
    opts: &RenderOptions,
) -> Result<impl ImageDecoder + 'a, RenderError> {
    let fmt =
        image_format(format).ok_or_else(|| RenderError::Unsupported(format!("{format:?}")))?;
    let mut reader = ImageReader::with_format(Cursor::new(data), fmt);
    reader.limits(image_limits(opts));
    reader.into_decoder().map_err(img_err)
}

/// Stored width, height and EXIF orientation (1..=8), from the header only.
pub fn header(
    data: &[u8],
    format: ImageFormat,
    opts: &RenderOptions,
) -> Result<(u32, u32, u8), RenderError> {
    let mut dec = decoder(data, format, opts)?;
    let (width, height) = dec.dimensions();
    let mut orientation = dec
        .orientation()
        .map(|o| o.to_exif())
        .unwrap_or(1)
        .clamp(1, 8);
    if orientation == 1 {
        // Some writers keep the JPEG-style "Exif\0\0" prefix inside the EXIF
        // chunk (WebP, PNG), which the `image` crate misses.
        if let Ok(Some(exif)) = dec.exif_metadata() {
            let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
            orientation = probe::exif_orientation(tiff);
        }
    }
    if orientation == 1 && format == ImageFormat::Png {
        if let Ok(Some(xmp)) = dec.xmp_metadata() {
            orientation = probe::xmp_orientation(&xmp).unwrap_or(1);
        }
    }
    Ok((width, height, orientation))
}

/// Decodes the first frame to packed RGB8 (alpha flattened onto white), with
/// its embedded ICC profile.
pub fn decode(
    data: &[u8],
    format: ImageFormat,
    opts: &RenderOptions,
) -> Result<Decoded, RenderError> {
    let mut dec = decoder(data, format, opts)?;
    let icc = dec.icc_profile().ok().flatten();
    let img = DynamicImage::from_decoder(dec).map_err(img_err)?;
    let (width, height) = (img.width(), img.height());
    check_dimensions(width, height, opts)?;
    Ok(Decoded {
        pixels: rgb8_on_white(img),
        width,
        height,
        full_width: width,
        full_height: height,
        icc,
    })
}

/// Converts any decoded image to packed RGB8, compositing alpha onto white.
fn rgb8_on_white(img: DynamicImage) -> Vec<u8> {
    if img.color().has_alpha() {
        flatten_rgba(img.into_rgba8().as_raw())
    } else {
        img.into_rgb8().into_raw()
    }
}
