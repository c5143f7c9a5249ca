//! Camera RAW originals in the render pipeline (glue between the worker's
//! render steps and `raw.rs`).
//!
//! - header: the stored size is the RAW's developed size, or, when the raw
//!   data cannot be developed here (truncated file, GoPro VC-5), the largest
//!   preview's size, so the planner caps every output at what can be served;
//! - decode: the largest embedded preview when it covers every output
//!   (libjpeg-turbo with DCT scaling, like any JPEG), else a full develop;
//!   a develop that fails on damaged raw data falls back to the preview.
//!   Either way `full_width`/`full_height` are the header's, and the
//!   pipeline's crop scaling maps the outputs onto the smaller buffer.

use super::error::RenderError;
use super::jpeg;
use super::limits::check_dimensions;
use super::options::RenderOptions;
use super::pixels::{Decoded, Decoded16, Decoding, Need};
use super::probe;
use super::raw::{self, PreviewRef, RawData, RawError, RawInfo, RawKind, RawLimits};
use super::tonemap::Signal;
use std::time::Duration;

impl From<RawError> for RenderError {
    fn from(e: RawError) -> Self {
        match e {
            RawError::NotRaw | RawError::Unsupported(_) => RenderError::Unsupported(e.to_string()),
            RawError::TooLarge(_) => RenderError::TooLarge(e.to_string()),
            RawError::Truncated(_)
            | RawError::Corrupt(_)
            | RawError::Timeout(_)
            | RawError::Decoder(_) => RenderError::Decode(e.to_string()),
        }
    }
}

/// The develop's limits from the render options. The sensor pixel limit is
/// the general one: a develop peaks at about 40 bytes per sensor pixel.
pub fn limits(opts: &RenderOptions) -> RawLimits {
    RawLimits {
        max_file_size: opts.max_file_size,
        max_pixels: opts.max_pixels,
        max_dimension: opts.max_dimension,
        max_time: Some(Duration::from_secs(60)),
    }
}

/// Whether this worker can develop the raw data of the file.
fn developable(info: &RawInfo) -> bool {
    info.raw_data == RawData::Present && info.kind != RawKind::Gpr
}

/// The preview that stands for the whole picture when the raw data cannot
/// be developed: the largest one, of any shape.
fn stand_in(info: &RawInfo) -> Option<&PreviewRef> {
    info.previews.first()
}

/// Header facts: (stored width, stored height, orientation), limits checked.
pub fn header(data: &[u8], opts: &RenderOptions) -> Result<(u32, u32, u8, RawInfo), RenderError> {
    let info = raw::probe_raw(data)?;
    if info.sensor_width > 0 && info.sensor_height > 0 {
        check_dimensions(info.sensor_width, info.sensor_height, opts)?;
    }
    if developable(&info) {
        return Ok((
            info.stored_width,
            info.stored_height,
            info.orientation,
            info,
        ));
    }
    let Some(p) = stand_in(&info) else {
        return Err(match &info.raw_data {
            RawData::Truncated { .. } => RenderError::Decode(format!(
                "{}: truncated file without an embedded preview",
                info.kind.name()
            )),
            _ => RenderError::Unsupported(format!(
                "{}: no decoder for its raw data and no embedded preview",
                info.kind.name()
            )),
        });
    };
    let o = raw::preview_orientation(&info, p);
    Ok((p.width, p.height, o, info))
}

/// Decodes the pixels for `needs` (stored orientation, header coordinates).
pub fn decode(
    data: &[u8],
    info: &RawInfo,
    full: (u32, u32),
    orientation: u8,
    needs: &[Need],
    opts: &RenderOptions,
) -> Result<Decoding, RenderError> {
    if !developable(info) {
        let p = stand_in(info).ok_or_else(|| RenderError::Decode("no preview".into()))?;
        return preview(data, p, full, needs).map(Decoding::Rgb8);
    }
    // The full-resolution size the outputs need (a crop needs more of it).
    let (mut need_w, mut need_h) = (0f64, 0f64);
    for n in needs {
        need_w = need_w.max(f64::from(n.width) * f64::from(full.0) / n.crop.width.max(1e-9));
        need_h = need_h.max(f64::from(n.height) * f64::from(full.1) / n.crop.height.max(1e-9));
    }
    // Previews stored upright (pre-rotated) do not fit the stored geometry.
    let usable = raw::largest_usable_preview(info)
        .filter(|p| raw::preview_orientation(info, p) == orientation);
    if let Some(p) = usable {
        if f64::from(p.width) + 0.5 >= need_w && f64::from(p.height) + 0.5 >= need_h {
            return preview(data, p, full, needs).map(Decoding::Rgb8);
        }
    }
    match raw::decode_raw(data, &limits(opts)) {
        // 16 bits through the resize, like a 10/12-bit HEIC.
        Ok(dev) => Ok(Decoding::Rgb16(Decoded16 {
            pixels: dev.pixels,
            width: dev.width,
            height: dev.height,
            // The develop's crop can differ from the header's by a few
            // pixels; the crop scaling absorbs it (<1% aspect change).
            full_width: full.0,
            full_height: full.1,
            icc: None, // sRGB
            signal: Signal::Sdr,
        })),
        Err(e) => match usable {
            Some(p) if !matches!(e, RawError::TooLarge(_)) => {
                tracing::warn!(error = %e, "RAW develop failed, using the embedded preview");
                preview(data, p, full, needs).map(Decoding::Rgb8)
            }
            _ => Err(e.into()),
        },
    }
}

/// Decodes an embedded preview JPEG at the smallest DCT scale that covers
/// the needs (mapped into the preview's pixels). The preview's own EXIF
/// orientation is never used: the header's orientation is the RAW's.
fn preview(
    data: &[u8],
    p: &PreviewRef,
    full: (u32, u32),
    needs: &[Need],
) -> Result<Decoded, RenderError> {
    let bytes = p.bytes(data);
    let markers = probe::jpeg_markers(bytes)?;
    let scaled: Vec<Need> = needs
        .iter()
        .map(|n| Need {
            crop: n.crop.scaled(full, (markers.width, markers.height)),
            width: n.width,
            height: n.height,
        })
        .collect();
    let mut decoded = jpeg::decode(bytes, &markers, &scaled)?;
    decoded.full_width = full.0;
    decoded.full_height = full.1;
    Ok(decoded)
}
