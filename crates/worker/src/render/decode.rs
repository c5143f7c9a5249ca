//! One decode per job: the header stage ([`probe`]: format, size,
//! orientation, limits) and the pixel stage ([`decode`]) for every format.

use super::limits::{check_dimensions, image_limits};
use super::probe::{self, ImageFormat, JpegMarkers};
use super::{heif, jpeg, RenderError, RenderOptions};
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;
use thumbfarm_shared::sizes::CropRect;

/// What the header says, before any pixel is allocated.
#[derive(Debug, Clone)]
pub struct Header {
    /// The detected container.
    pub format: ImageFormat,
    /// Stored width (before orientation).
    pub width: u32,
    /// Stored height (before orientation).
    pub height: u32,
    /// EXIF orientation to apply, 1..=8 (1 where the decoder already did).
    pub orientation: u8,
    /// JPEG markers (JPEG only).
    pub(crate) jpeg: Option<JpegMarkers>,
}

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

fn image_format(f: ImageFormat) -> Option<image::ImageFormat> {
    Some(match f {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Jpeg | ImageFormat::Heic | ImageFormat::Avif => return None,
    })
}

fn img_err(e: image::ImageError) -> RenderError {
    match e {
        image::ImageError::Limits(l) => RenderError::TooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => RenderError::Unsupported(u.to_string()),
        other => RenderError::Decode(other.to_string()),
    }
}

fn image_decoder<'a>(
    data: &'a [u8],
    format: image::ImageFormat,
    opts: &RenderOptions,
) -> Result<impl ImageDecoder + 'a, RenderError> {
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(image_limits(opts));
    reader.into_decoder().map_err(img_err)
}

/// Reads the header and checks the limits (no pixel buffer is allocated).
pub fn probe(data: &[u8], opts: &RenderOptions) -> Result<Header, RenderError> {
    let format = probe::detect(data)?;
    let header = match format {
        ImageFormat::Jpeg => {
            let m = probe::jpeg_markers(data)?;
            let orientation = m.exif.as_deref().map_or(1, probe::exif_orientation);
            Header {
                format,
                width: m.width,
                height: m.height,
                orientation,
                jpeg: Some(m),
            }
        }
        ImageFormat::Heic | ImageFormat::Avif => {
            let (width, height) = heif::probe(data)?;
            Header {
                format,
                width,
                height,
                orientation: 1,
                jpeg: None,
            }
        }
        other => {
            let fmt = image_format(other)
                .ok_or_else(|| RenderError::Unsupported(format!("{other:?}")))?;
            let mut dec = image_decoder(data, fmt, opts)?;
            let (width, height) = dec.dimensions();
            let mut orientation = dec
                .orientation()
                .map(|o| o.to_exif())
                .unwrap_or(1)
                .clamp(1, 8);
            if orientation == 1 {
                // Some writers keep the JPEG-style "Exif\0\0" prefix inside
                // the EXIF chunk (WebP, PNG), which the `image` crate misses.
                if let Ok(Some(exif)) = dec.exif_metadata() {
                    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
                    orientation = probe::exif_orientation(tiff);
                }
            }
            if orientation == 1 && other == ImageFormat::Png {
                if let Ok(Some(xmp)) = dec.xmp_metadata() {
                    orientation = probe::xmp_orientation(&xmp).unwrap_or(1);
                }
            }
            Header {
                format,
                width,
                height,
                orientation,
                jpeg: None,
            }
        }
    };
    check_dimensions(header.width, header.height, opts)?;
    Ok(header)
}

/// Decodes the pixels (once), at a DCT scale that covers `needs` for JPEG.
pub fn decode(
    data: &[u8],
    header: &Header,
    needs: &[Need],
    opts: &RenderOptions,
) -> Result<Decoded, RenderError> {
    let decoded = match header.format {
        ImageFormat::Jpeg => {
            let markers = header
                .jpeg
                .as_ref()
                .ok_or_else(|| RenderError::Decode("JPEG markers missing".into()))?;
            jpeg::decode(data, markers, needs)?
        }
        ImageFormat::Heic | ImageFormat::Avif => heif::decode(data)?,
        other => {
            let fmt = image_format(other)
                .ok_or_else(|| RenderError::Unsupported(format!("{other:?}")))?;
            let mut dec = image_decoder(data, fmt, opts)?;
            let icc = dec.icc_profile().ok().flatten();
            let img = DynamicImage::from_decoder(dec).map_err(img_err)?;
            let (width, height) = (img.width(), img.height());
            check_dimensions(width, height, opts)?;
            Decoded {
                pixels: rgb8_on_white(img),
                width,
                height,
                full_width: width,
                full_height: height,
                icc,
            }
        }
    };
    check_dimensions(decoded.full_width, decoded.full_height, opts)?;
    let expected = decoded.width as usize * decoded.height as usize * 3;
    if decoded.pixels.len() != expected {
        return Err(RenderError::Decode(format!(
            "decoder returned {} bytes for {}x{}",
            decoded.pixels.len(),
            decoded.width,
            decoded.height
        )));
    }
    Ok(decoded)
}

/// Converts any decoded image to packed RGB8, compositing alpha onto white.
fn rgb8_on_white(img: DynamicImage) -> Vec<u8> {
    if img.color().has_alpha() {
        flatten_rgba(img.into_rgba8().as_raw())
    } else {
        img.into_rgb8().into_raw()
    }
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
