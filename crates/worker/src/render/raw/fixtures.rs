//! Test fixtures: patching a RAW's orientation.

use super::model::*;
use super::read::*;

// ---------------------------------------------------------------------------
// Test helper: orientation patching (fixtures for orientations 5..8)
// ---------------------------------------------------------------------------

/// Rewrites the Orientation tag of IFD0 of a TIFF-based RAW in place (for
/// making test fixtures with orientation 6/8 from real files).
pub fn set_tiff_orientation(data: &mut [u8], orientation: u8) -> Result<(), RawError> {
    let t = Tiff::new(data, 0).ok_or(RawError::NotRaw)?;
    let ifd0 = t
        .first_ifd()
        .and_then(|o| t.ifd(o))
        .ok_or_else(|| RawError::Corrupt("no IFD0".into()))?;
    let e = ifd0
        .get(TAG_ORIENTATION)
        .filter(|e| e.typ == 3)
        .ok_or_else(|| RawError::Unsupported("IFD0 has no SHORT Orientation tag".into()))?;
    let le = t.le;
    let pos = e.pos;
    let bytes = if le {
        u16::from(orientation).to_le_bytes()
    } else {
        u16::from(orientation).to_be_bytes()
    };
    data.get_mut(pos..pos + 2)
        .ok_or_else(|| RawError::Corrupt("orientation out of range".into()))?
        .copy_from_slice(&bytes);
    Ok(())
}
