//! Is an original HDR, and how? Container-level detection, no pixel decode.
//!
//! HEIF/AVIF (with libheif's view of the primary image):
//! - PQ / HLG: the primary's nclx `colr` (or the AV1/HEVC bitstream's
//!   CICP) says transfer 16 (SMPTE ST 2084) or 18 (HLG);
//! - Apple gain map: an auxiliary image of type
//!   `urn:com:apple:photo:2020:aux:hdrgainmap` (iPhone 12+, plus XMP
//!   `HDRGainMap:HDRGainMapVersion` / maker-note headroom);
//! - ISO 21496-1 gain map: a `tmap` (tone-map derived) item, signalled by the
//!   `tmap` compatible brand (iOS 18+ writes both the Apple aux image and a
//!   `tmap` item; Samsung One UI, libavif, Adobe write `tmap`).
//!
//! JPEG (APP segments before the first SOS):
//! - Ultra HDR / Adobe gain map: XMP (APP1 `http://ns.adobe.com/xap/1.0/`)
//!   with the `http://ns.adobe.com/hdr-gain-map/1.0/` namespace
//!   (`hdrgm:Version`), and an MPF (APP2 `MPF\0`) index with a second image;
//! - ISO 21496-1 JPEG: APP2 `urn:iso:std:iso:ts:21496:-1\0` (in the primary,
//!   version only; the metadata sits in the gain-map JPEG);
//! - Apple HDR JPEG: XMP with `apple.com/ns/...HDRGainMap` / `HDRGainMapVersion`
//!   and an MPF secondary image (`urn:com:apple:photo:2020:aux:hdrgainmap`).
//!
//! In all gain-map files the primary (base) image is SDR; a thumbnail from
//! it is correct as is. PQ/HLG primaries need a tone map (`tonemap.rs`).

use thumbfarm_shared::manifest as m;

/// What made an original HDR (serialises to the manifest as snake_case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HdrInfo {
    /// CICP transfer of the primary when it is PQ (16) or HLG (18).
    pub transfer: Option<HdrTransfer>,
    /// Gain-map flavours found (several at once is normal: iOS 18 writes Apple + ISO).
    pub gain_maps: Vec<GainMapKind>,
}

/// An HDR transfer function of the primary image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdrTransfer {
    /// SMPTE ST 2084.
    Pq,
    /// HLG.
    Hlg,
}

/// A gain-map flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GainMapKind {
    /// Apple's `urn:com:apple:photo:2020:aux:hdrgainmap` auxiliary image (HEIC) or MPF image (JPEG).
    Apple,
    /// ISO 21496-1 `tmap` item (HEIF/AVIF) or APP2 ISO 21496-1 segment (JPEG).
    Iso21496,
    /// Adobe / Google Ultra HDR `hdrgm:` XMP gain map (JPEG), or Adobe's
    /// `urn:com:photo:aux:hdrgainmap` auxiliary image (HEIF/AVIF, pre-ISO).
    HdrgmXmp,
}

impl HdrInfo {
    /// Whether the original is HDR at all.
    pub fn is_hdr(&self) -> bool {
        self.transfer.is_some() || !self.gain_maps.is_empty()
    }

    /// What the manifest records (`None` for SDR).
    pub fn to_manifest(&self, bit_depth: u8) -> Option<m::HdrInfo> {
        self.is_hdr().then(|| m::HdrInfo {
            transfer: self.transfer.map(|t| match t {
                HdrTransfer::Pq => m::HdrTransfer::Pq,
                HdrTransfer::Hlg => m::HdrTransfer::Hlg,
            }),
            gain_maps: self
                .gain_maps
                .iter()
                .map(|g| match g {
                    GainMapKind::Apple => m::GainMap::Apple,
                    GainMapKind::Iso21496 => m::GainMap::Iso21496,
                    GainMapKind::HdrgmXmp => m::GainMap::Hdrgm,
                })
                .collect(),
            bit_depth,
            dolby_vision: None,
        })
    }

    /// `sdr`, or the kinds joined by `+` (`pq`, `gainmap:apple+gainmap:iso21496`).
    pub fn describe(&self) -> String {
        if !self.is_hdr() {
            return "sdr".into();
        }
        let mut parts = Vec::new();
        match self.transfer {
            Some(HdrTransfer::Pq) => parts.push("pq".to_string()),
            Some(HdrTransfer::Hlg) => parts.push("hlg".to_string()),
            None => {}
        }
        for g in &self.gain_maps {
            parts.push(
                match g {
                    GainMapKind::Apple => "gainmap:apple",
                    GainMapKind::Iso21496 => "gainmap:iso21496",
                    GainMapKind::HdrgmXmp => "gainmap:hdrgm",
                }
                .to_string(),
            );
        }
        parts.join("+")
    }
}

/// Apple's gain-map auxiliary image type.
pub const APPLE_GAIN_MAP_URN: &str = "urn:com:apple:photo:2020:aux:hdrgainmap";
/// Adobe Camera Raw's pre-ISO gain map auxiliary image (HEIF/AVIF).
pub const ADOBE_GAIN_MAP_URN: &str = "urn:com:photo:aux:hdrgainmap";

/// HEIF: from the primary's CICP transfer, its auxiliary image types, and
/// whether the file has a `tmap` brand or item.
pub fn heif(transfer_cicp: Option<u16>, aux_types: &[String], has_tmap: bool) -> HdrInfo {
    let transfer = match transfer_cicp {
        Some(16) => Some(HdrTransfer::Pq),
        Some(18) => Some(HdrTransfer::Hlg),
        _ => None,
    };
    let mut gain_maps = Vec::new();
    if aux_types.iter().any(|t| t == APPLE_GAIN_MAP_URN) {
        gain_maps.push(GainMapKind::Apple);
    }
    if aux_types.iter().any(|t| t == ADOBE_GAIN_MAP_URN) {
        gain_maps.push(GainMapKind::HdrgmXmp);
    }
    if has_tmap {
        gain_maps.push(GainMapKind::Iso21496);
    }
    HdrInfo {
        transfer,
        gain_maps,
    }
}

/// The compatible brands of an ISOBMFF `ftyp` box at the start of `data`.
pub fn ftyp_brands(data: &[u8]) -> Vec<[u8; 4]> {
    if data.len() < 16 || &data[4..8] != b"ftyp" {
        return Vec::new();
    }
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let end = size.min(data.len());
    let mut brands = vec![[data[8], data[9], data[10], data[11]]];
    let mut i = 16;
    while i + 4 <= end {
        brands.push([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        i += 4;
    }
    brands
}

const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const ISO21496_SIG: &[u8] = b"urn:iso:std:iso:ts:21496:-1\0";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// JPEG: scans the APPn segments of the primary image (stops at SOS).
pub fn jpeg(data: &[u8]) -> HdrInfo {
    let mut info = HdrInfo::default();
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return info;
    }
    let mut xmp_hdrgm = false;
    let mut xmp_apple = false;
    let mut mpf_images = 0u32;
    // Absolute file offsets of the MPF secondary images.
    let mut secondary: Vec<usize> = Vec::new();
    let mut iso = false;
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            break;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break; // SOS / EOI: no more metadata in the primary
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        let seg = &data[(i + 4).min(data.len())..(i + 2 + len).min(data.len())];
        match marker {
            0xE1 if seg.starts_with(XMP_SIG) => {
                xmp_hdrgm |= contains(seg, b"http://ns.adobe.com/hdr-gain-map/1.0/");
                xmp_apple |= contains(seg, b"HDRGainMapVersion") || contains(seg, b"HDRGainMap:");
            }
            0xE2 if seg.starts_with(b"MPF\0") => {
                if let Some((count, offsets)) = mpf_index(&seg[4..]) {
                    mpf_images = count;
                    // MPF offsets count from the TIFF header, 4 bytes into the segment.
                    let tiff_at = i + 4 + 4;
                    secondary = offsets.iter().map(|&o| tiff_at + o as usize).collect();
                }
            }
            0xE2 if seg.starts_with(ISO21496_SIG) => iso = true,
            _ => {}
        }
        i += 2 + len;
    }
    let has_second = mpf_images >= 2;
    if xmp_hdrgm && has_second {
        info.gain_maps.push(GainMapKind::HdrgmXmp);
    }
    if iso && has_second {
        info.gain_maps.push(GainMapKind::Iso21496);
    }
    if xmp_apple && has_second {
        info.gain_maps.push(GainMapKind::Apple);
    }
    // Apple HDR JPEGs from iOS 14-17 carry the gain-map flag in the maker
    // note only; the MPF secondary image's own XMP names the aux type. Look
    // at the first 64 KiB of each secondary image (bounded work).
    if has_second && !info.gain_maps.contains(&GainMapKind::Apple) {
        let urn = APPLE_GAIN_MAP_URN.as_bytes();
        let found = secondary.iter().any(|&at| {
            data.get(at..(at + 65536).min(data.len()))
                .is_some_and(|head| contains(head, urn))
        });
        if found {
            info.gain_maps.push(GainMapKind::Apple);
        }
    }
    info
}

/// The MPF index (TIFF structure after `MPF\0`): the number of images and
/// the offsets of the second and later ones, relative to the TIFF header.
fn mpf_index(tiff: &[u8]) -> Option<(u32, Vec<u32>)> {
    let be = match tiff.get(0..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = tiff.get(o..o + 2)?;
        Some(if be {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = tiff.get(o..o + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    };
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    let (mut count, mut entries) = (None, None);
    for k in 0..n.min(64) {
        let e = ifd + 2 + 12 * k;
        match u16_at(e)? {
            0xB001 => count = u32_at(e + 8), // NumberOfImages, LONG
            0xB002 => entries = u32_at(e + 8).map(|o| o as usize), // MPEntry, 16 bytes per image
            _ => {}
        }
    }
    let count = count?;
    let offsets = entries
        .map(|base| {
            (1..count.min(16) as usize)
                .filter_map(|i| u32_at(base + 16 * i + 8))
                .filter(|&o| o > 0)
                .collect()
        })
        .unwrap_or_default();
    Some((count, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heif_kinds() {
        let h = heif(Some(16), &[], false);
        assert_eq!(h.describe(), "pq");
        let h = heif(Some(13), &[APPLE_GAIN_MAP_URN.to_string()], true);
        assert_eq!(h.describe(), "gainmap:apple+gainmap:iso21496");
        assert!(!heif(Some(1), &["urn:mpeg:hevc:2015:auxid:1".into()], false).is_hdr());
    }

    #[test]
    fn brands() {
        let b = b"\0\0\0\x1cftypheic\0\0\0\0mif1tmapheic";
        let v = ftyp_brands(b);
        assert!(v.contains(b"tmap"));
    }
}
