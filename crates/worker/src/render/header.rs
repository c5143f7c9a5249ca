//! Step 1 of the pipeline: what the header says (format, stored size,
//! orientation), checked against the limits before any pixel buffer exists.

use super::error::RenderError;
use super::limits::check_dimensions;
use super::options::RenderOptions;
use super::probe::{self, ImageFormat, JpegMarkers};
use super::{generic, heif};

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

/// Reads the header and checks the limits (no pixel buffer is allocated).
pub fn read(data: &[u8], opts: &RenderOptions) -> Result<Header, RenderError> {
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
            let (width, height, orientation) = generic::header(data, other, opts)?;
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
