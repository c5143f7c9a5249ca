//! Output formats: bytes at matched visual quality and encode cost of WebP
//! and AVIF against thumbfarm's JPEG (docs/benchmarks.md, "Output formats:
//! WebP and AVIF vs JPEG").
//!
//! ```text
//! cargo bench -p thumbfarm-worker --bench formats -- [PART...]
//! cargo bench -p thumbfarm-worker --bench formats -- dssim REF.png OUT...
//! ```
//!
//! Every corpus photo is decoded (the `image` crate, EXIF orientation
//! applied) and resized with `fast_image_resize` (Lanczos3, thumbfarm's
//! filter and geometry) straight from the original to reference images of
//! `fit_1280` (1280×1024 box), `tile_500` (500×500 centre crop) and
//! `fit_720`. The metric is DSSIM (`dssim-core` 3.x, lower is better) of the
//! decoded output against its reference. The target of a reference is the
//! DSSIM of thumbfarm's JPEG (`JpegEncoder`, libjpeg-turbo 4:2:0) at quality
//! 83, its default above 150 px. Every encoder is thumbfarm's own function
//! where thumbfarm has one (`JpegEncoder`, `encode_webp`, `encode_avif`),
//! so the numbers follow the code being measured.
//!
//! Parts (default `all`):
//! - `match`: per reference, the lowest WebP (`encode_webp`, method 4) and
//!   AVIF (`encode_avif` at thumbfarm's default speed, one thread) quality
//!   whose DSSIM is not worse than the JPEG's, its bytes and ratio to the
//!   JPEG's (also interpolated to exactly the JPEG's DSSIM); the single
//!   quality per format that matches the JPEG on average (the geometric mean
//!   of DSSIM / target is at most 1); bytes, DSSIM and encode time of every
//!   format at thumbfarm's current defaults and at those qualities;
//! - `speeds`: the same matching for WebP at other libwebp methods and for
//!   `encode_avif` at other speeds (`tile_500` and `fit_1280` only);
//! - `libavif`: the same matching through the `avifenc` CLI (libavif with
//!   aom or rav1e, one job, several speeds, 4:4:4 and 4:2:0) and rav1e 0.7
//!   in process (ravif, 8-bit 4:4:4), against `encode_avif`;
//! - `sets`: the pre-generated set (without `colors`, which has no WebP or
//!   AVIF) through `render_file` in JPEG only, WebP only and AVIF only.
//!
//! Times are medians of `FORMATS_RUNS` runs; "CPU ms" is the CPU time of
//! this process and its children around the call (robust to other load on
//! the machine), "wall ms" the elapsed time. Run with `RAYON_NUM_THREADS=1`
//! to keep DSSIM (and any rayon user) on one core.
//!
//! Environment:
//! - `THUMBFARM_CORPUS`: the corpus root (default `../shared/corpus` beside
//!   the workspace); a missing photo fails the bench, naming it;
//! - `FORMATS_PHOTOS`: comma-separated parts of photo names to keep;
//! - `FORMATS_SIZES`: comma-separated reference sizes (default
//!   `fit_1280,tile_500,fit_720`);
//! - `FORMATS_RUNS`: timing runs (default 3);
//! - `FORMATS_REFS_DIR`: write the reference PNGs there (default: a
//!   temporary folder, removed at the end);
//! - `FORMATS_WEBP_Q`, `FORMATS_AVIF_Q`: qualities for the timing tables and
//!   `sets` instead of the matched ones;
//! - `FORMATS_WEBP_METHODS`, `FORMATS_AVIF_SPEEDS`: libwebp methods and
//!   `encode_avif` speeds of `speeds` (default `0,2,6` and `6,7,9`;
//!   thumbfarm's own are always included);
//! - `FORMATS_LIBAVIF`: `avifenc` configurations `codec:speed:yuv`,
//!   comma-separated (default aom and rav1e at speeds 6 and 8, 444 and 420);
//! - `FORMATS_RAVIF_SPEEDS`: rav1e speeds of `libavif` (default `6,8,10`);
//! - `FORMATS_VERBOSE=1`: log every encode (quality, bytes, DSSIM) to stderr.

use dssim_core::{Dssim, DssimImage};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::ImageDecoder;
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;
use thumbfarm_shared::renditions::{OutputFormat, Rendition};
use thumbfarm_shared::sizes::{plan, Plan};
use thumbfarm_shared::{Size, SizeLimits};
use thumbfarm_worker::render::{
    encode_avif, encode_png, encode_webp, render_file, JpegEncoder, RenderOptions,
};

/// The corpus photos: full-size, intact camera and phone JPEGs.
const PHOTOS: [&str; 6] = [
    "photos/HMD_Nokia_8.3_5G.jpg",
    "photos/canon_hdr_NO.jpg",
    "photos/iphone_hdr_NO.jpg",
    "photos/jolla.jpg",
    "raw/PXL_20200710_061629144.MP.jpg",
    "raw/iphone6s_livephoto.jpg",
];
/// thumbfarm's JPEG quality for boxes above 150 px.
const JPEG_QUALITY: u8 = 83;
/// thumbfarm's libwebp method.
const WEBP_METHOD: u8 = 4;
/// thumbfarm's WebP encoder.
const WEBP: Encoder = Encoder::Webp {
    method: WEBP_METHOD,
};
/// thumbfarm's AVIF encoder at its default speed (one thread).
fn avif() -> Encoder {
    Encoder::Avif {
        speed: avif_speed(),
    }
}

/// thumbfarm's default AVIF speed.
fn avif_speed() -> u8 {
    RenderOptions::default().avif_speed
}

/// The sizes the speed and libavif comparisons use.
const AVIF_SIZES: [Size; 2] = [Size::Tile500, Size::Fit1280];

// ---------------------------------------------------------------------------
// Settings

/// Which parts run.
#[derive(Debug, Clone, Copy, Default)]
struct Parts {
    matching: bool,
    speeds: bool,
    libavif: bool,
    sets: bool,
}

impl Parts {
    /// The parts named on the command line (none named: all).
    fn parse(args: &[String]) -> Parts {
        let mut p = Parts::default();
        for a in args {
            match a.as_str() {
                "match" => p.matching = true,
                "speeds" => p.speeds = true,
                "libavif" => p.libavif = true,
                "sets" => p.sets = true,
                "all" => p = Parts::all(),
                other => panic!("unknown part {other:?} (match, speeds, libavif, sets, all)"),
            }
        }
        if args.is_empty() {
            p = Parts::all();
        }
        p
    }

    fn all() -> Parts {
        Parts {
            matching: true,
            speeds: true,
            libavif: true,
            sets: true,
        }
    }
}

/// Settings from the environment (see the module docs).
struct Config {
    corpus: PathBuf,
    photos: Vec<&'static str>,
    sizes: Vec<Size>,
    runs: usize,
    refs_dir: Option<PathBuf>,
    webp_q: Option<u8>,
    avif_q: Option<u8>,
    avif_speeds: Vec<u8>,
    webp_methods: Vec<u8>,
    ravif_speeds: Vec<u8>,
    libavif: Vec<Encoder>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether every encode is logged (`FORMATS_VERBOSE=1`).
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| env("FORMATS_VERBOSE").is_some_and(|v| v != "0"))
}

fn env_list(name: &str) -> Option<Vec<String>> {
    env(name).map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

fn parse_u8(name: &str, v: &str) -> u8 {
    v.parse()
        .unwrap_or_else(|e| panic!("{name}: {v:?} is not a number: {e}"))
}

impl Config {
    fn from_env() -> Config {
        let corpus = env("THUMBFARM_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            });
        let photos: Vec<&'static str> = match env_list("FORMATS_PHOTOS") {
            Some(wanted) => PHOTOS
                .into_iter()
                .filter(|p| wanted.iter().any(|w| p.contains(w.as_str())))
                .collect(),
            None => PHOTOS.to_vec(),
        };
        assert!(
            !photos.is_empty(),
            "FORMATS_PHOTOS matches no photo of {PHOTOS:?}"
        );
        let sizes = match env_list("FORMATS_SIZES") {
            Some(names) => names.iter().map(|n| ref_size(n)).collect(),
            None => vec![Size::Fit1280, Size::Tile500, Size::Fit720],
        };
        let libavif = env_list("FORMATS_LIBAVIF")
            .map(|l| l.iter().map(|c| Encoder::parse_avifenc(c)).collect())
            .unwrap_or_else(|| {
                let mut all = Vec::new();
                for aom in [true, false] {
                    for speed in [6, 8] {
                        for yuv420 in [false, true] {
                            all.push(Encoder::Avifenc { aom, speed, yuv420 });
                        }
                    }
                }
                all
            });
        Config {
            corpus,
            photos,
            sizes,
            runs: env("FORMATS_RUNS")
                .map_or(3, |v| usize::from(parse_u8("FORMATS_RUNS", &v)).max(1)),
            refs_dir: env("FORMATS_REFS_DIR").map(PathBuf::from),
            webp_q: env("FORMATS_WEBP_Q").map(|v| parse_u8("FORMATS_WEBP_Q", &v)),
            avif_q: env("FORMATS_AVIF_Q").map(|v| parse_u8("FORMATS_AVIF_Q", &v)),
            avif_speeds: env_list("FORMATS_AVIF_SPEEDS")
                .map(|l| {
                    l.iter()
                        .map(|s| parse_u8("FORMATS_AVIF_SPEEDS", s))
                        .collect()
                })
                .unwrap_or_else(|| vec![6, 7, 9]),
            ravif_speeds: env_list("FORMATS_RAVIF_SPEEDS")
                .map(|l| {
                    l.iter()
                        .map(|s| parse_u8("FORMATS_RAVIF_SPEEDS", s))
                        .collect()
                })
                .unwrap_or_else(|| vec![6, 8, 10]),
            webp_methods: env_list("FORMATS_WEBP_METHODS")
                .map(|l| {
                    l.iter()
                        .map(|s| parse_u8("FORMATS_WEBP_METHODS", s))
                        .collect()
                })
                .unwrap_or_else(|| vec![0, 2, 6]),
            libavif,
        }
    }

    /// The photo's path, which must exist.
    fn photo_path(&self, rel: &str) -> PathBuf {
        let path = self.corpus.join(rel);
        assert!(
            path.is_file(),
            "corpus photo {} is missing (set THUMBFARM_CORPUS?)",
            path.display()
        );
        path
    }
}

/// A reference size by name; only the three compared sizes.
fn ref_size(name: &str) -> Size {
    [Size::Fit1280, Size::Tile500, Size::Fit720]
        .into_iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("FORMATS_SIZES: {name:?} is not fit_1280, tile_500 or fit_720"))
}

// ---------------------------------------------------------------------------
// Measuring

/// Wall-clock and CPU time of one measured call.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall_ms: f64,
    cpu_ms: f64,
}

/// CPU time (user + system) of this process, all its threads, and its
/// waited-for children, in ms.
fn cpu_now_ms() -> f64 {
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: an all-zero rusage is valid, and getrusage only writes it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, exclusively borrowed rusage.
        let rc = unsafe { libc::getrusage(who, &mut ru) };
        assert_eq!(rc, 0, "getrusage failed");
        total += ms(ru.ru_utime) + ms(ru.ru_stime);
    }
    total
}

/// Runs `f`, returning its result and what it cost.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let (cpu, wall) = (cpu_now_ms(), Instant::now());
    let out = f();
    let cost = Cost {
        wall_ms: wall.elapsed().as_secs_f64() * 1e3,
        cpu_ms: cpu_now_ms() - cpu,
    };
    (out, cost)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn geomean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// The per-field median of several costs.
fn median_cost(costs: &[Cost]) -> Cost {
    Cost {
        wall_ms: median(&costs.iter().map(|c| c.wall_ms).collect::<Vec<_>>()),
        cpu_ms: median(&costs.iter().map(|c| c.cpu_ms).collect::<Vec<_>>()),
    }
}

// ---------------------------------------------------------------------------
// References and the metric

/// The one DSSIM context (default scales, as the `dssim` tool).
fn dssim() -> &'static Dssim {
    static DSSIM: OnceLock<Dssim> = OnceLock::new();
    DSSIM.get_or_init(Dssim::new)
}

/// Packed RGB8 pixels with their size.
struct Pixels {
    rgb: Vec<u8>,
    width: u32,
    height: u32,
}

impl Pixels {
    /// The image as DSSIM sees it (linear-light L*a*b* pyramid).
    fn to_dssim(&self) -> DssimImage<f32> {
        let px: Vec<ravif::RGB8> = self
            .rgb
            .chunks_exact(3)
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        dssim()
            .create_image_rgb(&px, self.width as usize, self.height as usize)
            .expect("DSSIM: image too small")
    }
}

/// A reference thumbnail: what every encoder is given and scored against.
struct Reference {
    photo: String,
    size: Size,
    pixels: Pixels,
    /// The reference written as PNG (input of `avifenc`).
    png: PathBuf,
    scored: DssimImage<f32>,
}

impl Reference {
    /// DSSIM of a decoded output against this reference (lower is better).
    fn score(&self, decoded: &Pixels) -> f64 {
        assert_eq!(
            (decoded.width, decoded.height),
            (self.pixels.width, self.pixels.height),
            "{} {}: decoded output has another size",
            self.photo,
            self.size
        );
        f64::from(dssim().compare(&self.scored, decoded.to_dssim()).0)
    }

    fn label(&self) -> String {
        format!("{} {}", self.photo, self.size)
    }
}

/// Decodes a corpus photo upright (EXIF orientation applied) to RGB8.
fn load_photo(path: &Path) -> image::RgbImage {
    let what = path.display();
    let mut decoder = image::ImageReader::open(path)
        .unwrap_or_else(|e| panic!("cannot open {what}: {e}"))
        .with_guessed_format()
        .unwrap_or_else(|e| panic!("cannot read {what}: {e}"))
        .into_decoder()
        .unwrap_or_else(|e| panic!("cannot decode {what}: {e}"));
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder)
        .unwrap_or_else(|e| panic!("cannot decode {what}: {e}"));
    img.apply_orientation(orientation);
    img.into_rgb8()
}

/// Resizes an upright photo to `size` with thumbfarm's geometry (crop and
/// output dimensions) and filter (Lanczos3), from the full original.
fn resize_to(resizer: &mut Resizer, photo: &image::RgbImage, size: Size) -> Pixels {
    let (w, h) = photo.dimensions();
    let Plan::Render(g) = plan(size, w, h) else {
        panic!("{size} is not rendered for a {w}×{h} photo");
    };
    let src = ImageRef::new(w, h, photo.as_raw(), PixelType::U8x3).expect("source view");
    let mut dst = Image::new(g.width, g.height, PixelType::U8x3);
    let c = g.crop;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(c.x, c.y, c.width, c.height);
    resizer.resize(&src, &mut dst, &options).expect("resize");
    Pixels {
        rgb: dst.into_vec(),
        width: g.width,
        height: g.height,
    }
}

/// The references of every configured photo and size, written as PNG into
/// `dir`.
fn build_references(cfg: &Config, dir: &Path) -> Vec<Reference> {
    let mut resizer = Resizer::new();
    let mut refs = Vec::new();
    for rel in &cfg.photos {
        let path = cfg.photo_path(rel);
        let name = path
            .file_name()
            .expect("photo file name")
            .to_string_lossy()
            .into_owned();
        eprintln!("decoding {name}");
        let photo = load_photo(&path);
        for &size in &cfg.sizes {
            let pixels = resize_to(&mut resizer, &photo, size);
            let png = dir.join(format!("{name}.{size}.png"));
            let bytes =
                encode_png(&pixels.rgb, pixels.width, pixels.height).expect("reference PNG");
            std::fs::write(&png, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", png.display()));
            refs.push(Reference {
                photo: name.clone(),
                size,
                scored: pixels.to_dssim(),
                pixels,
                png,
            });
        }
    }
    refs
}

// ---------------------------------------------------------------------------
// Encoders

/// One encoder setting. Every encoder takes a quality where higher is
/// better: `avifenc`'s is 63 minus its quantizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Encoder {
    /// thumbfarm's JPEG (libjpeg-turbo, progressive 4:2:0).
    Jpeg,
    /// thumbfarm's WebP (libwebp lossy) at a `method` (thumbfarm: 4).
    Webp { method: u8 },
    /// thumbfarm's AVIF (`encode_avif`: libheif + libaom, 4:2:0, at the time
    /// of writing), one thread.
    Avif { speed: u8 },
    /// rav1e 0.7 in process through ravif, 8-bit 4:4:4, one thread (what
    /// thumbfarm's `encode_avif` used before libaom).
    Ravif { speed: u8 },
    /// The `avifenc` CLI (libavif) with aom or rav1e, one job.
    Avifenc { aom: bool, speed: u8, yuv420: bool },
}

impl fmt::Display for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Encoder::Jpeg => write!(f, "JPEG"),
            Encoder::Webp { method } => write!(f, "WebP m{method}"),
            Encoder::Avif { speed } => write!(f, "thumbfarm encode_avif s{speed}"),
            Encoder::Ravif { speed } => write!(f, "ravif (rav1e 0.7) s{speed} 4:4:4"),
            Encoder::Avifenc { aom, speed, yuv420 } => write!(
                f,
                "avifenc {} s{speed} {}",
                if aom { "aom 3.6" } else { "rav1e 0.5" },
                if yuv420 { "4:2:0" } else { "4:4:4" }
            ),
        }
    }
}

impl Encoder {
    /// `codec:speed:yuv`, as in `FORMATS_LIBAVIF` (`aom:6:420`).
    fn parse_avifenc(s: &str) -> Encoder {
        fn bad(s: &str) -> ! {
            panic!("FORMATS_LIBAVIF: {s:?} is not codec:speed:yuv (aom:6:420)")
        }
        let parts: Vec<&str> = s.split(':').collect();
        let [codec, speed, yuv] = parts.as_slice() else {
            bad(s)
        };
        let aom = match *codec {
            "aom" => true,
            "rav1e" => false,
            _ => bad(s),
        };
        let yuv420 = match *yuv {
            "444" => false,
            "420" => true,
            _ => bad(s),
        };
        Encoder::Avifenc {
            aom,
            speed: parse_u8("FORMATS_LIBAVIF", speed),
            yuv420,
        }
    }

    /// The quality range searched.
    fn qualities(self) -> (u8, u8) {
        match self {
            Encoder::Avifenc { .. } => (0, 63),
            _ => (1, 100),
        }
    }

    /// Encodes `r` at quality `q`: the file and the cost of the encode alone.
    fn encode(self, r: &Reference, q: u8, scratch: &Path) -> (Vec<u8>, Cost) {
        let Pixels { rgb, width, height } = &r.pixels;
        let (w, h) = (*width, *height);
        let what = || format!("{self} q{q} of {}", r.label());
        match self {
            Encoder::Jpeg => {
                let mut jpeg = JpegEncoder::new().expect("JPEG encoder");
                let (out, cost) = measure(|| jpeg.encode(rgb, w, h, q));
                (out.unwrap_or_else(|e| panic!("{}: {e}", what())), cost)
            }
            Encoder::Webp { method } => {
                let (out, cost) = measure(|| encode_webp(rgb, w, h, q, method));
                (out.unwrap_or_else(|e| panic!("{}: {e}", what())), cost)
            }
            Encoder::Avif { speed } => {
                let (out, cost) = measure(|| encode_avif(rgb, w, h, q, speed, Some(1)));
                (out.unwrap_or_else(|e| panic!("{}: {e}", what())), cost)
            }
            Encoder::Ravif { speed } => {
                let (out, cost) = measure(|| encode_ravif(rgb, w, h, q, speed));
                (out.unwrap_or_else(|e| panic!("{}: {e}", what())), cost)
            }
            Encoder::Avifenc { aom, speed, yuv420 } => {
                let out = scratch.join("avifenc.avif");
                let quantizer = (63 - q.min(63)).to_string();
                let mut cmd = Command::new("avifenc");
                cmd.args([
                    "-j",
                    "1",
                    "-d",
                    "8",
                    "-c",
                    if aom { "aom" } else { "rav1e" },
                ])
                .args(["-s", &speed.to_string()])
                .args(["-y", if yuv420 { "420" } else { "444" }])
                .args(["--min", &quantizer, "--max", &quantizer])
                .arg(&r.png)
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
                let (result, cost) = measure(|| cmd.output());
                let result = result.expect("cannot run avifenc (is libavif's CLI installed?)");
                assert!(
                    result.status.success(),
                    "{}: avifenc failed: {}",
                    what(),
                    String::from_utf8_lossy(&result.stderr)
                );
                let bytes = std::fs::read(&out).expect("avifenc output");
                (bytes, cost)
            }
        }
    }
}

/// Encodes packed RGB8 as AVIF with rav1e 0.7 through ravif: 8-bit 4:4:4,
/// one thread (the settings of thumbfarm's first AVIF encoder).
fn encode_ravif(rgb: &[u8], w: u32, h: u32, q: u8, speed: u8) -> Result<Vec<u8>, ravif::Error> {
    let pixels: Vec<ravif::RGB8> = rgb
        .chunks_exact(3)
        .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
        .collect();
    let img = ravif::Img::new(pixels.as_slice(), w as usize, h as usize);
    let encoded = ravif::Encoder::new()
        .with_quality(f32::from(q.clamp(1, 100)))
        .with_speed(speed.clamp(1, 10))
        .with_bit_depth(ravif::BitDepth::Eight)
        .with_num_threads(Some(1))
        .encode_rgb(img)?;
    Ok(encoded.avif_file)
}

/// Decodes a JPEG, WebP, AVIF or PNG file to RGB8 (JPEG with libjpeg-turbo,
/// WebP with libwebp, AVIF with libheif + dav1d, PNG with the `image` crate).
fn decode(bytes: &[u8]) -> Pixels {
    match bytes {
        [0xFF, 0xD8, ..] => {
            let img =
                turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB).expect("JPEG decode");
            assert_eq!(img.pitch, img.width * 3);
            Pixels {
                rgb: img.pixels,
                width: img.width as u32,
                height: img.height as u32,
            }
        }
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
            let img = webp::Decoder::new(bytes).decode().expect("WebP decode");
            assert!(!img.is_alpha(), "WebP output has alpha");
            Pixels {
                rgb: img.to_vec(),
                width: img.width(),
                height: img.height(),
            }
        }
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => decode_avif(bytes),
        _ => {
            let img = image::load_from_memory(bytes).expect("image decode");
            let img = img.into_rgb8();
            Pixels {
                width: img.width(),
                height: img.height(),
                rgb: img.into_raw(),
            }
        }
    }
}

/// Decodes an AVIF with libheif (dav1d; bilinear chroma upsampling).
fn decode_avif(bytes: &[u8]) -> Pixels {
    let ctx = HeifContext::read_from_bytes(bytes).expect("AVIF: not readable by libheif");
    let handle = ctx.primary_image_handle().expect("AVIF: no primary image");
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .expect("AVIF decode");
    let planes = image.planes();
    let plane = planes.interleaved.expect("AVIF: no interleaved RGB plane");
    let row = plane.width as usize * 3;
    let mut rgb = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        rgb.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + row]);
    }
    Pixels {
        rgb,
        width: plane.width,
        height: plane.height,
    }
}

// ---------------------------------------------------------------------------
// Matching

/// One encode of one reference.
#[derive(Debug, Clone, Copy)]
struct Point {
    bytes: usize,
    dssim: f64,
    cost: Cost,
}

/// Encodes, decodes and scores references, each (reference, encoder,
/// quality) once.
struct Lab<'a> {
    refs: &'a [Reference],
    scratch: &'a Path,
    points: HashMap<(usize, Encoder, u8), Point>,
    timings: HashMap<(usize, Encoder, u8), Cost>,
}

impl<'a> Lab<'a> {
    fn new(refs: &'a [Reference], scratch: &'a Path) -> Self {
        Lab {
            refs,
            scratch,
            points: HashMap::new(),
            timings: HashMap::new(),
        }
    }

    /// Encoder `e` at quality `q` on reference `i`.
    fn point(&mut self, i: usize, e: Encoder, q: u8) -> Point {
        if let Some(p) = self.points.get(&(i, e, q)) {
            return *p;
        }
        let r = &self.refs[i];
        let (bytes, cost) = e.encode(r, q, self.scratch);
        let dssim = r.score(&decode(&bytes));
        let p = Point {
            bytes: bytes.len(),
            dssim,
            cost,
        };
        if verbose() {
            eprintln!(
                "  {} | {e} q{q}: {} bytes, DSSIM {:.6}, {:.1} CPU ms, {:.1} wall ms",
                r.label(),
                p.bytes,
                p.dssim,
                p.cost.cpu_ms,
                p.cost.wall_ms
            );
        }
        self.points.insert((i, e, q), p);
        p
    }

    /// The median cost of `runs` encodes (the cached one counts as one).
    fn timed(&mut self, i: usize, e: Encoder, q: u8, runs: usize) -> Cost {
        if let Some(c) = self.timings.get(&(i, e, q)) {
            return *c;
        }
        let mut costs = vec![self.point(i, e, q).cost];
        for _ in 1..runs {
            costs.push(e.encode(&self.refs[i], q, self.scratch).1);
        }
        let cost = median_cost(&costs);
        self.timings.insert((i, e, q), cost);
        cost
    }

    /// The JPEG at thumbfarm's quality: the target of reference `i`.
    fn target(&mut self, i: usize) -> Point {
        self.point(i, Encoder::Jpeg, JPEG_QUALITY)
    }

    /// The lowest quality of `e` whose DSSIM on reference `i` is not worse
    /// than the JPEG's (binary search; assumes DSSIM falls as quality rises,
    /// and returns a quality that passes where the next lower one fails);
    /// `None` when even the highest quality is worse.
    fn lowest_matching(&mut self, i: usize, e: Encoder) -> Option<u8> {
        let target = self.target(i).dssim;
        lowest_passing(e.qualities(), |q| self.point(i, e, q).dssim <= target)
    }

    /// The single quality of `e` that matches the JPEG on references `idx`
    /// on average: the lowest whose geometric mean of DSSIM / target is at
    /// most 1.
    fn common_quality(&mut self, idx: &[usize], e: Encoder) -> Option<u8> {
        lowest_passing(e.qualities(), |q| {
            let ratios: Vec<f64> = idx
                .iter()
                .map(|&i| self.point(i, e, q).dssim / self.target(i).dssim)
                .collect();
            geomean(&ratios) <= 1.0
        })
    }
}

/// The lowest `q` in `lo..=hi` that passes, by bisection.
fn lowest_passing((lo, hi): (u8, u8), mut passes: impl FnMut(u8) -> bool) -> Option<u8> {
    if !passes(hi) {
        return None;
    }
    if passes(lo) {
        return Some(lo);
    }
    let (mut fail, mut pass) = (lo, hi);
    while pass - fail > 1 {
        let mid = fail + (pass - fail) / 2;
        if passes(mid) {
            pass = mid;
        } else {
            fail = mid;
        }
    }
    Some(pass)
}

/// One encoder's matches over several references (`None`: no quality
/// reached the JPEG's score).
type Matches = Vec<Option<Matched>>;

/// One encoder matched to the JPEG on one reference.
#[derive(Debug, Clone, Copy)]
struct Matched {
    /// q*: the lowest quality not worse than the JPEG.
    quality: u8,
    point: Point,
    /// Bytes at q* / the JPEG's bytes.
    ratio: f64,
    /// Bytes at exactly the JPEG's DSSIM / the JPEG's bytes: interpolated
    /// between q* and the quality below it (which is worse than the JPEG),
    /// log bytes over log DSSIM. Takes out the quality steps' granularity.
    equal_ratio: f64,
}

fn matched(lab: &mut Lab, i: usize, e: Encoder) -> Option<Matched> {
    let quality = lab.lowest_matching(i, e)?;
    let point = lab.point(i, e, quality);
    let target = lab.target(i);
    let equal_bytes = if quality > e.qualities().0 {
        bytes_at(lab.point(i, e, quality - 1), point, target.dssim)
    } else {
        point.bytes as f64
    };
    Some(Matched {
        quality,
        point,
        ratio: point.bytes as f64 / target.bytes as f64,
        equal_ratio: equal_bytes / target.bytes as f64,
    })
}

/// The bytes at `dssim` between a point worse than it (`below`) and one
/// not worse (`above`), interpolated linearly in log bytes over log DSSIM.
fn bytes_at(below: Point, above: Point, dssim: f64) -> f64 {
    let (d0, d1, d) = (below.dssim.ln(), above.dssim.ln(), dssim.ln());
    let t = if d0 > d1 {
        ((d0 - d) / (d0 - d1)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let (b0, b1) = ((below.bytes as f64).ln(), (above.bytes as f64).ln());
    (b0 + t * (b1 - b0)).exp()
}

fn show_match(m: Option<Matched>) -> String {
    match m {
        Some(m) => format!(
            "{} | {} | {:.2} | {:.2}",
            m.quality, m.point.bytes, m.ratio, m.equal_ratio
        ),
        None => "none | – | – | –".into(),
    }
}

/// Mean, median, geometric mean, min and max of the ratios of `ms`
/// (`equal`: the interpolated ones).
fn ratio_summary(ms: &[Option<Matched>], equal: bool) -> String {
    let r: Vec<f64> = ms
        .iter()
        .flatten()
        .map(|m| if equal { m.equal_ratio } else { m.ratio })
        .collect();
    let missing = ms.len() - r.len();
    if r.is_empty() {
        return "no match | | |".into();
    }
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(0.0, f64::max);
    let mut s = format!(
        "{:.3} | {:.3} | {:.3} | {lo:.2}–{hi:.2}",
        mean(&r),
        median(&r),
        geomean(&r)
    );
    if missing > 0 {
        s += &format!(" ({missing} without a match)");
    }
    s
}

/// A row of the summary table: the ratios of `ms` at q* and interpolated.
fn summary_row(size: &str, format: &str, ms: &[Option<Matched>]) {
    println!(
        "| {size} | {format} | {} | {} | {} |",
        median_quality(ms),
        ratio_summary(ms, false),
        ratio_summary(ms, true)
    );
}

fn median_quality(ms: &[Option<Matched>]) -> String {
    let q: Vec<f64> = ms.iter().flatten().map(|m| f64::from(m.quality)).collect();
    if q.is_empty() {
        "–".into()
    } else {
        format!("{}", median(&q))
    }
}

// ---------------------------------------------------------------------------
// Part `match`

/// The qualities the timing tables and `sets` use.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    webp: u8,
    avif: u8,
}

/// Per reference: JPEG bytes and DSSIM, WebP and AVIF at matched DSSIM;
/// then the common qualities and every format at them.
fn part_match(lab: &mut Lab, cfg: &Config) -> Chosen {
    let avif = avif();
    println!("\n### Bytes at the JPEG's DSSIM (per reference)\n");
    println!(
        "| photo | size | pixels | JPEG q{JPEG_QUALITY} bytes | JPEG DSSIM | WebP q* | WebP bytes | ×JPEG | ×JPEG at equal DSSIM | AVIF q* | AVIF bytes | ×JPEG | ×JPEG at equal DSSIM |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let n = lab.refs.len();
    let mut by_size: HashMap<Size, (Matches, Matches)> = HashMap::new();
    for i in 0..n {
        let target = lab.target(i);
        let w = matched(lab, i, WEBP);
        let a = matched(lab, i, avif);
        let r = &lab.refs[i];
        println!(
            "| {} | {} | {}×{} | {} | {:.6} | {} | {} |",
            r.photo,
            r.size,
            r.pixels.width,
            r.pixels.height,
            target.bytes,
            target.dssim,
            show_match(w),
            show_match(a)
        );
        let entry = by_size.entry(r.size).or_default();
        entry.0.push(w);
        entry.1.push(a);
    }
    println!("\nBytes / the JPEG's: at q* (the lowest quality not worse than the JPEG's DSSIM), and at exactly the JPEG's DSSIM (interpolated between q* and q*−1):\n");
    println!("| size | format | median q* | at q*: mean | median | geomean | range | at equal DSSIM: mean | median | geomean | range |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let (mut all_w, mut all_a) = (Vec::new(), Vec::new());
    for &size in &cfg.sizes {
        let Some((w, a)) = by_size.get(&size) else {
            continue;
        };
        summary_row(&size.to_string(), "WebP", w);
        summary_row(&size.to_string(), "AVIF", a);
        all_w.extend_from_slice(w);
        all_a.extend_from_slice(a);
    }
    summary_row("**all**", "**WebP**", &all_w);
    summary_row("**all**", "**AVIF**", &all_a);

    let idx: Vec<usize> = (0..n).collect();
    let webp_common = lab.common_quality(&idx, WEBP);
    let avif_common = lab.common_quality(&idx, avif);
    println!(
        "\nSingle quality matching the JPEG's DSSIM on average (geometric mean of DSSIM/target ≤ 1): WebP q{}, AVIF q{}",
        webp_common.map_or("–".into(), |q| q.to_string()),
        avif_common.map_or("–".into(), |q| q.to_string())
    );
    let chosen = Chosen {
        webp: cfg
            .webp_q
            .or(webp_common)
            .unwrap_or(RenderOptions::default().webp_quality),
        avif: cfg
            .avif_q
            .or(avif_common)
            .unwrap_or(RenderOptions::default().avif_quality),
    };
    // For scripts.
    println!(
        "\nrecommended: webp_quality={} avif_quality={}",
        webp_common.map_or("none".into(), |q| q.to_string()),
        avif_common.map_or("none".into(), |q| q.to_string())
    );
    let current = RenderOptions::default();
    at_defaults(
        lab,
        cfg,
        "thumbfarm's current defaults",
        Chosen {
            webp: current.webp_quality,
            avif: current.avif_quality,
        },
    );
    at_defaults(lab, cfg, "the matched qualities", chosen);
    chosen
}

/// Every format at one quality each: bytes, DSSIM and encode time.
fn at_defaults(lab: &mut Lab, cfg: &Config, what: &str, chosen: Chosen) {
    let webp = (WEBP, chosen.webp);
    let avif = (avif(), chosen.avif);
    println!(
        "\n### At {what}: JPEG q{JPEG_QUALITY}, WebP q{} m{WEBP_METHOD}, AVIF q{} s{} (encode CPU ms, median of {}, one thread)\n",
        chosen.webp, chosen.avif, avif_speed(), cfg.runs
    );
    println!("| photo | size | JPEG bytes | JPEG ms | WebP bytes | ×JPEG | DSSIM ×JPEG | WebP ms | AVIF bytes | ×JPEG | DSSIM ×JPEG | AVIF ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<(Size, [f64; 9])> = Vec::new();
    for i in 0..lab.refs.len() {
        let j = lab.target(i);
        let j_ms = lab.timed(i, Encoder::Jpeg, JPEG_QUALITY, cfg.runs).cpu_ms;
        let mut cells = vec![j.bytes.to_string(), format!("{j_ms:.1}")];
        let mut nums = vec![j.bytes as f64, j_ms];
        for (e, q) in [webp, avif] {
            let p = lab.point(i, e, q);
            let ms = lab.timed(i, e, q, cfg.runs).cpu_ms;
            let (br, dr) = (p.bytes as f64 / j.bytes as f64, p.dssim / j.dssim);
            cells.extend([
                p.bytes.to_string(),
                format!("{br:.2}"),
                format!("{dr:.2}"),
                format!("{ms:.1}"),
            ]);
            nums.extend([p.bytes as f64, dr, ms]);
        }
        let r = &lab.refs[i];
        println!("| {} | {} | {} |", r.photo, r.size, cells.join(" | "));
        let mut arr = [0.0; 9];
        arr[..nums.len()].copy_from_slice(&nums);
        rows.push((r.size, arr));
    }
    println!("\nTotals (sum of bytes and of encode ms; DSSIM ratio as geometric mean):\n");
    println!("| size | JPEG bytes | JPEG ms | WebP bytes ×JPEG | WebP DSSIM ×JPEG | WebP ms ×JPEG | AVIF bytes ×JPEG | AVIF DSSIM ×JPEG | AVIF ms ×JPEG |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut groups: Vec<(String, Vec<[f64; 9]>)> = cfg
        .sizes
        .iter()
        .map(|s| {
            let v = rows
                .iter()
                .filter(|(z, _)| z == s)
                .map(|(_, a)| *a)
                .collect();
            (s.to_string(), v)
        })
        .collect();
    groups.push(("**all**".into(), rows.iter().map(|(_, a)| *a).collect()));
    for (name, v) in groups.iter().filter(|(_, v)| !v.is_empty()) {
        let sum = |k: usize| v.iter().map(|a| a[k]).sum::<f64>();
        let gm = |k: usize| geomean(&v.iter().map(|a| a[k]).collect::<Vec<_>>());
        println!(
            "| {name} | {:.0} | {:.1} | {:.3} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} |",
            sum(0),
            sum(1),
            sum(2) / sum(0),
            gm(3),
            sum(4) / sum(1),
            sum(5) / sum(0),
            gm(6),
            sum(7) / sum(1)
        );
    }
}

// ---------------------------------------------------------------------------
// Parts `speeds` and `libavif`

/// The references of the AVIF comparisons (`tile_500`, `fit_1280`).
fn avif_refs(lab: &Lab) -> Vec<usize> {
    (0..lab.refs.len())
        .filter(|&i| AVIF_SIZES.contains(&lab.refs[i].size))
        .collect()
}

/// Encoders matched to the JPEG on `tile_500` and `fit_1280`: per size, the
/// median q*, bytes at q* against the JPEG's (summed over the photos), and
/// the encode time at q* (mean per image of the median of the runs), with
/// the JPEG's own encode time as the first row.
fn compare_encoders(lab: &mut Lab, cfg: &Config, title: &str, encoders: &[Encoder]) {
    let idx = avif_refs(lab);
    if idx.is_empty() {
        println!("\n({title}: no tile_500 or fit_1280 reference configured)");
        return;
    }
    println!("\n### {title}\n");
    println!(
        "Bytes at the JPEG's DSSIM per reference, summed over the photos; encode time at that quality (median of {} runs per image, one thread), mean per image.\n",
        cfg.runs
    );
    println!("| encoder | size | median q* | bytes ×JPEG at q* | at equal DSSIM | CPU ms / image | ×JPEG | wall ms / image | matched |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in AVIF_SIZES {
        let of_size: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| lab.refs[i].size == size)
            .collect();
        if of_size.is_empty() {
            continue;
        }
        let jpeg: Vec<Cost> = of_size
            .iter()
            .map(|&i| lab.timed(i, Encoder::Jpeg, JPEG_QUALITY, cfg.runs))
            .collect();
        let jpeg_cpu = mean(&jpeg.iter().map(|c| c.cpu_ms).collect::<Vec<_>>());
        println!(
            "| JPEG (libjpeg-turbo) | {size} | q{JPEG_QUALITY} | 1 | 1 | {jpeg_cpu:.1} | 1 | {:.1} | |",
            mean(&jpeg.iter().map(|c| c.wall_ms).collect::<Vec<_>>())
        );
        for &e in encoders {
            eprintln!("{e} {size}");
            let (mut q, mut bytes, mut equal_bytes, mut jpeg_bytes, mut costs) =
                (vec![], 0, 0.0, 0, vec![]);
            for &i in &of_size {
                let Some(m) = matched(lab, i, e) else {
                    continue;
                };
                q.push(f64::from(m.quality));
                bytes += m.point.bytes;
                let jpeg = lab.target(i).bytes;
                equal_bytes += m.equal_ratio * jpeg as f64;
                jpeg_bytes += jpeg;
                costs.push(lab.timed(i, e, m.quality, cfg.runs));
            }
            if q.is_empty() {
                println!("| {e} | {size} | none | | | | | | 0/{} |", of_size.len());
                continue;
            }
            let shown_q = match e {
                Encoder::Avifenc { .. } => format!("quantizer {}", 63.0 - median(&q)),
                _ => format!("q{}", median(&q)),
            };
            let cpu = mean(&costs.iter().map(|c| c.cpu_ms).collect::<Vec<_>>());
            println!(
                "| {e} | {size} | {shown_q} | {:.3} | {:.3} | {cpu:.1} | {:.1} | {:.1} | {}/{} |",
                bytes as f64 / jpeg_bytes as f64,
                equal_bytes / jpeg_bytes as f64,
                cpu / jpeg_cpu,
                mean(&costs.iter().map(|c| c.wall_ms).collect::<Vec<_>>()),
                q.len(),
                of_size.len()
            );
        }
    }
}

/// The values of `extra` and `default`, sorted, without repeats.
fn with_default(extra: &[u8], default: u8) -> Vec<u8> {
    let mut v = extra.to_vec();
    v.push(default);
    v.sort_unstable();
    v.dedup();
    v
}

fn part_speeds(lab: &mut Lab, cfg: &Config) {
    let mut encoders: Vec<Encoder> = with_default(&cfg.webp_methods, WEBP_METHOD)
        .into_iter()
        .map(|method| Encoder::Webp { method })
        .collect();
    encoders.extend(
        with_default(&cfg.avif_speeds, avif_speed())
            .into_iter()
            .map(|speed| Encoder::Avif { speed }),
    );
    compare_encoders(
        lab,
        cfg,
        "WebP methods and thumbfarm AVIF speeds at the JPEG's DSSIM",
        &encoders,
    );
}

fn part_libavif(lab: &mut Lab, cfg: &Config) {
    let mut encoders = cfg.libavif.clone();
    encoders.extend(
        cfg.ravif_speeds
            .iter()
            .map(|&speed| Encoder::Ravif { speed }),
    );
    encoders.push(avif());
    compare_encoders(
        lab,
        cfg,
        "AVIF encoders: libavif (avifenc) vs in-process rav1e and thumbfarm's encode_avif at the JPEG's DSSIM",
        &encoders,
    );
}

// ---------------------------------------------------------------------------
// Part `sets`

/// One `render_file` of a set: the outputs' resize+encode ms, per size too.
struct SetRun {
    /// Sum of the outputs' `millis` (resize + encode, wall).
    millis: f64,
    /// CPU time of the whole call (decode included).
    cpu_ms: f64,
    decode_ms: f64,
    bytes: usize,
    per_size: HashMap<Size, f64>,
}

fn render_set(path: &Path, format: OutputFormat, opts: &RenderOptions) -> SetRun {
    let renditions: Vec<Rendition> = SizeLimits::default()
        .pregenerated()
        .into_iter()
        .filter(|s| *s != Size::Colors)
        .filter_map(|s| Rendition::new(s, format))
        .collect();
    let (result, cost) = measure(|| render_file(path, &renditions, opts));
    let result = result.unwrap_or_else(|e| panic!("render {}: {e}", path.display()));
    SetRun {
        millis: result.outputs.iter().map(|o| o.millis).sum(),
        cpu_ms: cost.cpu_ms,
        decode_ms: result.decode_millis,
        bytes: result.outputs.iter().map(|o| o.bytes.len()).sum(),
        per_size: result.outputs.iter().map(|o| (o.size, o.millis)).collect(),
    }
}

/// The pre-generated set (no `colors`) per photo in each format.
fn part_sets(cfg: &Config, chosen: Chosen) {
    let opts = RenderOptions {
        webp_quality: chosen.webp,
        avif_quality: chosen.avif,
        ..RenderOptions::default()
    };
    let threads = env("RAYON_NUM_THREADS").unwrap_or_else(|| "unset (all cores)".into());
    println!(
        "\n### Pre-generated set through render_file (JPEG q{}/{}, WebP q{} m{}, AVIF q{} s{}; RAYON_NUM_THREADS {threads}; median of {} runs)\n",
        opts.jpeg_quality, opts.jpeg_quality_small, opts.webp_quality, opts.webp_method,
        opts.avif_quality, opts.avif_speed, cfg.runs
    );
    println!("Set = fit_1920, fit_1280, tile_500, fit_720, tile_224, tile_100, tile_50 (colors has no WebP/AVIF). \"ms\" = sum of the outputs' resize+encode `millis` (wall); \"job CPU ms\" = CPU time of the whole render_file (decode included).\n");
    println!("| photo | decode ms | JPEG ms | WebP ms | WebP ×JPEG | AVIF ms | AVIF ×JPEG | JPEG job CPU ms | WebP job CPU ms | ×JPEG | AVIF job CPU ms | JPEG KB | WebP KB | AVIF KB | AVIF tile_500 ms | AVIF fit_1280 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let formats = [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif];
    let mut totals = [0.0f64; 6];
    let mut size_ms: HashMap<(OutputFormat, Size), Vec<f64>> = HashMap::new();
    for rel in &cfg.photos {
        let path = cfg.photo_path(rel);
        eprintln!("sets: {rel}");
        let mut runs: HashMap<OutputFormat, Vec<SetRun>> = HashMap::new();
        for _ in 0..cfg.runs {
            for f in formats {
                runs.entry(f).or_default().push(render_set(&path, f, &opts));
            }
        }
        let med = |f: OutputFormat, get: &dyn Fn(&SetRun) -> f64| {
            median(&runs[&f].iter().map(get).collect::<Vec<_>>())
        };
        let ms: Vec<f64> = formats.iter().map(|&f| med(f, &|r| r.millis)).collect();
        let cpu: Vec<f64> = formats.iter().map(|&f| med(f, &|r| r.cpu_ms)).collect();
        let kb: Vec<f64> = formats
            .iter()
            .map(|&f| runs[&f][0].bytes as f64 / 1000.0)
            .collect();
        let decode = med(OutputFormat::Jpeg, &|r| r.decode_ms);
        for &f in &formats {
            for size in runs[&f][0].per_size.keys() {
                let m = med(f, &|r| r.per_size.get(size).copied().unwrap_or(f64::NAN));
                size_ms.entry((f, *size)).or_default().push(m);
            }
        }
        let avif_at = |s: Size| {
            med(OutputFormat::Avif, &|r| {
                r.per_size.get(&s).copied().unwrap_or(f64::NAN)
            })
        };
        println!(
            "| {} | {decode:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            Path::new(rel).file_name().expect("name").to_string_lossy(),
            ms[0], ms[1], ms[1] / ms[0], ms[2], ms[2] / ms[0],
            cpu[0], cpu[1], cpu[1] / cpu[0], cpu[2],
            kb[0], kb[1], kb[2],
            avif_at(Size::Tile500), avif_at(Size::Fit1280)
        );
        for (k, v) in ms.iter().chain(&cpu).enumerate() {
            totals[k] += v;
        }
    }
    println!(
        "| **all** | | {:.1} | {:.1} | **{:.2}** | {:.1} | **{:.2}** | {:.1} | {:.1} | **{:.2}** | {:.1} | | | | | |",
        totals[0], totals[1], totals[1] / totals[0], totals[2], totals[2] / totals[0],
        totals[3], totals[4], totals[4] / totals[3], totals[5]
    );
    println!("\nPer size, mean over the photos of the median resize+encode ms:\n");
    println!("| size | JPEG ms | WebP ms | AVIF ms |");
    println!("|---|---|---|---|");
    for size in SizeLimits::default().pregenerated() {
        let cell = |f| {
            size_ms
                .get(&(f, size))
                .map_or("–".into(), |v| format!("{:.1}", mean(v)))
        };
        if size_ms.contains_key(&(OutputFormat::Jpeg, size)) {
            println!(
                "| {size} | {} | {} | {} |",
                cell(OutputFormat::Jpeg),
                cell(OutputFormat::Webp),
                cell(OutputFormat::Avif)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Entry points

/// `formats dssim REF OUT...`: the DSSIM of each OUT (JPEG, WebP, AVIF or
/// PNG) against REF.
fn dssim_cli(args: &[String]) {
    let [reference, outputs @ ..] = args else {
        panic!("usage: formats dssim REF.png OUT...");
    };
    assert!(!outputs.is_empty(), "usage: formats dssim REF.png OUT...");
    let read = |p: &String| std::fs::read(p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"));
    let r = decode(&read(reference));
    let scored = r.to_dssim();
    for out in outputs {
        let d = decode(&read(out));
        assert_eq!(
            (d.width, d.height),
            (r.width, r.height),
            "{out}: size differs from {reference}"
        );
        let v = f64::from(dssim().compare(&scored, d.to_dssim()).0);
        println!("{v:.8}\t{out}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; options are environment variables.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("dssim") {
        dssim_cli(&args[1..]);
        return;
    }
    let parts = Parts::parse(&args);
    let cfg = Config::from_env();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let refs_dir = cfg
        .refs_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&refs_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", refs_dir.display()));
    for rel in &cfg.photos {
        cfg.photo_path(rel); // fail early, naming a missing photo
    }
    println!(
        "## formats bench: {} photos, sizes {}; metric DSSIM (dssim-core 3), target JPEG q{JPEG_QUALITY}",
        cfg.photos.len(),
        cfg.sizes.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
    );
    let needs_refs = parts.matching || parts.speeds || parts.libavif;
    let refs = if needs_refs {
        build_references(&cfg, &refs_dir)
    } else {
        Vec::new()
    };
    let mut lab = Lab::new(&refs, tmp.path());
    let defaults = RenderOptions::default();
    let mut chosen = Chosen {
        webp: cfg.webp_q.unwrap_or(defaults.webp_quality),
        avif: cfg.avif_q.unwrap_or(defaults.avif_quality),
    };
    if parts.matching {
        chosen = part_match(&mut lab, &cfg);
    }
    if parts.speeds {
        part_speeds(&mut lab, &cfg);
    }
    if parts.libavif {
        part_libavif(&mut lab, &cfg);
    }
    if parts.sets {
        part_sets(&cfg, chosen);
    }
}
