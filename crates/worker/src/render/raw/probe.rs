//! Sniffing and the header-only probe of every RAW container, and the
//! choice of a preview for a box.

use super::model::*;
use super::read::*;

// ---------------------------------------------------------------------------
// Sniffing
// ---------------------------------------------------------------------------

/// Recognises a camera RAW file from its first bytes (and, for TIFF-based
/// files, a walk of its IFDs). Plain TIFFs are not claimed: a TIFF must
/// carry a DNG version, Canon's CR2 signature, an Olympus/Panasonic magic,
/// or an image with CFA / linear-raw photometry or a RAW-only compression.
pub fn is_raw(data: &[u8]) -> Option<RawKind> {
    if data.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(RawKind::Raf);
    }
    if data.len() >= 14
        && (data.starts_with(b"II") || data.starts_with(b"MM"))
        && data.get(6..14) == Some(b"HEAPCCDR")
    {
        return Some(RawKind::Crw);
    }
    if data.get(4..8) == Some(b"ftyp") && data.get(8..12) == Some(b"crx ") {
        return Some(RawKind::Cr3);
    }
    let tiff = Tiff::new(data, 0)?;
    tiff_kind(&tiff, &walk_tiff(&tiff, tiff.first_ifd()?))
}

/// TIFF flavours decided from the header magic alone.
pub(super) fn tiff_magic_kind(t: &Tiff) -> Option<RawKind> {
    let magic = t.u16(2)?;
    if t.d.get(8..10) == Some(b"CR") && magic == 42 {
        return Some(RawKind::Cr2);
    }
    match magic {
        0x4F52 | 0x5352 => Some(RawKind::Orf), // "RO" / "RS"
        0x0055 => Some(RawKind::Rw2),
        42 => None,
        _ => None,
    }
}

pub(super) fn tiff_kind(t: &Tiff, ifds: &[Ifd]) -> Option<RawKind> {
    if let Some(kind) = tiff_magic_kind(t) {
        return Some(kind);
    }
    let ifd0 = ifds.first()?;
    let make = ifd0
        .get(TAG_MAKE)
        .and_then(|e| t.string(e))
        .unwrap_or_default();
    if ifd0.get(TAG_DNG_VERSION).is_some() {
        let vc5 = ifds
            .iter()
            .any(|ifd| ifd.uint(t, TAG_COMPRESSION) == Some(9));
        return Some(if vc5 || make.starts_with("GoPro") {
            RawKind::Gpr
        } else {
            RawKind::Dng
        });
    }
    let rawish = ifds.iter().any(|ifd| {
        ifd.uint(t, TAG_PHOTOMETRIC)
            .is_some_and(|p| RAW_PHOTOMETRIC.contains(&p))
            || ifd
                .uint(t, TAG_COMPRESSION)
                .is_some_and(|c| RAW_COMPRESSION.contains(&c))
    });
    if !rawish {
        return None;
    }
    let m = make.to_ascii_uppercase();
    Some(if m.starts_with("NIKON") {
        RawKind::Nef
    } else if m.starts_with("SONY") {
        RawKind::Arw
    } else if m.starts_with("PENTAX") || m.starts_with("RICOH") {
        RawKind::Pef
    } else if m.starts_with("SAMSUNG") {
        RawKind::Srw
    } else if m.starts_with("OLYMPUS") || m.starts_with("OM DIGITAL") {
        RawKind::Orf
    } else if m.starts_with("PANASONIC") || m.starts_with("LEICA") {
        RawKind::Rw2
    } else if m.starts_with("CANON") {
        RawKind::Cr2
    } else {
        RawKind::OtherTiff
    })
}

// ---------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------

/// Reads the header of a RAW file: kind, sizes, orientation, embedded JPEG
/// previews (sizes from their SOF markers) and whether the raw data is
/// complete. No pixel is decoded and nothing picture-sized is allocated.
pub fn probe_raw(data: &[u8]) -> Result<RawInfo, RawError> {
    let kind = is_raw(data).ok_or(RawError::NotRaw)?;
    let mut info = match kind {
        RawKind::Cr3 => probe_cr3(data)?,
        RawKind::Crw => probe_crw(data)?,
        RawKind::Raf => probe_raf(data)?,
        _ => probe_tiff(data, kind)?,
    };
    info.previews
        .sort_by(|a, b| b.pixels().cmp(&a.pixels()).then(b.len.cmp(&a.len)));
    if info.stored_width == 0 || info.stored_height == 0 {
        if let Some(p) = info.previews.first() {
            info.stored_width = p.width;
            info.stored_height = p.height;
        } else {
            (info.stored_width, info.stored_height) = (info.sensor_width, info.sensor_height);
        }
    }
    if info.stored_width == 0 || info.stored_height == 0 {
        return Err(RawError::Corrupt("no image size in the header".into()));
    }
    if !(1..=8).contains(&info.orientation) {
        info.orientation = 1;
    }
    (info.width, info.height) = if info.orientation >= 5 {
        (info.stored_height, info.stored_width)
    } else {
        (info.stored_width, info.stored_height)
    };
    Ok(info)
}

pub(super) fn new_info(kind: RawKind) -> RawInfo {
    RawInfo {
        kind,
        make: String::new(),
        model: String::new(),
        sensor_width: 0,
        sensor_height: 0,
        stored_width: 0,
        stored_height: 0,
        width: 0,
        height: 0,
        orientation: 1,
        previews: Vec::new(),
        raw_data: RawData::Unknown("not located".into()),
        notes: Vec::new(),
        opcode_list2: None,
    }
}

/// Adds the JPEG at `offset..offset+len` if it lies in the file and is a
/// baseline/progressive 8-bit JPEG (lossless raw strips are not previews).
pub(super) fn add_jpeg(
    info: &mut RawInfo,
    data: &[u8],
    offset: usize,
    len: usize,
    source: &'static str,
) {
    if len < 4 || offset == 0 || info.previews.iter().any(|p| p.offset == offset) {
        return;
    }
    let Some(bytes) = offset
        .checked_add(len)
        .and_then(|end| data.get(offset..end))
    else {
        info.notes.push(format!(
            "{source}: {len} bytes at {offset} run past the end of the file ({} bytes)",
            data.len()
        ));
        return;
    };
    match jpeg_sof(bytes) {
        Ok(j) if j.previewable() => info.previews.push(PreviewRef {
            offset,
            len,
            width: j.width,
            height: j.height,
            source,
        }),
        Ok(j) => info.notes.push(format!(
            "{source}: JPEG SOF{} {}-bit {}x{} is not a preview",
            j.sof & 0x0F,
            j.precision,
            j.width,
            j.height
        )),
        Err(e) => info.notes.push(format!("{source}: {e}")),
    }
}

/// Checks the raw data's byte ranges against the file size.
pub(super) fn check_ranges(ranges: impl IntoIterator<Item = (u64, u64)>, have: u64) -> RawData {
    let mut needed = 0u64;
    let mut any = false;
    for (off, len) in ranges {
        any = true;
        needed = needed.max(off.saturating_add(len));
    }
    if !any {
        RawData::Unknown("no raw data offsets in the header".into())
    } else if needed > have {
        RawData::Truncated { needed, have }
    } else {
        RawData::Present
    }
}

/// A size that is close to the sensor's (the developed picture or a
/// full-size preview), within the masked border a camera crops.
pub(super) fn plausible_full_size(w: u32, h: u32, sw: u32, sh: u32) -> bool {
    if sw == 0 || sh == 0 {
        return w > 0 && h > 0;
    }
    let (w, h, sw, sh) = (f64::from(w), f64::from(h), f64::from(sw), f64::from(sh));
    let fits = |a: f64, s: f64| a <= s * 1.02 + 2.0 && a >= s * 0.85;
    fits(w, sw) && fits(h, sh)
}

pub(super) fn probe_tiff(data: &[u8], kind: RawKind) -> Result<RawInfo, RawError> {
    let corrupt = || RawError::Corrupt("unreadable TIFF header".into());
    let t = Tiff::new(data, 0).ok_or_else(corrupt)?;
    let ifds = walk_tiff(&t, t.first_ifd().ok_or_else(corrupt)?);
    let ifd0 = ifds.first().ok_or_else(corrupt)?;
    let mut info = new_info(kind);
    info.make = ifd0
        .get(TAG_MAKE)
        .and_then(|e| t.string(e))
        .unwrap_or_default();
    info.model = ifd0
        .get(TAG_MODEL)
        .and_then(|e| t.string(e))
        .unwrap_or_default();
    info.orientation = ifd0
        .uint(&t, TAG_ORIENTATION)
        .and_then(|o| u8::try_from(o).ok())
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1);
    let exif = ifd0.uint(&t, TAG_EXIF_IFD).and_then(|off| t.ifd(off));

    // The raw image: the largest full-resolution IFD holding RAW data.
    let raw_ifd = ifds
        .iter()
        .enumerate()
        .filter(|(i, ifd)| {
            let subfile = ifd.uint(&t, TAG_NEW_SUBFILE_TYPE).unwrap_or(0);
            let photometric = ifd.uint(&t, TAG_PHOTOMETRIC).unwrap_or(0);
            let compression = ifd.uint(&t, TAG_COMPRESSION).unwrap_or(0);
            match kind {
                RawKind::Dng | RawKind::Gpr => subfile == 0 && ifd.get(TAG_WIDTH).is_some(),
                // CR2: the fourth IFD holds the lossless-JPEG raw data.
                RawKind::Cr2 => ifd.chain_index == Some(3),
                RawKind::Orf | RawKind::Rw2 => *i == 0,
                _ => {
                    subfile & 1 == 0
                        && (RAW_PHOTOMETRIC.contains(&photometric)
                            || RAW_COMPRESSION.contains(&compression))
                }
            }
        })
        .map(|(_, ifd)| ifd)
        .max_by_key(|ifd| {
            u64::from(ifd.uint(&t, TAG_WIDTH).unwrap_or(0))
                * u64::from(ifd.uint(&t, TAG_HEIGHT).unwrap_or(0))
        });

    if let Some(raw) = raw_ifd {
        info.sensor_width = raw.uint(&t, TAG_WIDTH).unwrap_or(0);
        info.sensor_height = raw.uint(&t, TAG_HEIGHT).unwrap_or(0);
        let (offs, lens) = if raw.get(TAG_TILE_OFFSETS).is_some() {
            (TAG_TILE_OFFSETS, TAG_TILE_BYTES)
        } else {
            (TAG_STRIP_OFFSETS, TAG_STRIP_BYTES)
        };
        let ranges = raw.ranges(&t, offs, lens);
        info.raw_data = check_ranges(ranges.iter().copied(), data.len() as u64);
        if kind == RawKind::Cr2 {
            // The CR2 raw IFD has no size tags: read the lossless JPEG's SOF3.
            if let Some(&(off, _)) = ranges.first() {
                let start = usize::try_from(off).unwrap_or(usize::MAX);
                if let Some(j) = data.get(start..).and_then(|d| jpeg_sof(d).ok()) {
                    info.sensor_width = j.width.saturating_mul(u32::from(j.components));
                    info.sensor_height = j.height;
                }
            }
        }
        if kind == RawKind::Dng || kind == RawKind::Gpr {
            if let Some(e) = raw.get(TAG_OPCODE_LIST2) {
                info.opcode_list2 = Some((e.pos, e.byte_len()));
            }
            if let Some(e) = raw.get(TAG_DEFAULT_CROP_SIZE) {
                let w = t.f64(e, 0).unwrap_or(0.0).round();
                let h = t.f64(e, 1).unwrap_or(0.0).round();
                if w >= 1.0 && h >= 1.0 && w <= f64::from(u32::MAX) && h <= f64::from(u32::MAX) {
                    info.stored_width = w as u32;
                    info.stored_height = h as u32;
                }
            }
        }
    } else {
        info.raw_data = RawData::Unknown("no raw image directory".into());
    }

    if kind == RawKind::Rw2 {
        // Panasonic: sensor size and crop borders in IFD0.
        let tag = |tag: u16| ifd0.uint(&t, tag);
        if let (Some(w), Some(h)) = (tag(0x0002), tag(0x0003)) {
            (info.sensor_width, info.sensor_height) = (w, h);
        }
        if let (Some(top), Some(left), Some(bottom), Some(right)) =
            (tag(0x0004), tag(0x0005), tag(0x0006), tag(0x0007))
        {
            if right > left && bottom > top {
                (info.stored_width, info.stored_height) = (right - left, bottom - top);
            }
        }
        if let Some(e) = ifd0.get(0x002E) {
            add_jpeg(&mut info, data, e.pos, e.byte_len(), "RW2 JpgFromRaw");
        }
        if let Some(e) = ifd0.get(0x0118) {
            // RawDataOffset (the strip offsets may be absent).
            if matches!(info.raw_data, RawData::Unknown(_)) {
                let off = u64::from(t.uint(e, 0).unwrap_or(0));
                info.raw_data = check_ranges([(off, 1)], data.len() as u64);
            }
        }
    }

    // Previews in every IFD: JPEGInterchangeFormat, and single-strip JPEGs.
    for ifd in &ifds {
        if let (Some(off), Some(len)) =
            (ifd.uint(&t, TAG_JPEG_OFFSET), ifd.uint(&t, TAG_JPEG_LENGTH))
        {
            add_jpeg(
                &mut info,
                data,
                off as usize,
                len as usize,
                "IFD JPEGInterchangeFormat",
            );
        }
        let compression = ifd.uint(&t, TAG_COMPRESSION).unwrap_or(0);
        if compression == 6 || compression == 7 {
            let ranges = ifd.ranges(&t, TAG_STRIP_OFFSETS, TAG_STRIP_BYTES);
            if let [(off, len)] = ranges[..] {
                add_jpeg(
                    &mut info,
                    data,
                    off as usize,
                    len as usize,
                    "IFD JPEG strip",
                );
            }
        }
    }

    // Maker-note previews.
    if let Some(mn) = exif.as_ref().and_then(|e| e.get(TAG_MAKER_NOTE)) {
        makernote_previews(&mut info, data, &t, mn.pos, mn.byte_len());
    }

    // The developed size, when no DNG crop or RW2 border says it.
    if info.stored_width == 0 {
        let exif_size = exif
            .as_ref()
            .and_then(|e| Some((e.uint(&t, TAG_EXIF_PIXEL_X)?, e.uint(&t, TAG_EXIF_PIXEL_Y)?)));
        let (sw, sh) = (info.sensor_width, info.sensor_height);
        let ifd0_size = (kind == RawKind::Cr2)
            .then(|| Some((ifd0.uint(&t, TAG_WIDTH)?, ifd0.uint(&t, TAG_HEIGHT)?)))
            .flatten();
        let largest_preview = info
            .previews
            .iter()
            .max_by_key(|p| p.pixels())
            .map(|p| (p.width, p.height));
        if let Some((w, h)) = [exif_size, ifd0_size, largest_preview]
            .into_iter()
            .flatten()
            .find(|&(w, h)| plausible_full_size(w, h, sw, sh))
        {
            (info.stored_width, info.stored_height) = (w, h);
        } else {
            (info.stored_width, info.stored_height) = (sw, sh);
        }
    }
    Ok(info)
}

/// Previews kept in maker notes (Nikon PreviewIFD, Olympus CameraSettings,
/// Pentax PreviewImage).
pub(super) fn makernote_previews(
    info: &mut RawInfo,
    data: &[u8],
    t: &Tiff,
    pos: usize,
    len: usize,
) {
    let Some(mn) = pos.checked_add(len).and_then(|end| data.get(pos..end)) else {
        return;
    };
    if mn.starts_with(b"Nikon\0") {
        // "Nikon\0" + version (4) then a TIFF header; offsets from that header.
        let Some(inner) = Tiff::new(data, pos + 10) else {
            return;
        };
        let Some(ifd0) = inner.first_ifd().and_then(|o| inner.ifd(o)) else {
            return;
        };
        if let Some(pv) = ifd0.uint(&inner, 0x0011).and_then(|o| inner.ifd(o)) {
            if let (Some(off), Some(len)) = (
                pv.uint(&inner, TAG_JPEG_OFFSET),
                pv.uint(&inner, TAG_JPEG_LENGTH),
            ) {
                let abs = (pos + 10).saturating_add(off as usize);
                add_jpeg(info, data, abs, len as usize, "Nikon PreviewIFD");
            }
        }
    } else if mn.starts_with(b"OLYMPUS\0")
        || mn.starts_with(b"OM SYSTEM\0")
        || mn.starts_with(b"OLYMP\0")
    {
        // New style: byte order at +8 (+12 for OM SYSTEM), IFD at +12 (+16),
        // offsets relative to the maker note. Old style: IFD at +8, offsets
        // relative to the file's TIFF header.
        let (base, ifd_at, le) = if mn.starts_with(b"OLYMPUS\0") {
            (pos, 12, mn.get(8..10) == Some(b"II"))
        } else if mn.starts_with(b"OM SYSTEM\0") {
            (pos, 16, mn.get(12..14) == Some(b"II"))
        } else {
            (t.base, pos + 8 - t.base, t.le)
        };
        let inner = Tiff { d: data, le, base };
        let Some(ifd0) = inner.ifd(ifd_at as u32) else {
            return;
        };
        if let Some(cs) = ifd0.uint(&inner, 0x2020).and_then(|o| inner.ifd(o)) {
            if let (Some(off), Some(len)) = (cs.uint(&inner, 0x0101), cs.uint(&inner, 0x0102)) {
                add_jpeg(
                    info,
                    data,
                    base.saturating_add(off as usize),
                    len as usize,
                    "Olympus PreviewImage",
                );
            }
        }
    } else if mn.starts_with(b"AOC\0") || mn.starts_with(b"PENTAX \0") {
        let (order_at, ifd_at) = if mn.starts_with(b"AOC\0") {
            (4, 6)
        } else {
            (8, 10)
        };
        let le = match mn.get(order_at..order_at + 2) {
            Some(b"II") => true,
            Some(b"MM") => false,
            _ => t.le,
        };
        let inner = Tiff {
            d: data,
            le,
            base: pos,
        };
        let Some(ifd0) = inner.ifd(ifd_at) else {
            return;
        };
        if let (Some(len), Some(off)) = (ifd0.uint(&inner, 0x0003), ifd0.uint(&inner, 0x0004)) {
            // Offsets are relative to the maker note in most PEFs, absolute in some.
            let rel = pos.saturating_add(off as usize);
            let before = info.previews.len();
            add_jpeg(info, data, rel, len as usize, "Pentax PreviewImage");
            if info.previews.len() == before {
                add_jpeg(
                    info,
                    data,
                    off as usize,
                    len as usize,
                    "Pentax PreviewImage",
                );
            }
        }
    }
}

// --- CR3 --------------------------------------------------------------------

pub(super) const CANON_UUID: [u8; 16] = [
    0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b, 0x6a, 0x48,
];
pub(super) const PRVW_UUID: [u8; 16] = [
    0xea, 0xf4, 0x2b, 0x5e, 0x1c, 0x98, 0x4b, 0x88, 0xb9, 0xfb, 0xb7, 0xdc, 0x40, 0x6e, 0x4d, 0x16,
];

/// One ISO-BMFF box: type, payload range, end.
pub(super) struct Bx {
    typ: [u8; 4],
    body: usize,
    end: usize,
}

/// The boxes between `start` and `end` (at most 256).
pub(super) fn boxes(d: &[u8], start: usize, end: usize) -> Vec<Bx> {
    let mut out = Vec::new();
    let mut pos = start;
    let end = end.min(d.len());
    while pos.saturating_add(8) <= end && out.len() < 256 {
        let Some(size) = be_u32(d, pos) else { break };
        let Some(typ) = d
            .get(pos + 4..pos + 8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            break;
        };
        let (hdr, size) = match size {
            0 => (8usize, (end - pos) as u64),
            1 => match be_u64(d, pos + 8) {
                Some(s) => (16, s),
                None => break,
            },
            s => (8, u64::from(s)),
        };
        if size < hdr as u64 {
            break;
        }
        let box_end = pos.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        out.push(Bx {
            typ,
            body: pos + hdr,
            end: box_end.min(end),
        });
        if box_end >= end {
            break;
        }
        pos = box_end;
    }
    out
}

pub(super) fn child<'a>(bs: &'a [Bx], typ: &[u8; 4]) -> Option<&'a Bx> {
    bs.iter().find(|b| &b.typ == typ)
}

/// A JPEG stored inside a box: the first SOI within the first 64 bytes of
/// the payload, to the end of the box.
pub(super) fn jpeg_in_box(info: &mut RawInfo, data: &[u8], b: &Bx, source: &'static str) {
    let window = data.get(b.body..b.end.min(b.body + 64)).unwrap_or(&[]);
    if let Some(i) = window.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]) {
        let start = b.body + i;
        add_jpeg(info, data, start, b.end.saturating_sub(start), source);
    }
}

pub(super) fn probe_cr3(data: &[u8]) -> Result<RawInfo, RawError> {
    let mut info = new_info(RawKind::Cr3);
    let top = boxes(data, 0, data.len());
    let moov = child(&top, b"moov").ok_or_else(|| RawError::Corrupt("CR3 without moov".into()))?;
    let moov_children = boxes(data, moov.body, moov.end);
    let mut raw_ranges: Vec<(u64, u64)> = Vec::new();
    let mut best_raw = 0u64;
    for b in &moov_children {
        if &b.typ == b"uuid" && data.get(b.body..b.body + 16) == Some(&CANON_UUID[..]) {
            for c in boxes(data, b.body + 16, b.end) {
                match &c.typ {
                    b"CMT1" => {
                        if let Some(t) = Tiff::new(data, c.body) {
                            if let Some(ifd0) = t.first_ifd().and_then(|o| t.ifd(o)) {
                                info.make = ifd0
                                    .get(TAG_MAKE)
                                    .and_then(|e| t.string(e))
                                    .unwrap_or_default();
                                info.model = ifd0
                                    .get(TAG_MODEL)
                                    .and_then(|e| t.string(e))
                                    .unwrap_or_default();
                                info.orientation = ifd0
                                    .uint(&t, TAG_ORIENTATION)
                                    .and_then(|o| u8::try_from(o).ok())
                                    .unwrap_or(1);
                                if let (Some(w), Some(h)) =
                                    (ifd0.uint(&t, TAG_WIDTH), ifd0.uint(&t, TAG_HEIGHT))
                                {
                                    (info.stored_width, info.stored_height) = (w, h);
                                }
                            }
                        }
                    }
                    b"THMB" => jpeg_in_box(&mut info, data, &c, "CR3 THMB"),
                    _ => {}
                }
            }
        }
        if &b.typ == b"trak" {
            // trak/mdia/minf/stbl/{stsd,stsz,co64|stco}
            let Some(stbl) = [b"mdia", b"minf", b"stbl"]
                .iter()
                .try_fold((b.body, b.end), |(s, e), typ| {
                    child(&boxes(data, s, e), typ).map(|c| (c.body, c.end))
                })
            else {
                continue;
            };
            let parts = boxes(data, stbl.0, stbl.1);
            let Some(stsd) = child(&parts, b"stsd") else {
                continue;
            };
            // stsd: version/flags, entry count, then sample entries (boxes).
            let entries = boxes(data, stsd.body + 8, stsd.end);
            let Some(craw) = child(&entries, b"CRAW") else {
                continue;
            };
            let offset = if let Some(co) = child(&parts, b"co64") {
                be_u64(data, co.body + 8)
            } else {
                child(&parts, b"stco").and_then(|co| be_u32(data, co.body + 8).map(u64::from))
            };
            let size = child(&parts, b"stsz").and_then(|sz| {
                let fixed = be_u32(data, sz.body + 4)?;
                if fixed != 0 {
                    Some(u64::from(fixed))
                } else {
                    be_u32(data, sz.body + 12).map(u64::from)
                }
            });
            // A raw track has a CMP1 (CRX codec parameters) inside its CRAW entry.
            let craw_bytes = data.get(craw.body..craw.end).unwrap_or(&[]);
            let cmp1 = craw_bytes.windows(4).position(|w| w == b"CMP1");
            if let Some(i) = cmp1 {
                let body = craw.body + i + 4;
                let (w, h) = (
                    be_u32(data, body + 8).unwrap_or(0),
                    be_u32(data, body + 12).unwrap_or(0),
                );
                let px = u64::from(w) * u64::from(h);
                if px > best_raw {
                    best_raw = px;
                    (info.sensor_width, info.sensor_height) = (w, h);
                    raw_ranges = match (offset, size) {
                        (Some(o), Some(s)) => vec![(o, s)],
                        _ => Vec::new(),
                    };
                }
            } else if let (Some(o), Some(s)) = (offset, size) {
                // A JPEG track (track 1 holds the full-size JPEG in mdat).
                let (o, s) = (
                    usize::try_from(o).unwrap_or(usize::MAX),
                    usize::try_from(s).unwrap_or(usize::MAX),
                );
                if data.get(o..o.saturating_add(3)) == Some(&[0xFF, 0xD8, 0xFF][..])
                    || o >= data.len()
                {
                    add_jpeg(&mut info, data, o, s, "CR3 JPEG track");
                }
            }
        }
    }
    for b in &top {
        if &b.typ == b"uuid" && data.get(b.body..b.body + 16) == Some(&PRVW_UUID[..]) {
            // uuid payload: 16-byte uuid, 8 bytes, then the PRVW box.
            for c in boxes(data, b.body + 24, b.end) {
                if &c.typ == b"PRVW" {
                    jpeg_in_box(&mut info, data, &c, "CR3 PRVW");
                }
            }
        }
    }
    info.raw_data = if best_raw == 0 {
        RawData::Unknown("no CRX raw track".into())
    } else {
        check_ranges(raw_ranges, data.len() as u64)
    };
    Ok(info)
}

// --- CRW (CIFF) -------------------------------------------------------------

pub(super) fn probe_crw(data: &[u8]) -> Result<RawInfo, RawError> {
    let mut info = new_info(RawKind::Crw);
    let le = data.starts_with(b"II");
    let b = Bytes { d: data, le };
    let hlen = b
        .u32(2)
        .ok_or_else(|| RawError::Corrupt("short CIFF header".into()))? as usize;
    let mut records: Vec<(u16, usize, usize)> = Vec::new(); // (tag id, abs offset, len)
    ciff_walk(&b, hlen, data.len(), 0, &mut records);
    if records.is_empty() {
        return Err(RawError::Corrupt(
            "CIFF heap directory unreadable (truncated or damaged file)".into(),
        ));
    }
    let mut raw_ranges = Vec::new();
    for &(tag, off, len) in &records {
        match tag {
            0x2007 => add_jpeg(&mut info, data, off, len, "CRW JpgFromRaw"),
            0x2008 => add_jpeg(&mut info, data, off, len, "CRW ThumbnailImage"),
            0x2005 => raw_ranges.push((off as u64, len as u64)),
            0x080A => {
                let s = data.get(off..off.saturating_add(len)).unwrap_or(&[]);
                let mut parts = s
                    .split(|&c| c == 0)
                    .map(|p| String::from_utf8_lossy(p).trim().to_string());
                info.make = parts.next().unwrap_or_default();
                info.model = parts.next().unwrap_or_default();
            }
            0x1810 => {
                // ImageInfo: width, height, pixel aspect (f32), rotation (deg).
                if let (Some(w), Some(h)) = (b.u32(off), b.u32(off + 4)) {
                    (info.stored_width, info.stored_height) = (w, h);
                }
                info.orientation = match b.u32(off + 12).map(|r| r as i32) {
                    Some(90) | Some(-270) => 6,
                    Some(180) | Some(-180) => 3,
                    Some(270) | Some(-90) => 8,
                    _ => 1,
                };
            }
            0x1031 => {
                // SensorInfo: u16 [?, sensor width, sensor height, ...].
                if let (Some(w), Some(h)) = (b.u16(off + 2), b.u16(off + 4)) {
                    (info.sensor_width, info.sensor_height) = (u32::from(w), u32::from(h));
                }
            }
            _ => {}
        }
    }
    if info.sensor_width == 0 {
        (info.sensor_width, info.sensor_height) = (info.stored_width, info.stored_height);
    }
    info.raw_data = check_ranges(raw_ranges, data.len() as u64);
    Ok(info)
}

/// Collects the records of a CIFF heap `start..end` (recursing into
/// sub-heaps, at most 4 deep and 4096 records).
pub(super) fn ciff_walk(
    b: &Bytes,
    start: usize,
    end: usize,
    depth: u8,
    out: &mut Vec<(u16, usize, usize)>,
) {
    if depth > 4 || end <= start + 4 || out.len() > 4096 {
        return;
    }
    let Some(dir) = end.checked_sub(4).and_then(|p| b.u32(p)) else {
        return;
    };
    let dir = start.saturating_add(dir as usize);
    let Some(count) = b.u16(dir) else { return };
    for i in 0..usize::from(count).min(1024) {
        let e = dir + 2 + i * 10;
        let (Some(tag), Some(size), Some(off)) = (b.u16(e), b.u32(e + 2), b.u32(e + 6)) else {
            return;
        };
        let id = tag & 0x3FFF;
        if tag & 0xC000 == 0x4000 {
            // Data (up to 8 bytes) inside the record itself.
            out.push((id, e + 2, 8));
            continue;
        }
        let (off, size) = (start.saturating_add(off as usize), size as usize);
        if matches!(tag & 0x3800, 0x2800 | 0x3000) {
            if let Some(sub_end) = off.checked_add(size).filter(|&x| x <= end) {
                ciff_walk(b, off, sub_end, depth + 1, out);
            }
        } else {
            out.push((id, off, size));
        }
    }
}

// --- RAF ----------------------------------------------------------------------

pub(super) fn probe_raf(data: &[u8]) -> Result<RawInfo, RawError> {
    let mut info = new_info(RawKind::Raf);
    let short = || RawError::Corrupt("short RAF header".into());
    info.make = "FUJIFILM".into();
    info.model = data
        .get(28..60)
        .map(|s| {
            String::from_utf8_lossy(s.split(|&c| c == 0).next().unwrap_or(&[]))
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let jpeg_off = be_u32(data, 84).ok_or_else(short)? as usize;
    let jpeg_len = be_u32(data, 88).ok_or_else(short)? as usize;
    let hdr_off = be_u32(data, 92).ok_or_else(short)? as usize;
    let cfa_off = be_u32(data, 100).ok_or_else(short)?;
    let cfa_len = be_u32(data, 104).ok_or_else(short)?;
    add_jpeg(&mut info, data, jpeg_off, jpeg_len, "RAF JPEG");
    // RAF keeps its EXIF (orientation included) only in the embedded JPEG,
    // written by the camera together with the RAW: it is the RAW's own.
    if let Some(exif) = data
        .get(jpeg_off..jpeg_off.saturating_add(jpeg_len))
        .and_then(|j| jpeg_sof(j).ok())
        .and_then(|j| j.exif)
    {
        let start = jpeg_off + exif.0;
        if let Some(t) = Tiff::new(data, start) {
            if let Some(ifd0) = t.first_ifd().and_then(|o| t.ifd(o)) {
                info.orientation = ifd0
                    .uint(&t, TAG_ORIENTATION)
                    .and_then(|o| u8::try_from(o).ok())
                    .unwrap_or(1);
            }
        }
    }
    // The RAF directory: count, then (tag u16, size u16, data) records.
    if let Some(count) = be_u32(data, hdr_off) {
        let mut pos = hdr_off + 4;
        for _ in 0..count.min(256) {
            let (Some(tag), Some(size)) = (be_u16(data, pos), be_u16(data, pos + 2)) else {
                break;
            };
            let body = pos + 4;
            let hw = || {
                Some((
                    u32::from(be_u16(data, body)?),
                    u32::from(be_u16(data, body + 2)?),
                ))
            };
            match tag {
                0x0100 => {
                    if let Some((h, w)) = hw() {
                        (info.sensor_width, info.sensor_height) = (w, h);
                    }
                }
                0x0111 => {
                    if let Some((h, w)) = hw() {
                        (info.stored_width, info.stored_height) = (w, h);
                    }
                }
                _ => {}
            }
            pos = body + usize::from(size);
        }
    }
    info.raw_data = check_ranges(
        [(u64::from(cfa_off), u64::from(cfa_len))],
        data.len() as u64,
    );
    Ok(info)
}

// ---------------------------------------------------------------------------
// Preview choice
// ---------------------------------------------------------------------------

/// The largest embedded preview, if its short side is at least
/// `min_short_side` and its shape matches the RAW's (so it is not a
/// letterboxed or cropped rendition). `None`: develop the RAW.
pub fn preview_for_box(info: &RawInfo, min_short_side: u32) -> Option<&PreviewRef> {
    let p = largest_usable_preview(info)?;
    (p.short_side() >= min_short_side).then_some(p)
}

/// The largest preview whose aspect ratio matches the RAW's developed size
/// (in either orientation) within 3 %.
pub fn largest_usable_preview(info: &RawInfo) -> Option<&PreviewRef> {
    let want = f64::from(info.stored_width.max(1)) / f64::from(info.stored_height.max(1));
    info.previews.iter().find(|p| {
        let have = f64::from(p.width) / f64::from(p.height.max(1));
        (have / want - 1.0).abs() < 0.03 || (have * want - 1.0).abs() < 0.03
    })
}

/// The orientation to apply to a preview's pixels: the RAW's own, unless
/// the preview is already stored upright (its shape is the displayed
/// shape of a RAW that turns by 90°).
pub fn preview_orientation(info: &RawInfo, p: &PreviewRef) -> u8 {
    let o = info.orientation;
    if o >= 5 && info.stored_width != info.stored_height {
        let stored_landscape = info.stored_width > info.stored_height;
        let preview_landscape = p.width > p.height;
        if stored_landscape != preview_landscape {
            return 1;
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tiffs_are_not_raw() {
        // A minimal little-endian RGB TIFF: one IFD, photometric 2.
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&TAG_PHOTOMETRIC.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&2u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(is_raw(&t), None);
        // The same IFD with CFA photometry is a (makeless) TIFF-based RAW.
        let at = 8 + 2 + 8;
        t[at..at + 4].copy_from_slice(&32803u32.to_le_bytes());
        assert_eq!(is_raw(&t), Some(RawKind::OtherTiff));
        assert!(matches!(probe_raw(&t), Err(RawError::Corrupt(_))));
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..2000usize {
            let mut v: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            for magic in [
                &b"II*\0"[..],
                b"MM\0*",
                b"IIRO",
                b"IIU\0",
                b"FUJIFILMCCD-RAW ",
                b"II\x1a\0\0\0HEAPCCDR",
                b"\0\0\0\x18ftypcrx ",
            ] {
                if v.len() >= magic.len() {
                    v[..magic.len()].copy_from_slice(magic);
                }
                let _ = probe_raw(&v);
            }
        }
    }
}
