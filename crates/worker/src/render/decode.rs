//! Step 3 of the pipeline: one decode per job, by format (JPEG at the
//! smallest DCT scale that covers what the outputs need; HEIC/AVIF through
//! libheif, 16 bits for 10/12-bit images; camera RAW from its embedded
//! preview or a develop; the rest through the `image` crate).

use super::camera_raw;
use super::error::RenderError;
use super::header::Header;
use super::limits::check_dimensions;
use super::options::RenderOptions;
use super::pixels::{Decoding, Need};
use super::probe::ImageFormat;
use super::{generic, heif, jpeg};

/// Decodes the pixels (once), at a DCT scale that covers `needs` for JPEG.
pub fn decode(
    data: &[u8],
    header: &Header,
    needs: &[Need],
    opts: &RenderOptions,
) -> Result<Decoding, RenderError> {
    let decoded = match header.format {
        ImageFormat::Jpeg => {
            let markers = header
                .jpeg
                .as_ref()
                .ok_or_else(|| RenderError::Decode("JPEG markers missing".into()))?;
            Decoding::Rgb8(jpeg::decode(data, markers, needs)?)
        }
        ImageFormat::Heic | ImageFormat::Avif => heif::decode(data, opts.max_pixels)?,
        ImageFormat::Raw(_) => {
            let info = header
                .raw
                .as_ref()
                .ok_or_else(|| RenderError::Decode("RAW header missing".into()))?;
            camera_raw::decode(
                data,
                info,
                (header.width, header.height),
                header.orientation,
                needs,
                opts,
            )?
        }
        other => Decoding::Rgb8(generic::decode(data, other, opts)?),
    };
    let (width, height, full_width, full_height) = decoded.dims();
    check_dimensions(full_width, full_height, opts)?;
    let (want, have) = decoded.sample_counts();
    if want != have {
        return Err(RenderError::Decode(format!(
            "decoder returned {have} samples for {width}x{height}"
        )));
    }
    if (full_width, full_height) != (header.width, header.height) {
        return Err(RenderError::Decode(format!(
            "header says {}x{}, decoder gave {full_width}x{full_height}",
            header.width, header.height
        )));
    }
    Ok(decoded)
}
