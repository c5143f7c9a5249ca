//! Bounded byte readers: big/little-endian integers, TIFF IFDs, the size
//! of an embedded JPEG. Every read is checked; nothing panics on bad input.

use std::collections::HashSet;

pub(super) const TAG_NEW_SUBFILE_TYPE: u16 = 0x00FE;
pub(super) const TAG_WIDTH: u16 = 0x0100;
pub(super) const TAG_HEIGHT: u16 = 0x0101;
pub(super) const TAG_COMPRESSION: u16 = 0x0103;
pub(super) const TAG_PHOTOMETRIC: u16 = 0x0106;
pub(super) const TAG_MAKE: u16 = 0x010F;
pub(super) const TAG_MODEL: u16 = 0x0110;
pub(super) const TAG_STRIP_OFFSETS: u16 = 0x0111;
pub(super) const TAG_ORIENTATION: u16 = 0x0112;
pub(super) const TAG_STRIP_BYTES: u16 = 0x0117;
pub(super) const TAG_TILE_OFFSETS: u16 = 0x0144;
pub(super) const TAG_TILE_BYTES: u16 = 0x0145;
pub(super) const TAG_SUB_IFDS: u16 = 0x014A;
pub(super) const TAG_JPEG_OFFSET: u16 = 0x0201;
pub(super) const TAG_JPEG_LENGTH: u16 = 0x0202;
pub(super) const TAG_EXIF_IFD: u16 = 0x8769;
pub(super) const TAG_MAKER_NOTE: u16 = 0x927C;
pub(super) const TAG_EXIF_PIXEL_X: u16 = 0xA002;
pub(super) const TAG_EXIF_PIXEL_Y: u16 = 0xA003;
pub(super) const TAG_DNG_VERSION: u16 = 0xC612;
pub(super) const TAG_DEFAULT_CROP_SIZE: u16 = 0xC620;
pub(super) const TAG_OPCODE_LIST2: u16 = 0xC741;

/// Photometric interpretations only RAW data uses: CFA, LinearRaw.
pub(super) const RAW_PHOTOMETRIC: [u32; 2] = [32803, 34892];
/// Compressions only RAW data uses: Sony ARW, Nikon NEF (packed, Huffman),
/// Pentax, Samsung, Panasonic, Kodak, GoPro VC-5.
pub(super) const RAW_COMPRESSION: [u32; 9] =
    [32767, 32769, 32770, 34713, 65535, 34316, 65000, 32867, 9];

// ---------------------------------------------------------------------------
// Byte readers, TIFF and JPEG headers
// ---------------------------------------------------------------------------

pub(super) fn be_u16(d: &[u8], o: usize) -> Option<u16> {
    let b = d.get(o..o.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}
pub(super) fn be_u32(d: &[u8], o: usize) -> Option<u32> {
    let b = d.get(o..o.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
pub(super) fn be_u64(d: &[u8], o: usize) -> Option<u64> {
    let b = d.get(o..o.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_be_bytes(a))
}

#[derive(Clone, Copy)]
pub(super) struct Bytes<'a> {
    pub(super) d: &'a [u8],
    pub(super) le: bool,
}

impl Bytes<'_> {
    pub(super) fn u16(&self, o: usize) -> Option<u16> {
        let b = self.d.get(o..o.checked_add(2)?)?;
        Some(if self.le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    }
    pub(super) fn u32(&self, o: usize) -> Option<u32> {
        let b = self.d.get(o..o.checked_add(4)?)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
}

/// A TIFF structure whose offsets count from `base` (0 for a file, the
/// header inside a maker note or CR3 box otherwise).
#[derive(Clone, Copy)]
pub(super) struct Tiff<'a> {
    pub(super) d: &'a [u8],
    pub(super) le: bool,
    pub(super) base: usize,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) tag: u16,
    pub(super) typ: u16,
    pub(super) count: u32,
    /// Absolute position of the value bytes.
    pub(super) pos: usize,
}

impl Entry {
    pub(super) fn byte_len(&self) -> usize {
        type_size(self.typ)
            .unwrap_or(1)
            .saturating_mul(self.count as usize)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Ifd {
    pub(super) entries: Vec<Entry>,
    pub(super) next: u32,
    /// Position in the IFD0 -> IFD1 -> ... chain (None for SubIFDs).
    pub(super) chain_index: Option<usize>,
}

pub(super) fn type_size(typ: u16) -> Option<usize> {
    Some(match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

impl<'a> Tiff<'a> {
    pub(super) fn new(d: &'a [u8], base: usize) -> Option<Self> {
        let le = match d.get(base..base.checked_add(2)?)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let t = Tiff { d, le, base };
        // 42 (TIFF), or the ORF / RW2 magics.
        matches!(t.u16(2)?, 42 | 0x4F52 | 0x5352 | 0x0055).then_some(t)
    }
    pub(super) fn first_ifd(&self) -> Option<u32> {
        self.u32(4)
    }
    pub(super) fn bytes(&self) -> Bytes<'a> {
        Bytes {
            d: self.d,
            le: self.le,
        }
    }
    /// Reads at `rel` (relative to the base).
    pub(super) fn u16(&self, rel: usize) -> Option<u16> {
        self.bytes().u16(self.base.checked_add(rel)?)
    }
    pub(super) fn u32(&self, rel: usize) -> Option<u32> {
        self.bytes().u32(self.base.checked_add(rel)?)
    }
    pub(super) fn ifd(&self, rel: u32) -> Option<Ifd> {
        let abs = self.base.checked_add(rel as usize)?;
        let b = self.bytes();
        let n = usize::from(b.u16(abs)?);
        if n == 0 || n > 1000 {
            return None;
        }
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let p = abs + 2 + 12 * i;
            let (Some(tag), Some(typ), Some(count)) = (b.u16(p), b.u16(p + 2), b.u32(p + 4)) else {
                break;
            };
            let Some(size) = type_size(typ).and_then(|s| s.checked_mul(count as usize)) else {
                continue;
            };
            let pos = if size <= 4 {
                p + 8
            } else {
                match b.u32(p + 8) {
                    Some(off) => self.base.saturating_add(off as usize),
                    None => continue,
                }
            };
            entries.push(Entry {
                tag,
                typ,
                count,
                pos,
            });
        }
        let next = b.u32(abs + 2 + 12 * n).unwrap_or(0);
        Some(Ifd {
            entries,
            next,
            chain_index: None,
        })
    }
    pub(super) fn uint(&self, e: &Entry, i: usize) -> Option<u32> {
        if i >= e.count as usize {
            return None;
        }
        let b = self.bytes();
        match e.typ {
            1 | 7 => self.d.get(e.pos.checked_add(i)?).copied().map(u32::from),
            3 => b.u16(e.pos.checked_add(2 * i)?).map(u32::from),
            8 => b
                .u16(e.pos.checked_add(2 * i)?)
                .map(|v| v as i16 as i32 as u32),
            4 | 9 | 13 => b.u32(e.pos.checked_add(4 * i)?),
            _ => None,
        }
    }
    pub(super) fn f64(&self, e: &Entry, i: usize) -> Option<f64> {
        if i >= e.count as usize {
            return None;
        }
        let b = self.bytes();
        match e.typ {
            1 | 3 | 4 | 7 | 13 => self.uint(e, i).map(f64::from),
            5 | 10 => {
                let p = e.pos.checked_add(8 * i)?;
                let (n, d) = (b.u32(p)?, b.u32(p + 4)?);
                let (n, d) = if e.typ == 10 {
                    (f64::from(n as i32), f64::from(d as i32))
                } else {
                    (f64::from(n), f64::from(d))
                };
                (d != 0.0).then(|| n / d)
            }
            11 => b
                .u32(e.pos.checked_add(4 * i)?)
                .map(|v| f64::from(f32::from_bits(v))),
            _ => None,
        }
    }
    pub(super) fn string(&self, e: &Entry) -> Option<String> {
        let raw = self.d.get(e.pos..e.pos.checked_add(e.count as usize)?)?;
        let s = raw.split(|&c| c == 0).next().unwrap_or(&[]);
        Some(String::from_utf8_lossy(s).trim().to_string())
    }
}

impl Ifd {
    pub(super) fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }
    pub(super) fn uint(&self, t: &Tiff, tag: u16) -> Option<u32> {
        t.uint(self.get(tag)?, 0)
    }
    /// (offset, length) pairs of strips or tiles (absolute offsets).
    pub(super) fn ranges(&self, t: &Tiff, offs: u16, lens: u16) -> Vec<(u64, u64)> {
        let Some(o) = self.get(offs) else {
            return Vec::new();
        };
        let l = self.get(lens);
        (0..(o.count as usize).min(1 << 16))
            .map_while(|i| {
                let off = t.uint(o, i)?;
                let len = l.and_then(|l| t.uint(l, i)).unwrap_or(1);
                Some((t.base as u64 + u64::from(off), u64::from(len)))
            })
            .collect()
    }
}

/// IFD0, IFD1, ... and their SubIFDs (3 levels), at most 64 IFDs.
pub(super) fn walk_tiff(t: &Tiff, first: u32) -> Vec<Ifd> {
    pub(super) fn subs(
        t: &Tiff,
        ifd: &Ifd,
        depth: u8,
        seen: &mut HashSet<u32>,
        out: &mut Vec<Ifd>,
    ) {
        if depth > 3 {
            return;
        }
        let Some(e) = ifd.get(TAG_SUB_IFDS) else {
            return;
        };
        for i in 0..(e.count as usize).min(16) {
            let Some(off) = t.uint(e, i) else { break };
            if out.len() >= 64 || !seen.insert(off) {
                continue;
            }
            if let Some(sub) = t.ifd(off) {
                out.push(sub.clone());
                subs(t, &sub, depth + 1, seen, out);
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut off = first;
    let mut index = 0;
    while off != 0 && index < 16 && out.len() < 64 && seen.insert(off) {
        let Some(mut ifd) = t.ifd(off) else { break };
        ifd.chain_index = Some(index);
        off = ifd.next;
        out.push(ifd.clone());
        subs(t, &ifd, 1, &mut seen, &mut out);
        index += 1;
    }
    out
}

/// The frame header of a JPEG stream.
#[derive(Debug, Clone)]
pub struct JpegSof {
    /// SOF marker (0xC0..=0xCF).
    pub sof: u8,
    /// Sample precision.
    pub precision: u8,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Components.
    pub components: u8,
    /// (offset, len) of the first Exif APP1 TIFF payload, within the stream.
    pub exif: Option<(usize, usize)>,
}

impl JpegSof {
    /// Baseline, extended or progressive Huffman, 8-bit, grey or colour.
    pub(super) fn previewable(&self) -> bool {
        matches!(self.sof, 0xC0..=0xC2)
            && self.precision == 8
            && matches!(self.components, 1 | 3)
            && self.width > 0
            && self.height > 0
    }
}

/// Walks a JPEG's markers up to the first SOS and returns its frame header.
pub fn jpeg_sof(d: &[u8]) -> Result<JpegSof, &'static str> {
    if !d.starts_with(&[0xFF, 0xD8]) {
        return Err("no JPEG SOI");
    }
    let mut pos = 2;
    let mut exif = None;
    for _ in 0..1024 {
        while d.get(pos) == Some(&0xFF) && d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (d.get(pos), d.get(pos + 1)) else {
            return Err("JPEG marker expected");
        };
        pos += 2;
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            return Err("JPEG scan before its frame header");
        }
        let len = usize::from(be_u16(d, pos).ok_or("truncated JPEG segment")?);
        if len < 2 {
            return Err("bad JPEG segment length");
        }
        let body = d.get(pos + 2..pos + len).ok_or("truncated JPEG segment")?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if body.len() < 6 {
                    return Err("short JPEG frame header");
                }
                return Ok(JpegSof {
                    sof: marker,
                    precision: body[0],
                    height: u32::from(u16::from_be_bytes([body[1], body[2]])),
                    width: u32::from(u16::from_be_bytes([body[3], body[4]])),
                    components: body[5],
                    exif,
                });
            }
            0xE1 if exif.is_none() && body.starts_with(b"Exif\0\0") => {
                exif = Some((pos + 2 + 6, body.len() - 6));
            }
            _ => {}
        }
        pos += len;
    }
    Err("too many JPEG segments")
}
