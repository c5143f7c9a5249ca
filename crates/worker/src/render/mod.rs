//! The render pipeline: one decode per job, then every requested size along
//! the cascade.
//!
//! 1. [`probe`](decode::probe): the format from the magic bytes, the pixel
//!    size and orientation from the header, checked against the limits
//!    before any pixel buffer exists;
//! 2. [`decode`](decode::decode): one decode (JPEG at the smallest DCT scale
//!    that still covers every output rendered from the original; HEIC/AVIF
//!    through libheif; the rest through the `image` crate) to RGB8;
//! 3. the sizes rendered from the original ("roots") are resized from the
//!    stored orientation, then rotated/flipped (cheap at output size) and
//!    converted from the embedded ICC profile to sRGB;
//! 4. the other sizes are resized from the roots they cascade from
//!    ([`thumbfarm_shared::sizes::cascade_source`]);
//! 5. JPEG (progressive, libjpeg-turbo) or PNG (`colors`), no metadata.

mod color;
mod decode;
mod encode;
mod heif;
mod jpeg;
mod limits;
mod orient;
mod probe;
mod resize;

pub use probe::ImageFormat;

use decode::Need;
use encode::{encode_png, JpegEncoder};
use fast_image_resize::Resizer;
use resize::Rgb;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;
use thumbfarm_shared::sizes::{self, Format, Geometry, Plan};
use thumbfarm_shared::Size;

/// Limits and encoder settings for rendering.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// JPEG quality for boxes above 150 px.
    pub jpeg_quality: u8,
    /// JPEG quality for boxes of 150 px and below.
    pub jpeg_quality_small: u8,
    /// Largest pixel count of an original (after decoding), e.g. 100 MP.
    pub max_pixels: u64,
    /// Largest original file in bytes.
    pub max_file_size: u64,
    /// Largest width or height of an original.
    pub max_dimension: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            jpeg_quality: 83,
            jpeg_quality_small: 78,
            max_pixels: 100_000_000,
            max_file_size: 512 * 1024 * 1024,
            max_dimension: 65_535,
        }
    }
}

impl RenderOptions {
    /// The JPEG quality for a size (the small quality for boxes ≤ 150 px).
    pub fn quality_for(&self, size: Size) -> u8 {
        if size.long_side() <= 150 {
            self.jpeg_quality_small
        } else {
            self.jpeg_quality
        }
    }
}

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

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Not an image format the pipeline decodes (RAW, video, PSD, ...).
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// Truncated, corrupt or hostile data.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Over the file size, dimension or pixel count limits.
    #[error("over the limits: {0}")]
    TooLarge(String),
    /// The encoder failed.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Reading the original failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl RenderError {
    /// Whether retrying cannot help (bad or hostile input).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, RenderError::Io(_))
    }
}

/// Runs `f`, turning a panic inside a decoder into a permanent error (a last
/// line of defence: hostile files must never take the worker down).
fn guarded<T>(f: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(RenderError::Decode(format!("decoder panicked: {msg}")))
        }
    }
}

/// Reads a file after checking its size against the limit.
fn read_limited(path: &Path, opts: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let meta = std::fs::metadata(path)?;
    limits::check_file_size(meta.len(), opts)?;
    Ok(std::fs::read(path)?)
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
    guarded(|| render_inner(data, sizes, opts))
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
        let h = decode::probe(data, opts)?;
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

/// One size to render: its geometry (in the oriented original's
/// coordinates) and the size it cascades from (`None`: the original).
struct Job {
    size: Size,
    geometry: Geometry,
    source: Option<Size>,
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn render_inner(
    data: &[u8],
    wanted: &[Size],
    opts: &RenderOptions,
) -> Result<RenderResult, RenderError> {
    let started = Instant::now();
    let header = decode::probe(data, opts)?;
    let o = header.orientation;
    let (w, h) = orient::oriented_dims(header.width, header.height, o);
    let set = sizes::render_set(wanted, w, h);
    let jobs: Vec<Job> = set
        .iter()
        .filter_map(|&size| match sizes::plan(size, w, h) {
            Plan::Render(geometry) => Some(Job {
                size,
                geometry,
                source: sizes::cascade_source(size, w, h, &set),
            }),
            _ => None,
        })
        .collect();

    // What the sizes rendered from the original need of it, in stored coordinates.
    let stored_dims = |g: &Geometry| {
        if orient::transposes(o) {
            (g.height, g.width)
        } else {
            (g.width, g.height)
        }
    };
    let needs: Vec<Need> = jobs
        .iter()
        .filter(|j| j.source.is_none())
        .map(|j| {
            let (width, height) = stored_dims(&j.geometry);
            Need {
                crop: orient::rect_to_stored(j.geometry.crop, o, header.width, header.height),
                width,
                height,
            }
        })
        .collect();

    let decoded = decode::decode(data, &header, &needs, opts)?;
    if (decoded.full_width, decoded.full_height) != (header.width, header.height) {
        return Err(RenderError::Decode(format!(
            "header says {}x{}, decoder gave {}x{}",
            header.width, header.height, decoded.full_width, decoded.full_height
        )));
    }
    let decode_millis = millis(started);
    let to_srgb = decoded.icc.as_deref().and_then(color::ToSrgb::for_rgb);

    let mut resizer = Resizer::new();
    let mut jpeg = JpegEncoder::new()?;
    let mut encode = |size: Size, img: &Rgb| -> Result<Vec<u8>, RenderError> {
        match size.format() {
            Format::Png => encode_png(&img.pixels, img.width, img.height),
            Format::Jpeg => jpeg.encode(&img.pixels, img.width, img.height, opts.quality_for(size)),
        }
    };
    let mut rendered: HashMap<Size, Rgb> = HashMap::new();
    let mut outputs = Vec::with_capacity(jobs.len());

    // Sizes rendered from the decoded original.
    for job in jobs.iter().filter(|j| j.source.is_none()) {
        let t = Instant::now();
        let (rw, rh) = stored_dims(&job.geometry);
        let crop = orient::rect_to_stored(job.geometry.crop, o, header.width, header.height)
            .scaled(
                (decoded.full_width, decoded.full_height),
                (decoded.width, decoded.height),
            );
        let small = resize::resize(
            &mut resizer,
            &decoded.pixels,
            decoded.width,
            decoded.height,
            crop,
            rw,
            rh,
        )?;
        let (mut pixels, ow, oh) = orient::apply(small.pixels, rw, rh, o);
        if let Some(t) = &to_srgb {
            t.apply(&mut pixels);
        }
        let img = Rgb {
            pixels,
            width: ow,
            height: oh,
        };
        let bytes = encode(job.size, &img)?;
        outputs.push(RenderedOutput {
            size: job.size,
            width: ow,
            height: oh,
            bytes,
            millis: millis(t),
        });
        rendered.insert(job.size, img);
    }
    drop(decoded);

    // Sizes rendered from results already in memory; sources before the
    // sizes that use them.
    let mut pending: Vec<&Job> = jobs.iter().filter(|j| j.source.is_some()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for job in pending {
            let Some(src) = job.source.and_then(|s| rendered.get(&s)) else {
                waiting.push(job);
                continue;
            };
            let t = Instant::now();
            let crop = job.geometry.crop.scaled((w, h), (src.width, src.height));
            let img = resize::resize(
                &mut resizer,
                &src.pixels,
                src.width,
                src.height,
                crop,
                job.geometry.width,
                job.geometry.height,
            )?;
            let bytes = encode(job.size, &img)?;
            outputs.push(RenderedOutput {
                size: job.size,
                width: img.width,
                height: img.height,
                bytes,
                millis: millis(t),
            });
            rendered.insert(job.size, img);
        }
        if waiting.len() == before {
            return Err(RenderError::Decode(
                "cascade has a size whose source is not rendered".into(),
            ));
        }
        pending = waiting;
    }
    outputs.sort_by_key(|out| out.size);

    Ok(RenderResult {
        width: w,
        height: h,
        media_type: header.format.media_type(),
        decode_millis,
        outputs,
    })
}
