//! The types of the RAW module: formats, previews, probe facts, limits,
//! errors, developed pixels.

use std::time::Duration;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A camera RAW container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Adobe DNG (cameras, iPhone ProRAW, Pixel, ...).
    Dng,
    /// GoPro GPR: a DNG whose raw data is VC-5 compressed.
    Gpr,
    /// Canon CR2 (TIFF based).
    Cr2,
    /// Canon CR3 (ISO base media file).
    Cr3,
    /// Canon CRW (CIFF).
    Crw,
    /// Nikon NEF/NRW.
    Nef,
    /// Sony ARW/SR2/SRF.
    Arw,
    /// Fujifilm RAF.
    Raf,
    /// Olympus / OM System ORF.
    Orf,
    /// Panasonic / Leica RW2, RWL.
    Rw2,
    /// Pentax / Ricoh PEF.
    Pef,
    /// Samsung SRW.
    Srw,
    /// Another TIFF-based RAW (Kodak, Hasselblad, Epson, Mamiya, Leaf...).
    OtherTiff,
}

impl RawKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            RawKind::Dng => "DNG",
            RawKind::Gpr => "GoPro GPR",
            RawKind::Cr2 => "Canon CR2",
            RawKind::Cr3 => "Canon CR3",
            RawKind::Crw => "Canon CRW",
            RawKind::Nef => "Nikon NEF",
            RawKind::Arw => "Sony ARW",
            RawKind::Raf => "Fujifilm RAF",
            RawKind::Orf => "Olympus ORF",
            RawKind::Rw2 => "Panasonic RW2",
            RawKind::Pef => "Pentax PEF",
            RawKind::Srw => "Samsung SRW",
            RawKind::OtherTiff => "TIFF-based camera RAW",
        }
    }

    /// The media type to record in the manifest.
    pub fn media_type(self) -> &'static str {
        match self {
            RawKind::Dng => "image/x-adobe-dng",
            RawKind::Gpr => "image/x-gopro-gpr",
            RawKind::Cr2 => "image/x-canon-cr2",
            RawKind::Cr3 => "image/x-canon-cr3",
            RawKind::Crw => "image/x-canon-crw",
            RawKind::Nef => "image/x-nikon-nef",
            RawKind::Arw => "image/x-sony-arw",
            RawKind::Raf => "image/x-fuji-raf",
            RawKind::Orf => "image/x-olympus-orf",
            RawKind::Rw2 => "image/x-panasonic-rw2",
            RawKind::Pef => "image/x-pentax-pef",
            RawKind::Srw => "image/x-samsung-srw",
            RawKind::OtherTiff => "image/x-raw",
        }
    }
}

/// One embedded JPEG preview: a byte range of the RAW file and the pixel
/// size read from the JPEG's own SOF marker (stored orientation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRef {
    /// Offset of the JPEG's SOI in the RAW file.
    pub offset: usize,
    /// Length of the JPEG stream in bytes.
    pub len: usize,
    /// Width from the SOF marker.
    pub width: u32,
    /// Height from the SOF marker.
    pub height: u32,
    /// Where it was found (for logs and the report).
    pub source: &'static str,
}

impl PreviewRef {
    /// The JPEG bytes of this preview (empty when the range is not in `data`,
    /// which [`probe_raw`] never returns).
    pub fn bytes<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        self.offset
            .checked_add(self.len)
            .and_then(|end| data.get(self.offset..end))
            .unwrap_or(&[])
    }

    /// The shorter side in pixels.
    pub fn short_side(&self) -> u32 {
        self.width.min(self.height)
    }

    pub(super) fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Whether the raw sensor data is inside the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawData {
    /// The data the header points to lies within the file.
    Present,
    /// The header points past the end of the file.
    Truncated {
        /// Bytes the header says the raw data needs (end offset).
        needed: u64,
        /// Bytes in the file.
        have: u64,
    },
    /// The header could not be matched to raw data (reason).
    Unknown(String),
}

/// What the header of a RAW file says (no pixel is decoded).
#[derive(Debug, Clone)]
pub struct RawInfo {
    /// The container.
    pub kind: RawKind,
    /// Camera make (trimmed; may be empty).
    pub make: String,
    /// Camera model (trimmed; may be empty).
    pub model: String,
    /// Size of the raw sensor data (including masked borders) as declared
    /// in the header; this is what a full decode allocates for.
    pub sensor_width: u32,
    /// See [`RawInfo::sensor_width`].
    pub sensor_height: u32,
    /// Size of the developed picture before orientation (the DNG default
    /// crop, the EXIF pixel size, a full-size preview or the sensor size:
    /// an estimate within a few pixels of what [`decode_raw`] returns).
    pub stored_width: u32,
    /// See [`RawInfo::stored_width`].
    pub stored_height: u32,
    /// Displayed width (after orientation).
    pub width: u32,
    /// Displayed height (after orientation).
    pub height: u32,
    /// The RAW's own orientation (EXIF convention, 1..=8).
    pub orientation: u8,
    /// Embedded JPEG previews, largest first.
    pub previews: Vec<PreviewRef>,
    /// Whether the raw sensor data is inside the file.
    pub raw_data: RawData,
    /// Things skipped while probing (previews past EOF, ...).
    pub notes: Vec<String>,
    /// DNG: byte range of the raw IFD's OpcodeList2 (applied by [`decode_raw`]).
    pub(crate) opcode_list2: Option<(usize, usize)>,
}

/// Why a RAW file could not be probed or developed.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// Not a camera RAW file this module recognises.
    #[error("not a camera RAW file")]
    NotRaw,
    /// A RAW variant or camera the decoder cannot handle.
    #[error("unsupported camera RAW: {0}")]
    Unsupported(String),
    /// The file ends before the data its header points to.
    #[error("truncated camera RAW: {0}")]
    Truncated(String),
    /// Damaged or inconsistent header.
    #[error("corrupt camera RAW: {0}")]
    Corrupt(String),
    /// Over the configured limits.
    #[error("over the limits: {0}")]
    TooLarge(String),
    /// The develop ran past the configured time.
    #[error("RAW develop took too long: {0}")]
    Timeout(String),
    /// The decoder failed (or panicked) on this file.
    #[error("RAW decoder failed: {0}")]
    Decoder(String),
}

/// Limits checked before any pixel buffer is allocated.
#[derive(Debug, Clone)]
pub struct RawLimits {
    /// Largest file in bytes.
    pub max_file_size: u64,
    /// Largest sensor pixel count (the develop needs about 40 bytes per
    /// sensor pixel at its peak, see REPORT.md).
    pub max_pixels: u64,
    /// Largest sensor width or height.
    pub max_dimension: u32,
    /// Time budget for the develop; checked between the decoder's stages
    /// (a stage in progress is not interrupted).
    pub max_time: Option<Duration>,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_file_size: 512 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_dimension: 65_535,
            max_time: Some(Duration::from_secs(60)),
        }
    }
}

/// A developed RAW: packed RGB, 16 bits per channel, sRGB primaries and
/// transfer curve, stored orientation.
#[derive(Debug, Clone)]
pub struct Developed {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` samples.
    pub pixels: Vec<u16>,
    /// The white balance multipliers applied (R, G, B; diagnostics).
    pub white_balance: [f32; 3],
}

impl Developed {
    /// The same picture as packed RGB8 (rounded).
    pub fn to_rgb8(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .map(|&v| ((u32::from(v) * 255 + 32767) / 65535) as u8)
            .collect()
    }
}
