//! The render pipeline, step by step. One job decodes its original once and
//! renders every size from it:
//!
//! 1. **probe** ([`header::read`]): format, stored size and orientation from
//!    the header; limits checked before any pixel buffer exists;
//! 2. **plan** ([`Plan::new`]): the sizes this original gets and what each
//!    is resized from (the decoded original, or a larger size in memory);
//! 3. **decode** ([`decode::decode`]): once, at the smallest JPEG DCT scale
//!    that covers every root (10/12-bit HEIC/AVIF and RAW develops in 16
//!    bits);
//! 4. **orient**: roots are resized from the stored orientation and then
//!    rotated/flipped ([`orient::apply`]), which is cheap at output size;
//! 5. **colour**: 16-bit roots are tone-mapped (PQ/HLG, [`Signal`]) or
//!    rounded to 8 bits; an embedded ICC profile is converted to sRGB
//!    ([`ToSrgb`]);
//! 6. **resize cascade** ([`resize::resize`]): the other sizes from the
//!    results they cascade from;
//! 7. **encode** ([`encode`]): JPEG (libjpeg-turbo, progressive) or PNG
//!    (`colors`), no metadata.

use super::cascade::{stored_dims, Plan};
use super::color::ToSrgb;
use super::encode::{encode_png, JpegEncoder};
use super::error::{guarded, RenderError};
use super::header::{self, Header};
use super::options::RenderOptions;
use super::pixels::{Decoding, Rgb};
use super::probe::ImageFormat;
use super::resize16::resize16;
use super::tonemap::Signal;
use super::{decode, limits, orient, resize};
use fast_image_resize::Resizer;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use thumbfarm_shared::manifest::HdrInfo;
use thumbfarm_shared::sizes::Format;
use thumbfarm_shared::Size;

/// One encoded output.
#[derive(Debug, Clone)]
pub struct RenderedOutput {
    /// The size this output is.
    pub size: Size,
    /// Pixel width of the output.
    pub width: u32,
    /// Pixel height of the output.
    pub height: u32,
    /// The encoded file (JPEG or PNG).
    pub bytes: Vec<u8>,
    /// Time spent resizing and encoding this size.
    pub millis: f64,
}

/// The result of one render job.
#[derive(Debug, Clone)]
pub struct RenderResult {
    /// Original width after orientation.
    pub width: u32,
    /// Original height after orientation.
    pub height: u32,
    /// Detected media type of the original.
    pub media_type: &'static str,
    /// Time spent decoding.
    pub decode_millis: f64,
    /// Whether (and how) the original is HDR (`None`: SDR).
    pub hdr: Option<HdrInfo>,
    /// One entry per rendered size (wanted sizes resolved for this original).
    pub outputs: Vec<RenderedOutput>,
}

/// What the header of an original says (see [`probe_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The detected container.
    pub format: ImageFormat,
    /// Detected media type of the original.
    pub media_type: &'static str,
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// The EXIF orientation that is applied (1..=8; 1 for HEIF, whose
    /// transforms libheif applies).
    pub orientation: u8,
}

/// Renders `sizes` of the image at `path` from one decode (blocking; call it
/// off the async runtime).
pub fn render_file(
    path: &Path,
    sizes: &[Size],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    let data = read_limited(path, opts)?;
    render_bytes(&data, sizes, opts)
}

/// Renders `sizes` of an original held in memory (see [`render_file`]).
pub fn render_bytes(
    data: &[u8],
    sizes: &[Size],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    limits::check_file_size(data.len() as u64, opts)?;
    guarded(|| run(data, sizes, opts))
}

/// Reads the format, the oriented pixel size and the orientation of the file
/// at `path` without decoding pixels (limits are checked).
pub fn probe_file(path: &Path, opts: &RenderOptions) -> Result<ProbeResult, RenderError> {
    let data = read_limited(path, opts)?;
    probe_bytes(&data, opts)
}

/// Reads the format, the oriented pixel size and the orientation of an
/// original held in memory without decoding pixels (limits are checked).
pub fn probe_bytes(data: &[u8], opts: &RenderOptions) -> Result<ProbeResult, RenderError> {
    limits::check_file_size(data.len() as u64, opts)?;
    guarded(|| {
        let h = header::read(data, opts)?;
        let (width, height) = orient::oriented_dims(h.width, h.height, h.orientation);
        Ok(ProbeResult {
            format: h.format,
            media_type: h.format.media_type(),
            width,
            height,
            orientation: h.orientation,
        })
    })
}

/// Reads a file after checking its size against the limit.
fn read_limited(path: &Path, opts: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let meta = std::fs::metadata(path)?;
    limits::check_file_size(meta.len(), opts)?;
    Ok(std::fs::read(path)?)
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The steps, in order (see the module docs).
fn run(data: &[u8], wanted: &[Size], opts: &RenderOptions) -> Result<RenderResult, RenderError> {
    let started = Instant::now();
    let header = header::read(data, opts)?; // 1. probe
    let plan = Plan::new(&header, wanted)?; // 2. plan
    let decoded = decode::decode(data, &header, &plan.needs(&header), opts)?; // 3. decode
    let decode_millis = millis(started);
    let mut resizer = Resizer::new();
    let mut images = HashMap::new();
    let mut resize_millis = HashMap::new();
    resize_roots(
        &mut resizer,
        &plan,
        &header,
        decoded,
        &mut images,
        &mut resize_millis,
    )?; // 4. orient, 5. colour
    resize_cascade(&mut resizer, &plan, &mut images, &mut resize_millis)?; // 6. resize cascade
    let outputs = encode_all(&plan, &images, &resize_millis, opts)?; // 7. encode
    Ok(RenderResult {
        width: plan.width,
        height: plan.height,
        media_type: header.format.media_type(),
        decode_millis,
        hdr: header.hdr.clone(),
        outputs,
    })
}

/// Steps 4 and 5: the roots, resized from the decoded original in stored
/// orientation (16-bit pixels in 16 bits, then tone-mapped or rounded), then
/// turned upright and converted to sRGB.
fn resize_roots(
    resizer: &mut Resizer,
    plan: &Plan,
    header: &Header,
    decoded: Decoding,
    images: &mut HashMap<Size, Rgb>,
    timings: &mut HashMap<Size, f64>,
) -> Result<(), RenderError> {
    let o = header.orientation;
    let (dw, dh, full_w, full_h) = decoded.dims();
    let icc = match &decoded {
        Decoding::Rgb8(d) => d.icc.as_deref(),
        Decoding::Rgb16(d) if d.signal == Signal::Sdr => d.icc.as_deref(),
        // Tone-mapped pixels come out in sRGB already.
        Decoding::Rgb16(_) => None,
    };
    let to_srgb = icc.and_then(ToSrgb::for_rgb);
    for step in &plan.roots {
        let t = Instant::now();
        let (rw, rh) = stored_dims(&step.geometry, o);
        let crop = orient::rect_to_stored(step.geometry.crop, o, header.width, header.height)
            .scaled((full_w, full_h), (dw, dh));
        let small = match &decoded {
            Decoding::Rgb8(d) => {
                resize::resize(resizer, &d.pixels, d.width, d.height, crop, rw, rh)?.pixels
            }
            Decoding::Rgb16(d) => {
                let px = resize16(resizer, &d.pixels, d.width, d.height, crop, rw, rh)?;
                d.signal.to_rgb8(&px)
            }
        };
        let (mut pixels, width, height) = orient::apply(small, rw.max(1), rh.max(1), o);
        if let Some(t) = &to_srgb {
            t.apply(&mut pixels);
        }
        images.insert(
            step.size,
            Rgb {
                pixels,
                width,
                height,
            },
        );
        timings.insert(step.size, millis(t));
    }
    Ok(())
}

/// Step 6: every other size, from the result it cascades from.
fn resize_cascade(
    resizer: &mut Resizer,
    plan: &Plan,
    images: &mut HashMap<Size, Rgb>,
    timings: &mut HashMap<Size, f64>,
) -> Result<(), RenderError> {
    for step in &plan.derived {
        let t = Instant::now();
        let src = step
            .source
            .and_then(|s| images.get(&s))
            .ok_or_else(|| RenderError::Decode("cascade source missing".into()))?;
        let crop = step
            .geometry
            .crop
            .scaled((plan.width, plan.height), (src.width, src.height));
        let img = resize::resize(
            resizer,
            &src.pixels,
            src.width,
            src.height,
            crop,
            step.geometry.width,
            step.geometry.height,
        )?;
        images.insert(step.size, img);
        timings.insert(step.size, millis(t));
    }
    Ok(())
}

/// Step 7: every size encoded, in size order.
fn encode_all(
    plan: &Plan,
    images: &HashMap<Size, Rgb>,
    resize_millis: &HashMap<Size, f64>,
    opts: &RenderOptions,
) -> Result<Vec<RenderedOutput>, RenderError> {
    let mut jpeg = JpegEncoder::new()?;
    let mut sizes: Vec<Size> = plan
        .roots
        .iter()
        .chain(&plan.derived)
        .map(|s| s.size)
        .collect();
    sizes.sort();
    let mut outputs = Vec::with_capacity(sizes.len());
    for size in sizes {
        let img = images
            .get(&size)
            .ok_or_else(|| RenderError::Decode(format!("{size} was not resized")))?;
        let t = Instant::now();
        let bytes = match size.format() {
            Format::Png => encode_png(&img.pixels, img.width, img.height)?,
            Format::Jpeg => {
                jpeg.encode(&img.pixels, img.width, img.height, opts.quality_for(size))?
            }
        };
        outputs.push(RenderedOutput {
            size,
            width: img.width,
            height: img.height,
            bytes,
            millis: millis(t) + resize_millis.get(&size).copied().unwrap_or(0.0),
        });
    }
    Ok(outputs)
}
