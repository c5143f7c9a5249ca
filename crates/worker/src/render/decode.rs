//! Step 3 of the pipeline: one decode per job, by format (JPEG at the
//! smallest DCT scale that covers what the outputs need; HEIC/AVIF through
//! libheif; the rest through the `image` crate).

use super::error::RenderError;
use super::header::Header;
use super::limits::check_dimensions;
use super::options::RenderOptions;
use super::pixels::{Decoded, Need};
use super::probe::ImageFormat;
use super::{generic, heif, jpeg};

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
        other => generic::decode(data, other, opts)?,
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
    if (decoded.full_width, decoded.full_height) != (header.width, header.height) {
        return Err(RenderError::Decode(format!(
            "header says {}x{}, decoder gave {}x{}",
            header.width, header.height, decoded.full_width, decoded.full_height
        )));
    }
    Ok(decoded)
}
