//! HEIC/HEIF (HEVC through libde265) and AVIF (AV1 through dav1d) with a
//! current libheif (1.23, built by `scripts/build-libheif.sh` and linked
//! statically through libheif-sys 5 / libheif-rs 3; Debian's 1.15 cannot read
//! iOS 18 HEICs: "Too many auxiliary image references", fixed in 1.18).
//!
//! Orientation: libheif applies `irot`/`imir`/`clap` while decoding and the
//! primary handle's size is the displayed size, so the EXIF orientation of a
//! file that has `irot`/`imir` is ignored (iPhone, Samsung: applied once).
//! Files with an EXIF orientation but no `irot`/`imir` at all (third-party
//! camera apps, e.g. seed/iphone_7.heic by ProCam 10.5.8: EXIF 6, no irot)
//! are a policy choice, [`HeifHeader::orientation`]: the HEIF/MIAF spec says
//! EXIF is informational (libvips, imgproxy, libheif's tools: sideways);
//! Apple's Preview/Photos apply it (upright), and so does thumbfarm (see
//! docs/decisions.md): the EXIF orientation is applied once, when no
//! `irot`/`imir` applied it already.
//!
//! Bit depth: 8-bit images decode to RGB8 ([`Decoding::Rgb8`]); 10/12-bit
//! ones to RGB16 ([`Decoding::Rgb16`], samples widened to 16 bits) so the
//! resize runs on 16 bits; [`Signal::to_rgb8`] then tone-maps PQ/HLG to SDR
//! or rounds SDR to 8 bits, at output size.

use super::error::RenderError;
use super::hdr::{self, HdrInfo};
use super::pixels::{flatten_rgba, Decoded, Decoded16, Decoding};
use super::tonemap::{widen_to_16, Primaries, Signal};
use libheif_rs::{ColorSpace, HeifContext, ImageHandle, LibHeif, RgbChroma, SecurityLimits};
use libheif_sys as lh;

fn heif_err(e: libheif_rs::HeifError) -> RenderError {
    RenderError::Decode(format!("HEIF: {e}"))
}

/// What the container says about the primary image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeifHeader {
    /// Displayed width (after `irot`/`imir`/`clap`).
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// The EXIF orientation tag of the primary (1 when absent/invalid).
    pub exif_orientation: u8,
    /// Whether the primary has `irot`/`imir` (which libheif applies).
    pub has_irot_or_imir: bool,
    /// Luma bit depth of the coded primary image (8, 10, 12).
    pub bit_depth: u8,
    /// HDR kind (PQ/HLG transfer, gain maps).
    pub hdr: HdrInfo,
}

impl HeifHeader {
    /// The EXIF orientation still to apply after decoding. Never when the file
    /// has `irot`/`imir` (applied once, by libheif). Without them: the EXIF
    /// value when `exif_fallback` (Apple's behaviour), else 1 (the spec's).
    pub fn orientation(&self, exif_fallback: bool) -> u8 {
        if self.has_irot_or_imir || !exif_fallback {
            1
        } else {
            self.exif_orientation
        }
    }
}

/// Opens a context with libheif's own limits tightened to ours (defence in
/// depth: the worker's probe checks the pixel count first).
fn open(data: &[u8], max_pixels: u64) -> Result<HeifContext<'_>, RenderError> {
    let mut ctx = HeifContext::new().map_err(heif_err)?;
    let mut limits = SecurityLimits::new();
    limits.set_max_image_size_pixels(max_pixels);
    ctx.set_security_limits(&limits).map_err(heif_err)?;
    ctx.read_bytes(data).map_err(heif_err)?;
    Ok(ctx)
}

/// What libheif-rs does not expose (the primary's `irot`/`imir`, CLLI, a
/// `tmap` item), read through libheif-sys on a metadata-only context.
struct RawInfo {
    has_irot_or_imir: bool,
    max_cll: Option<u16>,
    has_tmap_item: bool,
}

fn raw_info(data: &[u8]) -> RawInfo {
    let mut info = RawInfo {
        has_irot_or_imir: false,
        max_cll: None,
        has_tmap_item: false,
    };
    // SAFETY: plain libheif C calls on a context we own and free; `data`
    // outlives the context (read without copy).
    unsafe {
        let ctx = lh::heif_context_alloc();
        if ctx.is_null() {
            return info;
        }
        let err = lh::heif_context_read_from_memory_without_copy(
            ctx,
            data.as_ptr().cast(),
            data.len(),
            std::ptr::null(),
        );
        if err.code == lh::heif_error_code_heif_error_Ok {
            let n = lh::heif_context_get_number_of_items(ctx).clamp(0, 100_000);
            let mut ids = vec![0 as lh::heif_item_id; n as usize];
            let got = lh::heif_context_get_list_of_item_IDs(ctx, ids.as_mut_ptr(), n);
            ids.truncate(got.max(0) as usize);
            let tmap = u32::from_be_bytes(*b"tmap");
            info.has_tmap_item = ids
                .iter()
                .any(|&id| lh::heif_item_get_item_type(ctx, id) == tmap);
            let mut handle = std::ptr::null_mut();
            let e = lh::heif_context_get_primary_image_handle(ctx, &mut handle);
            if e.code == lh::heif_error_code_heif_error_Ok && !handle.is_null() {
                let mut clli = lh::heif_content_light_level {
                    max_content_light_level: 0,
                    max_pic_average_light_level: 0,
                };
                if lh::heif_image_handle_get_content_light_level(handle, &mut clli) != 0
                    && clli.max_content_light_level > 0
                {
                    info.max_cll = Some(clli.max_content_light_level);
                }
                let id = lh::heif_image_handle_get_item_id(handle);
                let mut props = [0 as lh::heif_property_id; 8];
                let n = lh::heif_item_get_transformation_properties(ctx, id, props.as_mut_ptr(), 8);
                info.has_irot_or_imir = props[..n.clamp(0, 8) as usize].iter().any(|&p| {
                    let t = lh::heif_item_get_property_type(ctx, id, p);
                    t == lh::heif_item_property_type_heif_item_property_type_transform_rotation
                        || t == lh::heif_item_property_type_heif_item_property_type_transform_mirror
                });
                lh::heif_image_handle_release(handle);
            }
        }
        lh::heif_context_free(ctx);
    }
    info
}

/// EXIF orientation of the primary (HEIF `Exif` item: 4-byte offset, then TIFF).
fn exif_orientation(handle: &ImageHandle) -> Option<u8> {
    let mut ids = [0; 4];
    let n = handle.metadata_block_ids(&mut ids, b"Exif");
    let raw = handle.metadata(*ids.get(..n)?.first()?).ok()?;
    let off = u32::from_be_bytes(raw.get(0..4)?.try_into().ok()?) as usize;
    let tiff = raw.get(4usize.checked_add(off)?..)?.to_vec();
    let exif = exif::Reader::new().read_raw(tiff).ok()?;
    let v = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
        .value
        .get_uint(0)?;
    u8::try_from(v).ok().filter(|o| (1..=8).contains(o))
}

fn nclx_of(handle: &ImageHandle) -> Option<(u16, u16)> {
    handle.color_profile_nclx().map(|n| {
        (
            n.color_primaries() as u16,
            n.transfer_characteristics() as u16,
        )
    })
}

/// The displayed size, orientation still to apply, bit depth and HDR kind,
/// from the container boxes only (no pixel decode).
pub fn probe(data: &[u8], max_pixels: u64) -> Result<HeifHeader, RenderError> {
    let ctx = open(data, max_pixels)?;
    let handle = ctx.primary_image_handle().map_err(heif_err)?;
    let raw = raw_info(data);
    let aux: Vec<String> = handle
        .auxiliary_images(None)
        .iter()
        .filter_map(|a| a.auxiliary_type().ok())
        .collect();
    let has_tmap = raw.has_tmap_item || hdr::ftyp_brands(data).iter().any(|b| b == b"tmap");
    // AVIF may carry its CICP only in the AV1 sequence header: then the
    // transfer is known after decoding (decode() re-checks it).
    let hdr = hdr::heif(nclx_of(&handle).map(|(_, t)| t), &aux, has_tmap);
    Ok(HeifHeader {
        width: handle.width(),
        height: handle.height(),
        exif_orientation: exif_orientation(&handle).unwrap_or(1),
        has_irot_or_imir: raw.has_irot_or_imir,
        bit_depth: handle.luma_bits_per_pixel(),
        hdr,
    })
}

/// Decodes the primary image, upright, alpha flattened onto white: RGB8 for
/// 8-bit images, RGB16 (+ how to bring it to SDR) for deeper ones.
pub fn decode(data: &[u8], max_pixels: u64) -> Result<Decoding, RenderError> {
    let ctx = open(data, max_pixels)?;
    let handle = ctx.primary_image_handle().map_err(heif_err)?;
    let alpha = handle.has_alpha_channel();
    let deep = handle.luma_bits_per_pixel() > 8;
    let chroma = match (deep, alpha) {
        (false, false) => RgbChroma::Rgb,
        (false, true) => RgbChroma::Rgba,
        (true, false) => RgbChroma::HdrRgbLe,
        (true, true) => RgbChroma::HdrRgbaLe,
    };
    let icc = handle.color_profile_raw().map(|p| p.data);
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(heif_err)?;
    let nclx = nclx_of(&handle).or_else(|| {
        image.color_profile_nclx().map(|n| {
            (
                n.color_primaries() as u16,
                n.transfer_characteristics() as u16,
            )
        })
    });
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| RenderError::Decode("HEIF: no interleaved plane".into()))?;
    let (w, h) = (plane.width, plane.height);
    let ch = if alpha { 4 } else { 3 };
    let short = || RenderError::Decode("HEIF: short plane".into());

    if !deep {
        if plane.storage_bits_per_pixel != 8 * ch as u8 {
            return Err(RenderError::Decode(format!(
                "HEIF: unexpected {} bits per pixel",
                plane.storage_bits_per_pixel
            )));
        }
        let row = w as usize * ch;
        let mut pixels = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            let start = y * plane.stride;
            pixels.extend_from_slice(plane.data.get(start..start + row).ok_or_else(short)?);
        }
        let pixels = if alpha { flatten_rgba(&pixels) } else { pixels };
        return Ok(Decoding::Rgb8(Decoded {
            pixels,
            width: w,
            height: h,
            full_width: w,
            full_height: h,
            icc,
        }));
    }

    let bits = plane.bits_per_pixel;
    if !(9..=16).contains(&bits) || plane.storage_bits_per_pixel != 16 * ch as u8 {
        return Err(RenderError::Decode(format!(
            "HEIF: unexpected {bits}-bit samples in {} bits per pixel",
            plane.storage_bits_per_pixel
        )));
    }
    let row = w as usize * ch * 2;
    let mut px: Vec<u16> = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as usize {
        let start = y * plane.stride;
        let line = plane.data.get(start..start + row).ok_or_else(short)?;
        for p in line.chunks_exact(2 * ch) {
            let s = |i: usize| widen_to_16(u16::from_le_bytes([p[2 * i], p[2 * i + 1]]), bits);
            if alpha {
                // Flatten onto white in 16 bits.
                let a = u32::from(s(3));
                for i in 0..3 {
                    px.push(((u32::from(s(i)) * a + 65535 * (65535 - a) + 32767) / 65535) as u16);
                }
            } else {
                px.extend_from_slice(&[s(0), s(1), s(2)]);
            }
        }
    }
    let (prim, trc) = nclx.unzip();
    let primaries = Primaries::from_cicp(prim.unwrap_or(9));
    let signal = match trc {
        Some(16) => Signal::Pq {
            primaries,
            max_cll: raw_info(data).max_cll,
        },
        Some(18) => Signal::Hlg { primaries },
        _ => Signal::Sdr,
    };
    Ok(Decoding::Rgb16(Decoded16 {
        pixels: px,
        width: w,
        height: h,
        full_width: w,
        full_height: h,
        icc: if signal.is_hdr() { None } else { icc },
        signal,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::resize16::resize16;
    use fast_image_resize::Resizer;
    use thumbfarm_shared::sizes::CropRect;

    #[test]
    fn ten_bit_images_keep_their_precision_through_the_resize() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hdr/libavif_cosmos1650_yuv444_10bpc_p3pq.avif");
        let data = std::fs::read(&path).expect("fixture");
        let header = probe(&data, 100_000_000).expect("probe");
        assert_eq!(
            (header.width, header.height, header.bit_depth),
            (1024, 428, 10)
        );
        let Decoding::Rgb16(d) = decode(&data, 100_000_000).expect("decode") else {
            panic!("a 10-bit image decodes to 16 bits")
        };
        assert!(d.signal.is_hdr() && d.icc.is_none());
        let crop = CropRect {
            x: 0.0,
            y: 0.0,
            width: 1024.0,
            height: 428.0,
        };
        let small =
            resize16(&mut Resizer::new(), &d.pixels, 1024, 428, crop, 512, 214).expect("resize");
        // Far more than the 256 levels an 8-bit pipeline could keep.
        let levels: std::collections::HashSet<u16> = small.chunks_exact(3).map(|p| p[1]).collect();
        assert!(levels.len() > 1024, "{} levels", levels.len());
    }
}
