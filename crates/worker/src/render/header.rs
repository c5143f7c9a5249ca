//! Step 1 of the pipeline: what the header says (format, stored size,
//! orientation), checked against the limits before any pixel buffer exists.

use super::camera_raw;
use super::error::RenderError;
use super::hdr;
use super::limits::check_dimensions;
use super::options::RenderOptions;
use super::probe::{self, ImageFormat, JpegMarkers};
use super::raw::RawInfo;
use super::{generic, heif};
use thumbfarm_shared::manifest as m;

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
    /// What the RAW header says (camera RAW only).
    pub(crate) raw: Option<RawInfo>,
    /// What the manifest records about HDR (`None`: SDR).
    pub hdr: Option<m::HdrInfo>,
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
                raw: None,
                // Ultra HDR / Apple HDR JPEGs: the primary is the SDR base.
                hdr: hdr::jpeg(data).to_manifest(8),
            }
        }
        ImageFormat::Heic | ImageFormat::Avif => {
            let h = heif::probe(data, opts.max_pixels)?;
            if h.hdr.is_hdr() {
                tracing::debug!(hdr = %h.hdr.describe(), bits = h.bit_depth, "HDR original");
            }
            Header {
                format,
                width: h.width,
                height: h.height,
                // libheif applies irot/imir; the EXIF orientation only when
                // the file has neither (applied once either way).
                orientation: h.orientation(true),
                jpeg: None,
                raw: None,
                hdr: h.hdr.to_manifest(h.bit_depth),
            }
        }
        ImageFormat::Raw(_) => {
            let (width, height, orientation, info) = camera_raw::header(data, opts)?;
            Header {
                format,
                width,
                height,
                orientation,
                jpeg: None,
                raw: Some(info),
                hdr: None,
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
                raw: None,
                hdr: None,
            }
        }
    };
    check_dimensions(header.width, header.height, opts)?;
    Ok(header)
}
