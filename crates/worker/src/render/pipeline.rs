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
//! 7. **placeholder** ([`placeholder`]): the ThumbHash, from the smallest
//!    fit result in memory;
//! 8. **encode** ([`encode`]): every wanted rendition of every size — JPEG
//!    (libjpeg-turbo, progressive) or PNG (`colors`), WebP (libwebp), AVIF
//!    (rav1e) — no metadata.

use super::cascade::{stored_dims, Plan};
use super::color::ToSrgb;
use super::encode::{encode_avif, encode_png, encode_webp, JpegEncoder};
use super::error::{guarded, RenderError};
use super::header::{self, Header};
use super::options::RenderOptions;
use super::pixels::{Decoding, Rgb};
use super::probe::ImageFormat;
use super::resize16::resize16;
use super::tonemap::Signal;
use super::{decode, limits, orient, placeholder, resize};
use fast_image_resize::Resizer;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use thumbfarm_shared::manifest::HdrInfo;
use thumbfarm_shared::renditions::{resolve_renditions, sizes_of, OutputFormat, Rendition};
use thumbfarm_shared::sizes::Format;
use thumbfarm_shared::Size;

/// One encoded output.
#[derive(Debug, Clone)]
pub struct RenderedOutput {
    /// The size this output is.
    pub size: Size,
    /// The format it is encoded in.
    pub format: OutputFormat,
    /// Pixel width of the output.
    pub width: u32,
    /// Pixel height of the output.
    pub height: u32,
    /// The encoded file (JPEG, PNG, WebP or AVIF).
    pub bytes: Vec<u8>,
    /// Time spent resizing and encoding this size.
    pub millis: f64,
}

impl RenderedOutput {
    /// The size and format of this output.
    pub fn rendition(&self) -> Rendition {
        Rendition {
            size: self.size,
            format: self.format,
        }
    }
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
    /// One entry per rendered rendition (wanted sizes resolved for this
    /// original, in every wanted format).
    pub outputs: Vec<RenderedOutput>,
    /// The ThumbHash, when the job rendered a fit size to compute it from.
    pub thumbhash: Option<Vec<u8>>,
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

/// Renders `wanted` renditions of the image at `path` from one decode
/// (blocking; call it off the async runtime). A [`Size`] is its classic
/// JPEG/PNG rendition.
pub fn render_file<R: Into<Rendition> + Copy>(
    path: &Path,
    wanted: &[R],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    let data = read_limited(path, opts)?;
    render_bytes(&data, wanted, opts)
}

/// Renders `wanted` renditions of an original held in memory (see
/// [`render_file`]).
pub fn render_bytes<R: Into<Rendition> + Copy>(
    data: &[u8],
    wanted: &[R],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    limits::check_file_size(data.len() as u64, opts)?;
    let wanted: Vec<Rendition> = wanted.iter().map(|r| (*r).into()).collect();
    guarded(|| run(data, &wanted, opts))
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
fn run(
    data: &[u8],
    wanted: &[Rendition],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    let started = Instant::now();
    let header = header::read(data, opts)?; // 1. probe
    let plan = Plan::new(&header, &sizes_of(wanted))?; // 2. plan
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
    let thumbhash = smallest_fit(&images)
        .map(|img| placeholder::thumbhash(&mut resizer, img))
        .transpose()?; // 7. placeholder
    let renditions = resolved_renditions(&plan, wanted);
    let outputs = encode_all(&renditions, &images, &resize_millis, opts)?; // 8. encode
    Ok(RenderResult {
        width: plan.width,
        height: plan.height,
        media_type: header.format.media_type(),
        decode_millis,
        hdr: header.hdr.clone(),
        outputs,
        thumbhash,
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

/// The fit-method result with the fewest pixels: the ThumbHash source (the
/// whole picture, never a crop).
fn smallest_fit(images: &HashMap<Size, Rgb>) -> Option<&Rgb> {
    images
        .iter()
        .filter(|(size, _)| !size.spec().method.is_fill() && **size != Size::Colors)
        .min_by_key(|(size, img)| (u64::from(img.width) * u64::from(img.height), **size))
        .map(|(_, img)| img)
}

/// The renditions this job encodes: every wanted one with its size resolved
/// for the original (a fit larger than the original is its largest stored
/// fit), in the plan, without repeats, in size then format order.
fn resolved_renditions(plan: &Plan, wanted: &[Rendition]) -> Vec<Rendition> {
    let planned: Vec<Size> = plan
        .roots
        .iter()
        .chain(&plan.derived)
        .map(|s| s.size)
        .collect();
    resolve_renditions(wanted, plan.width, plan.height)
        .into_iter()
        .filter(|r| planned.contains(&r.size))
        .collect()
}

/// Step 8: every rendition encoded, in size then format order; on
/// `opts.encode_threads` threads when the job has cores to spare (the
/// costliest encodes first, each thread taking the next one).
fn encode_all(
    renditions: &[Rendition],
    images: &HashMap<Size, Rgb>,
    resize_millis: &HashMap<Size, f64>,
    opts: &RenderOptions,
) -> Result<Vec<RenderedOutput>, RenderError> {
    let threads = opts.encode_threads.clamp(1, renditions.len().max(1));
    let mut encoded: Vec<(Rendition, Vec<u8>, f64)> = if threads == 1 {
        let mut jpeg = JpegEncoder::new()?;
        renditions
            .iter()
            .map(|&r| encode_one(r, images, opts, &mut jpeg))
            .collect::<Result<_, _>>()?
    } else {
        let mut by_cost = renditions.to_vec();
        by_cost.sort_by_key(|r| std::cmp::Reverse(encode_cost(*r)));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::with_capacity(renditions.len()));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut jpeg = match JpegEncoder::new() {
                        Ok(j) => j,
                        Err(e) => return results.lock().map_or((), |mut r| r.push(Err(e))),
                    };
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&r) = by_cost.get(i) else { break };
                        let done = guarded(|| encode_one(r, images, opts, &mut jpeg));
                        if let Ok(mut all) = results.lock() {
                            all.push(done);
                        }
                    }
                });
            }
        });
        results
            .into_inner()
            .map_err(|_| RenderError::Encode("an encoder thread panicked".into()))?
            .into_iter()
            .collect::<Result<_, _>>()?
    };
    encoded.sort_by_key(|(r, _, _)| *r);
    let mut outputs: Vec<RenderedOutput> = Vec::with_capacity(encoded.len());
    for (r, bytes, encode_millis) in encoded {
        let img = images
            .get(&r.size)
            .ok_or_else(|| RenderError::Decode(format!("{} was not resized", r.size)))?;
        // The resize is shared by a size's formats: counted once, with the first.
        let resize = if outputs.iter().any(|o| o.size == r.size) {
            0.0
        } else {
            resize_millis.get(&r.size).copied().unwrap_or(0.0)
        };
        outputs.push(RenderedOutput {
            size: r.size,
            format: r.format,
            width: img.width,
            height: img.height,
            bytes,
            millis: encode_millis + resize,
        });
    }
    Ok(outputs)
}

/// A rough relative cost of encoding `r`, to start the costliest first.
fn encode_cost(r: Rendition) -> u64 {
    let per_pixel = match r.file_format() {
        Format::Png | Format::Jpeg => 1,
        Format::Webp => 6,
        Format::Avif => 8,
    };
    u64::from(r.size.long_side()).pow(2) * per_pixel
}

/// Encodes one rendition; returns it with its bytes and encode time.
fn encode_one(
    r: Rendition,
    images: &HashMap<Size, Rgb>,
    opts: &RenderOptions,
    jpeg: &mut JpegEncoder,
) -> Result<(Rendition, Vec<u8>, f64), RenderError> {
    let img = images
        .get(&r.size)
        .ok_or_else(|| RenderError::Decode(format!("{} was not resized", r.size)))?;
    let t = Instant::now();
    let (px, w, h) = (&img.pixels, img.width, img.height);
    let bytes = match r.file_format() {
        Format::Png => encode_png(px, w, h)?,
        Format::Jpeg => jpeg.encode(px, w, h, opts.quality_for(r.size))?,
        Format::Webp => encode_webp(px, w, h, opts.webp_quality, opts.webp_method)?,
        Format::Avif => encode_avif(px, w, h, opts.avif_quality, opts.avif_speed, None)?,
    };
    Ok((r, bytes, millis(t)))
}
