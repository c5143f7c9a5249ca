//! Format detection by magic bytes, and the cheap header facts (pixel size,
//! orientation, colour profile) read before any pixel is allocated.

use super::error::RenderError;
use super::raw::{self, RawKind};

/// An image container the pipeline can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (decoded with libjpeg-turbo).
    Jpeg,
    /// PNG (first frame of an APNG).
    Png,
    /// GIF (first frame).
    Gif,
    /// WebP (first frame).
    WebP,
    /// TIFF (first page).
    Tiff,
    /// Windows bitmap.
    Bmp,
    /// HEIF/HEIC (HEVC, decoded with libheif).
    Heic,
    /// AVIF (AV1 in HEIF, decoded with libheif).
    Avif,
    /// A camera RAW (embedded preview, or a develop with rawler).
    Raw(RawKind),
}

impl ImageFormat {
    /// The media type recorded in the manifest.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
            ImageFormat::Tiff => "image/tiff",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Heic => "image/heic",
            ImageFormat::Avif => "image/avif",
            ImageFormat::Raw(kind) => kind.media_type(),
        }
    }
}

/// Detects the container from the first bytes (never from a file name).
pub fn detect(data: &[u8]) -> Result<ImageFormat, RenderError> {
    let starts = |m: &[u8]| data.starts_with(m);
    if data.is_empty() {
        return Err(RenderError::Decode("empty file".into()));
    }
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    // Before TIFF and ISO media: DNG/NEF/ARW… are TIFFs, CR3 is ISO media.
    if let Some(kind) = raw::is_raw(data) {
        return Ok(ImageFormat::Raw(kind));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(ImageFormat::Gif);
    }
    if starts(b"RIFF") && data.len() >= 12 {
        return match &data[8..12] {
            b"WEBP" => Ok(ImageFormat::WebP),
            b"AVI " => Err(unsupported("video (AVI)")),
            _ => Err(unsupported("RIFF container")),
        };
    }
    if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        if let Some(kind) = tiff_raw_kind(data) {
            return Err(unsupported(kind));
        }
        return Ok(ImageFormat::Tiff);
    }
    if starts(b"IIRO") || starts(b"IIRS") || starts(b"IIU\0") {
        return Err(unsupported("camera RAW (Olympus/Panasonic)"));
    }
    if starts(b"FUJIFILMCCD-RAW") {
        return Err(unsupported("camera RAW (Fujifilm RAF)"));
    }
    if starts(b"BM") && data.len() >= 26 {
        return Ok(ImageFormat::Bmp);
    }
    if data.len() >= 12 && &data[4..8] == b"ftyp" {
        return ftyp_format(data);
    }
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Err(unsupported("video (Matroska/WebM)"));
    }
    if starts(b"8BPS") {
        return Err(unsupported("Photoshop PSD"));
    }
    if starts(b"\0\0\0\x0cjP  ") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Err(unsupported("JPEG 2000"));
    }
    if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0cJXL ") {
        return Err(unsupported("JPEG XL"));
    }
    if starts(&[0, 0, 1, 0]) {
        return Err(unsupported("Windows icon"));
    }
    let head = &data[..data.len().min(256)];
    if head.windows(4).any(|w| w == b"<svg") {
        return Err(unsupported("SVG"));
    }
    Err(unsupported("unknown file type"))
}

fn unsupported(what: &str) -> RenderError {
    RenderError::Unsupported(what.to_string())
}

/// HEIF family: the major brand and the compatible brands of the `ftyp` box.
fn ftyp_format(data: &[u8]) -> Result<ImageFormat, RenderError> {
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let end = size.clamp(12, data.len().min(4096));
    let major = &data[8..12];
    let compatible: Vec<&[u8]> = data.get(16..end).unwrap_or(&[]).chunks_exact(4).collect();
    let has = |b: &[u8]| major == b || compatible.contains(&b);
    if major == b"crx " {
        return Err(unsupported("camera RAW (Canon CR3)"));
    }
    if has(b"avif") || has(b"avis") {
        return Ok(ImageFormat::Avif);
    }
    if [
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ]
    .iter()
    .any(|b| has(*b))
    {
        return Ok(ImageFormat::Heic);
    }
    if [
        b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"avc1",
    ]
    .iter()
    .any(|b| has(*b))
    {
        return Err(unsupported("video (MP4/MOV)"));
    }
    Err(unsupported("ISO media file of an unknown brand"))
}

/// Recognises TIFF-based camera RAW files (DNG, CR2, NEF, ARW, ...), whose
/// first IFD is a preview or raw sensor data rather than the picture: a DNG
/// version tag, Canon's CR2 signature, or a first IFD marked as a
/// reduced-resolution image.
fn tiff_raw_kind(data: &[u8]) -> Option<&'static str> {
    if data.len() >= 10 && &data[8..10] == b"CR" {
        return Some("camera RAW (Canon CR2)");
    }
    let le = data.starts_with(b"II");
    let u16_at = |o: usize| -> Option<u16> {
        let b = data.get(o..o + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = data.get(o..o + 4)?;
        Some(if le {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    // Classic TIFF only (BigTIFF RAWs do not exist in practice).
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?).min(1024);
    for i in 0..count {
        let entry = ifd + 2 + i * 12;
        let tag = u16_at(entry)?;
        match tag {
            // DNGVersion
            0xC612 => return Some("camera RAW (DNG)"),
            // NewSubfileType: bit 0 = reduced-resolution version of another image.
            0x00FE if u32_at(entry + 8)? & 1 == 1 => {
                return Some("camera RAW (TIFF with a preview as first image)");
            }
            _ => {}
        }
    }
    None
}

/// What the JPEG markers before the first scan say.
#[derive(Debug, Default, Clone)]
pub struct JpegMarkers {
    /// Width from the SOF marker.
    pub width: u32,
    /// Height from the SOF marker.
    pub height: u32,
    /// Sample precision (8 for ordinary JPEGs).
    pub precision: u8,
    /// Number of components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: u8,
    /// The TIFF payload of the first `Exif` APP1 segment.
    pub exif: Option<Vec<u8>>,
    /// The ICC profile reassembled from its APP2 chunks.
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 marker was present (CMYK data is stored inverted).
    pub adobe: bool,
}

/// Walks the JPEG segments up to the first SOS (no entropy-coded data is
/// read), collecting the frame size, EXIF and ICC chunks.
pub fn jpeg_markers(data: &[u8]) -> Result<JpegMarkers, RenderError> {
    let corrupt = |what: &str| RenderError::Decode(format!("corrupt JPEG header: {what}"));
    let mut m = JpegMarkers::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut pos = 2;
    let mut have_sof = false;
    loop {
        // Skip fill bytes before a marker.
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (data.get(pos), data.get(pos + 1)) else {
            return Err(corrupt("no frame header before the end of the file"));
        };
        pos += 2;
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            continue;
        }
        if marker == 0xD9 {
            return Err(corrupt("end of image before any scan"));
        }
        let len = data
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| corrupt("truncated segment length"))?;
        if len < 2 {
            return Err(corrupt("bad segment length"));
        }
        let body = data
            .get(pos + 2..pos + len)
            .ok_or_else(|| corrupt("truncated segment"))?;
        match marker {
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                if body.len() < 6 {
                    return Err(corrupt("short frame header"));
                }
                m.precision = body[0];
                m.height = u32::from(u16::from_be_bytes([body[1], body[2]]));
                m.width = u32::from(u16::from_be_bytes([body[3], body[4]]));
                m.components = body[5];
                have_sof = true;
            }
            0xE1 if m.exif.is_none() && body.starts_with(b"Exif\0") && body.len() > 6 => {
                m.exif = Some(body[6..].to_vec());
            }
            0xE2 if body.starts_with(b"ICC_PROFILE\0") && body.len() > 14 => {
                icc_chunks.push((body[12], &body[14..]));
            }
            0xEE if body.starts_with(b"Adobe") => m.adobe = true,
            0xDA => break,
            _ => {}
        }
        pos += len;
    }
    if !have_sof {
        return Err(corrupt("scan before the frame header"));
    }
    if m.width == 0 || m.height == 0 {
        return Err(corrupt("zero width or height"));
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        let mut icc = Vec::with_capacity(icc_chunks.iter().map(|(_, c)| c.len()).sum());
        for (_, chunk) in icc_chunks {
            icc.extend_from_slice(chunk);
        }
        m.icc = Some(icc);
    }
    Ok(m)
}

/// The EXIF orientation (1..=8) in a TIFF-structured EXIF payload; anything
/// missing or invalid is 1.
pub fn exif_orientation(tiff: &[u8]) -> u8 {
    let Ok(exif) = exif::Reader::new().read_raw(tiff.to_vec()) else {
        return 1;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

/// The orientation stored in XMP (`tiff:Orientation`), used only where a
/// file has no EXIF orientation (some PNGs).
pub fn xmp_orientation(xmp: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(xmp).ok()?;
    let at = text.find("tiff:Orientation")?;
    let rest = &text[at + "tiff:Orientation".len()..];
    let digit = rest
        .trim_start_matches(|c: char| {
            c == '=' || c == '"' || c == '\'' || c == '>' || c.is_whitespace()
        })
        .chars()
        .next()?
        .to_digit(10)?;
    u8::try_from(digit).ok().filter(|v| (1..=8).contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_beats_extension() {
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0xE0]).ok(),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            detect(b"\x89PNG\r\n\x1a\n....").ok(),
            Some(ImageFormat::Png)
        );
        assert!(detect(b"").is_err());
        assert!(detect(b"\n").is_err());
        let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
        assert_eq!(detect(&heic).ok(), Some(ImageFormat::Heic));
        heic[8..12].copy_from_slice(b"avif");
        assert_eq!(detect(&heic).ok(), Some(ImageFormat::Avif));
    }

    #[test]
    fn xmp() {
        assert_eq!(xmp_orientation(br#"<x tiff:Orientation="3"/>"#), Some(3));
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>6</tiff:Orientation>"),
            Some(6)
        );
        assert_eq!(xmp_orientation(b"nothing"), None);
    }
}
