//! Camera RAW support: format sniffing, a header-only probe (sizes,
//! orientation, embedded JPEG previews) and a full develop to sRGB through
//! the `rawler` crate.
//!
//! The header code is written for hostile input: every read is bounds
//! checked (no indexing or `unwrap` on data taken from the file), walks are
//! bounded in depth and count, and nothing proportional to the picture is
//! allocated before the limits are checked. The decoder (`rawler`) is run
//! behind `catch_unwind`, since it still has `panic!`/`todo!` paths.
//!
//! Pixel conventions match the worker's render pipeline: [`decode_raw`]
//! returns the developed picture in *stored* orientation (the orientation
//! in [`RawInfo::orientation`] is still to be applied), and an embedded
//! preview is likewise stored unrotated: apply [`preview_orientation`],
//! never the EXIF orientation inside the preview JPEG.

#[cfg(feature = "raw-develop")]
mod develop;
mod fixtures;
mod model;
mod probe;
mod read;

#[cfg(feature = "raw-develop")]
pub use develop::decode_raw;
pub use fixtures::set_tiff_orientation;
pub use model::*;
pub use probe::{is_raw, largest_usable_preview, preview_for_box, preview_orientation, probe_raw};

/// Without the `raw-develop` feature there is no develop: RAWs are served
/// from their embedded previews only.
#[cfg(not(feature = "raw-develop"))]
pub fn decode_raw(_data: &[u8], _limits: &RawLimits) -> Result<Developed, RawError> {
    Err(RawError::Unsupported(
        "camera RAW develop (this worker was built without the raw-develop feature)".into(),
    ))
}
