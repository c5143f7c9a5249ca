//! The thumbnail size table (PhotoPrism's `internal/thumb/sizes.go`), the size
//! limits, and the pure geometry that turns an original's pixel size into each
//! output's pixel size and crop rectangle.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a size is produced from its source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Scale down to fit inside the box, keeping the aspect ratio; never upscale.
    Fit,
    /// Scale to cover the box and crop the centre; may upscale.
    FillCenter,
    /// Scale to cover the box and crop from the top-left; may upscale.
    FillLeft,
    /// Scale to cover the box and crop from the bottom-right; may upscale.
    FillRight,
    /// 3×3 centre crop, stored as PNG (the `colors` size).
    Colors,
}

impl Method {
    /// Whether the output always has exactly the box's pixel size.
    pub fn is_fill(self) -> bool {
        !matches!(self, Method::Fit)
    }
}

/// When a size is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pregen {
    /// Always pre-generated at ingest.
    Always,
    /// Pre-generated at ingest when its box fits within the static size limit.
    WithinStaticLimit,
    /// Only rendered on request (`left_224`, `right_224`; never for square originals).
    OnDemand,
    /// Only rendered on request.
    Optional,
}

/// Output file format of a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Baseline or progressive JPEG.
    Jpeg,
    /// PNG (only `colors`).
    Png,
    /// Lossy WebP.
    Webp,
    /// AVIF.
    Avif,
}

impl Format {
    /// The file extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Avif => "avif",
        }
    }

    /// The MIME type served for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
        }
    }
}

/// One of the 17 named thumbnail sizes. Serialized as its URL name (`tile_50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    Colors,
    Tile50,
    Tile100,
    Tile224,
    Left224,
    Right224,
    Fit720,
    Tile500,
    Tile1080,
    Fit1280,
    Fit1600,
    Fit1920,
    Fit2048,
    Fit2560,
    Fit3840,
    Fit4096,
    Fit7680,
}

/// Static facts about a size: one row of the size table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeSpec {
    /// The size as it appears in URLs (`tile_224`).
    pub name: &'static str,
    /// Box width in pixels.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// How the output is produced.
    pub method: Method,
    /// File name suffix after the hash (`_224x224_center.jpg`).
    pub suffix: &'static str,
    /// The size whose result this one is rendered from; `None` means the original.
    pub source: Option<Size>,
    /// When it is rendered.
    pub pregen: Pregen,
}

const fn spec(
    name: &'static str,
    width: u32,
    height: u32,
    method: Method,
    suffix: &'static str,
    source: Option<Size>,
    pregen: Pregen,
) -> SizeSpec {
    SizeSpec {
        name,
        width,
        height,
        method,
        suffix,
        source,
        pregen,
    }
}

impl Size {
    /// Every size, in table order (small to large).
    pub const ALL: [Size; 17] = [
        Size::Colors,
        Size::Tile50,
        Size::Tile100,
        Size::Tile224,
        Size::Left224,
        Size::Right224,
        Size::Fit720,
        Size::Tile500,
        Size::Tile1080,
        Size::Fit1280,
        Size::Fit1600,
        Size::Fit1920,
        Size::Fit2048,
        Size::Fit2560,
        Size::Fit3840,
        Size::Fit4096,
        Size::Fit7680,
    ];

    /// The fit sizes in increasing box width: the order used by the
    /// "smallest fit size that contains the original" rule.
    pub const FITS: [Size; 9] = [
        Size::Fit720,
        Size::Fit1280,
        Size::Fit1600,
        Size::Fit1920,
        Size::Fit2048,
        Size::Fit2560,
        Size::Fit3840,
        Size::Fit4096,
        Size::Fit7680,
    ];

    /// The row of the size table for this size.
    pub const fn spec(self) -> SizeSpec {
        use Method::*;
        use Pregen::*;
        match self {
            Size::Colors => spec(
                "colors",
                3,
                3,
                Colors,
                "_3x3_resize.png",
                Some(Size::Fit720),
                Always,
            ),
            Size::Tile50 => spec(
                "tile_50",
                50,
                50,
                FillCenter,
                "_50x50_center.jpg",
                Some(Size::Fit720),
                Always,
            ),
            Size::Tile100 => spec(
                "tile_100",
                100,
                100,
                FillCenter,
                "_100x100_center.jpg",
                Some(Size::Fit720),
                Always,
            ),
            Size::Tile224 => spec(
                "tile_224",
                224,
                224,
                FillCenter,
                "_224x224_center.jpg",
                Some(Size::Fit720),
                Always,
            ),
            Size::Left224 => spec(
                "left_224",
                224,
                224,
                FillLeft,
                "_224x224_left.jpg",
                Some(Size::Fit720),
                OnDemand,
            ),
            Size::Right224 => spec(
                "right_224",
                224,
                224,
                FillRight,
                "_224x224_right.jpg",
                Some(Size::Fit720),
                OnDemand,
            ),
            Size::Fit720 => spec("fit_720", 720, 720, Fit, "_720x720_fit.jpg", None, Always),
            Size::Tile500 => spec(
                "tile_500",
                500,
                500,
                FillCenter,
                "_500x500_center.jpg",
                Some(Size::Fit1920),
                Always,
            ),
            Size::Tile1080 => spec(
                "tile_1080",
                1080,
                1080,
                FillCenter,
                "_1080x1080_center.jpg",
                Some(Size::Fit1920),
                Optional,
            ),
            Size::Fit1280 => spec(
                "fit_1280",
                1280,
                1024,
                Fit,
                "_1280x1024_fit.jpg",
                Some(Size::Fit1920),
                WithinStaticLimit,
            ),
            Size::Fit1600 => spec(
                "fit_1600",
                1600,
                900,
                Fit,
                "_1600x900_fit.jpg",
                Some(Size::Fit1920),
                Optional,
            ),
            Size::Fit1920 => spec(
                "fit_1920",
                1920,
                1200,
                Fit,
                "_1920x1200_fit.jpg",
                None,
                WithinStaticLimit,
            ),
            Size::Fit2048 => spec(
                "fit_2048",
                2048,
                2048,
                Fit,
                "_2048x2048_fit.jpg",
                Some(Size::Fit4096),
                Optional,
            ),
            Size::Fit2560 => spec(
                "fit_2560",
                2560,
                1600,
                Fit,
                "_2560x1600_fit.jpg",
                Some(Size::Fit4096),
                WithinStaticLimit,
            ),
            Size::Fit3840 => spec(
                "fit_3840",
                3840,
                2400,
                Fit,
                "_3840x2400_fit.jpg",
                Some(Size::Fit4096),
                Optional,
            ),
            Size::Fit4096 => spec(
                "fit_4096",
                4096,
                4096,
                Fit,
                "_4096x4096_fit.jpg",
                None,
                WithinStaticLimit,
            ),
            Size::Fit7680 => spec(
                "fit_7680",
                7680,
                4320,
                Fit,
                "_7680x4320_fit.jpg",
                None,
                WithinStaticLimit,
            ),
        }
    }

    /// The URL name (`fit_720`).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Output file format.
    pub fn format(self) -> Format {
        match self {
            Size::Colors => Format::Png,
            _ => Format::Jpeg,
        }
    }

    /// The longer side of the box: what the size limits compare against.
    pub fn long_side(self) -> u32 {
        let s = self.spec();
        s.width.max(s.height)
    }

    /// The file name of this size for an asset (`<sha1>_720x720_fit.jpg`).
    pub fn file_name(self, hash: &str) -> String {
        format!("{hash}{}", self.spec().suffix)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A size name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown size {0:?}")]
pub struct UnknownSize(pub String);

impl FromStr for Size {
    type Err = UnknownSize;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Size::ALL
            .into_iter()
            .find(|size| size.name() == s)
            .ok_or_else(|| UnknownSize(s.chars().take(64).collect()))
    }
}

/// Parses a comma-separated size list, or the words `all` and `pregenerated`
/// (the pre-generated set under the default static limit).
pub fn parse_size_list(s: &str, limits: &SizeLimits) -> Result<Vec<Size>, UnknownSize> {
    match s.trim() {
        "all" => Ok(Size::ALL.to_vec()),
        "pregenerated" | "pregen" => Ok(limits.pregenerated()),
        list => {
            let mut sizes = Vec::new();
            for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let size: Size = part.parse()?;
                if !sizes.contains(&size) {
                    sizes.push(size);
                }
            }
            Ok(sizes)
        }
    }
}

/// The default static size limit.
pub const DEFAULT_STATIC_LIMIT: u32 = 1920;
/// The default dynamic size limit.
pub const DEFAULT_DYNAMIC_LIMIT: u32 = 7680;
/// Lower clamp of both limits.
pub const MIN_LIMIT: u32 = 720;
/// Upper clamp of both limits.
pub const MAX_LIMIT: u32 = 7680;

/// The static limit (what ingest pre-generates) and the dynamic limit (what may
/// be rendered on request), in pixels of the box's longer side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeLimits {
    static_limit: u32,
    dynamic_limit: u32,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits::new(DEFAULT_STATIC_LIMIT, DEFAULT_DYNAMIC_LIMIT)
    }
}

impl SizeLimits {
    /// Clamps the static limit to 720..=7680 and the dynamic limit to
    /// static..=7680, as PhotoPrism does.
    pub fn new(static_limit: u32, dynamic_limit: u32) -> Self {
        let static_limit = static_limit.clamp(MIN_LIMIT, MAX_LIMIT);
        let dynamic_limit = dynamic_limit.clamp(static_limit, MAX_LIMIT);
        SizeLimits {
            static_limit,
            dynamic_limit,
        }
    }

    /// The clamped static limit.
    pub fn static_limit(&self) -> u32 {
        self.static_limit
    }

    /// The clamped dynamic limit.
    pub fn dynamic_limit(&self) -> u32 {
        self.dynamic_limit
    }

    /// Whether a size may be rendered on request.
    pub fn allows_on_request(&self, size: Size) -> bool {
        size.long_side() <= self.dynamic_limit
    }

    /// Whether ingest pre-generates this size (for any original).
    pub fn is_pregenerated(&self, size: Size) -> bool {
        match size.spec().pregen {
            Pregen::Always => true,
            Pregen::WithinStaticLimit => size.long_side() <= self.static_limit,
            Pregen::OnDemand | Pregen::Optional => false,
        }
    }

    /// The sizes ingest pre-generates, in table order.
    pub fn pregenerated(&self) -> Vec<Size> {
        Size::ALL
            .into_iter()
            .filter(|s| self.is_pregenerated(*s))
            .collect()
    }
}

/// A rectangle in the coordinates of an original image (after orientation).
/// Fractional, so that a crop maps onto the output box exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl CropRect {
    /// Scales the rectangle from an image of `from` pixels to one of `to` pixels
    /// (for rendering from a cascade source rather than the original).
    pub fn scaled(&self, from: (u32, u32), to: (u32, u32)) -> CropRect {
        let sx = f64::from(to.0) / f64::from(from.0.max(1));
        let sy = f64::from(to.1) / f64::from(from.1.max(1));
        CropRect {
            x: self.x * sx,
            y: self.y * sy,
            width: self.width * sx,
            height: self.height * sy,
        }
    }
}

/// What to render for one size of one original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// The part of the original that is scaled onto the output.
    pub crop: CropRect,
}

/// What a size means for a particular original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// Render this size with this geometry.
    Render(Geometry),
    /// Do not render this size: requests for it are served by another size
    /// (a fit size larger than the original, served by the smallest fit size
    /// that contains the original).
    ServeAs(Size),
    /// This size does not exist for this original (`left_224`/`right_224` of a
    /// square original).
    NotApplicable,
}

/// Scales `a` by `num/den`, rounding half up, at least 1.
fn scale_round(a: u32, num: u32, den: u32) -> u32 {
    let v = (u64::from(a) * u64::from(num) * 2 + u64::from(den)) / (u64::from(den) * 2);
    u32::try_from(v).unwrap_or(u32::MAX).max(1)
}

/// The output size of fitting `w`×`h` into `bw`×`bh` without upscaling.
pub fn fit_dimensions(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    let (w, h) = (w.max(1), h.max(1));
    if w <= bw && h <= bh {
        return (w, h);
    }
    // Compare aspect ratios exactly: w/h > bw/bh  <=>  w*bh > bw*h.
    if u64::from(w) * u64::from(bh) > u64::from(bw) * u64::from(h) {
        (bw, scale_round(h, bw, w).min(bh))
    } else {
        (scale_round(w, bh, h).min(bw), bh)
    }
}

/// The crop of a `w`×`h` image that has the aspect ratio of `bw`×`bh`,
/// anchored as the method says.
fn fill_crop(w: u32, h: u32, bw: u32, bh: u32, method: Method) -> CropRect {
    let (wf, hf) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let target = f64::from(bw) / f64::from(bh);
    let (cw, ch) = if wf / hf > target {
        (hf * target, hf)
    } else {
        (wf, wf / target)
    };
    let (x, y) = match method {
        Method::FillLeft => (0.0, 0.0),
        Method::FillRight => (wf - cw, hf - ch),
        _ => ((wf - cw) / 2.0, (hf - ch) / 2.0),
    };
    CropRect {
        x,
        y,
        width: cw,
        height: ch,
    }
}

/// The smallest fit size (in table order) whose box contains a `w`×`h` original.
pub fn smallest_containing_fit(w: u32, h: u32) -> Option<Size> {
    Size::FITS.into_iter().find(|s| {
        let spec = s.spec();
        w <= spec.width && h <= spec.height
    })
}

/// The exact output of `size` for an original of `w`×`h` pixels (after
/// orientation).
pub fn plan(size: Size, w: u32, h: u32) -> Plan {
    let (w, h) = (w.max(1), h.max(1));
    let spec = size.spec();
    let full = CropRect {
        x: 0.0,
        y: 0.0,
        width: f64::from(w),
        height: f64::from(h),
    };
    match spec.method {
        Method::Fit => {
            if w <= spec.width && h <= spec.height {
                // Larger than the original: only the smallest containing fit is rendered.
                match smallest_containing_fit(w, h) {
                    Some(smallest) if smallest != size => return Plan::ServeAs(smallest),
                    _ => {}
                }
            }
            let (ow, oh) = fit_dimensions(w, h, spec.width, spec.height);
            Plan::Render(Geometry {
                width: ow,
                height: oh,
                crop: full,
            })
        }
        Method::FillLeft | Method::FillRight if w == h => Plan::NotApplicable,
        Method::FillCenter | Method::FillLeft | Method::FillRight | Method::Colors => {
            Plan::Render(Geometry {
                width: spec.width,
                height: spec.height,
                crop: fill_crop(w, h, spec.width, spec.height, spec.method),
            })
        }
    }
}

/// The size whose stored file answers a request for `size` (itself, or the
/// smallest containing fit), or `None` where the size does not exist for this
/// original.
pub fn resolve(size: Size, w: u32, h: u32) -> Option<Size> {
    match plan(size, w, h) {
        Plan::Render(_) => Some(size),
        Plan::ServeAs(other) => Some(other),
        Plan::NotApplicable => None,
    }
}

/// The sizes a request for `wanted` needs rendered for a `w`×`h` original,
/// resolved through [`resolve`], without duplicates, in table order.
pub fn render_set(wanted: &[Size], w: u32, h: u32) -> Vec<Size> {
    let mut out: Vec<Size> = wanted.iter().filter_map(|s| resolve(*s, w, h)).collect();
    out.sort();
    out.dedup();
    out
}

/// The image a size is rendered from inside one job: the result of its
/// cascade source (resolved for this original) when that source is rendered
/// in the same job and still holds at least as many pixels as the output
/// needs, else `None` (the decoded original).
pub fn cascade_source(size: Size, w: u32, h: u32, rendering: &[Size]) -> Option<Size> {
    let Plan::Render(target) = plan(size, w, h) else {
        return None;
    };
    let mut source = size.spec().source?;
    // Sources resolved so far: for an original smaller than a fit box, a
    // fit's source can resolve back to that fit (fit_1920 of a 900×600
    // original is its fit_1280, whose source is fit_1920), so the walk
    // stops at the first repeat instead of going round for ever.
    let mut seen: Vec<Size> = Vec::new();
    loop {
        let resolved = resolve(source, w, h)?;
        if resolved == size || seen.contains(&resolved) {
            return None;
        }
        seen.push(resolved);
        if rendering.contains(&resolved) {
            let Plan::Render(src) = plan(resolved, w, h) else {
                return None;
            };
            let crop = target.crop.scaled((w, h), (src.width, src.height));
            // Enough pixels: the crop inside the source is as large as the output,
            // or as large as the crop inside the original when that is smaller.
            let need_w = f64::from(target.width).min(target.crop.width);
            let need_h = f64::from(target.height).min(target.crop.height);
            if crop.width + 0.5 >= need_w && crop.height + 0.5 >= need_h {
                return Some(resolved);
            }
            return None;
        }
        source = resolved.spec().source?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(size: Size, w: u32, h: u32) -> Geometry {
        match plan(size, w, h) {
            Plan::Render(g) => g,
            other => panic!("{size} of {w}x{h}: {other:?}"),
        }
    }

    #[test]
    fn cascade_walks_end_for_every_size_and_shape() {
        // A job for one size of an original smaller than the fit boxes
        // (tile_500 of 900×600) once looped for ever here.
        for (w, h) in [
            (900, 600),
            (600, 900),
            (1000, 800),
            (1300, 700),
            (500, 500),
            (4000, 3000),
        ] {
            for size in Size::ALL {
                for rendering in [vec![size], Size::ALL.to_vec()] {
                    let src = cascade_source(size, w, h, &rendering);
                    assert!(src.is_none_or(|s| s != size && rendering.contains(&s)));
                }
            }
        }
        assert_eq!(
            cascade_source(Size::Tile500, 900, 600, &[Size::Tile500]),
            None
        );
    }

    #[test]
    fn table_has_17_unique_names_and_suffixes() {
        let names: std::collections::HashSet<_> = Size::ALL.iter().map(|s| s.name()).collect();
        let suffixes: std::collections::HashSet<_> =
            Size::ALL.iter().map(|s| s.spec().suffix).collect();
        assert_eq!(names.len(), 17);
        assert_eq!(suffixes.len(), 17);
        for size in Size::ALL {
            assert_eq!(size.name().parse::<Size>(), Ok(size));
            let spec = size.spec();
            let dims = format!("_{}x{}_", spec.width, spec.height);
            assert!(spec.suffix.starts_with(&dims), "{}", spec.suffix);
            assert!(spec.suffix.ends_with(size.format().extension()));
        }
    }

    #[test]
    fn serde_uses_url_names() {
        for size in Size::ALL {
            let json = serde_json::to_string(&size).unwrap();
            assert_eq!(json, format!("\"{}\"", size.name()));
            assert_eq!(serde_json::from_str::<Size>(&json).unwrap(), size);
        }
        assert!(serde_json::from_str::<Size>("\"tile50\"").is_err());
    }

    #[test]
    fn unknown_names_are_rejected() {
        for bad in [
            "",
            "fit_721",
            "FIT_720",
            "tile_50 ",
            "../fit_720",
            "fit_720.jpg",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cascade_sources_are_larger_fits() {
        for size in Size::ALL {
            if let Some(src) = size.spec().source {
                assert_eq!(src.spec().method, Method::Fit);
                assert!(src.long_side() > size.long_side() || size == Size::Tile1080);
                assert!(
                    src.spec().source.is_none(),
                    "sources render from the original"
                );
            }
        }
    }

    #[test]
    fn limits_clamp() {
        assert_eq!(SizeLimits::new(100, 50).static_limit(), 720);
        assert_eq!(SizeLimits::new(100, 50).dynamic_limit(), 720);
        assert_eq!(SizeLimits::new(9000, 9000).static_limit(), 7680);
        assert_eq!(SizeLimits::new(2560, 1000).dynamic_limit(), 2560);
        let d = SizeLimits::default();
        assert_eq!((d.static_limit(), d.dynamic_limit()), (1920, 7680));
    }

    #[test]
    fn pregenerated_set_under_default_limit() {
        use Size::*;
        assert_eq!(
            SizeLimits::default().pregenerated(),
            vec![Colors, Tile50, Tile100, Tile224, Fit720, Tile500, Fit1280, Fit1920]
        );
        let wide = SizeLimits::new(7680, 7680).pregenerated();
        assert!(wide.contains(&Fit7680) && wide.contains(&Fit4096) && wide.contains(&Fit2560));
        assert!(!wide.contains(&Fit2048) && !wide.contains(&Left224) && !wide.contains(&Tile1080));
        let small = SizeLimits::new(720, 720);
        assert!(!small.allows_on_request(Fit1280));
        assert!(small.allows_on_request(Fit720));
    }

    const LANDSCAPE: (u32, u32) = (4000, 3000);
    const PORTRAIT: (u32, u32) = (3000, 4000);
    const SQUARE: (u32, u32) = (2000, 2000);
    const TINY: (u32, u32) = (1, 1);
    const HUGE: (u32, u32) = (60000, 1);

    /// The expected plan of every size for each test original, written out by hand.
    fn expected(size: Size, (w, h): (u32, u32)) -> Plan {
        use Size::*;
        let fill = |m: Method| {
            let s = size.spec();
            Plan::Render(Geometry {
                width: s.width,
                height: s.height,
                crop: fill_crop(w, h, s.width, s.height, m),
            })
        };
        let fit = |ow, oh| {
            Plan::Render(Geometry {
                width: ow,
                height: oh,
                crop: CropRect {
                    x: 0.0,
                    y: 0.0,
                    width: f64::from(w),
                    height: f64::from(h),
                },
            })
        };
        match ((w, h), size) {
            (_, Colors) => fill(Method::Colors),
            (_, Tile50 | Tile100 | Tile224 | Tile500 | Tile1080) => fill(Method::FillCenter),
            ((a, b), Left224 | Right224) if a == b => Plan::NotApplicable,
            (_, Left224) => fill(Method::FillLeft),
            (_, Right224) => fill(Method::FillRight),
            (LANDSCAPE, Fit720) => fit(720, 540),
            (LANDSCAPE, Fit1280) => fit(1280, 960),
            (LANDSCAPE, Fit1600) => fit(1200, 900),
            (LANDSCAPE, Fit1920) => fit(1600, 1200),
            (LANDSCAPE, Fit2048) => fit(2048, 1536),
            (LANDSCAPE, Fit2560) => fit(2133, 1600),
            (LANDSCAPE, Fit3840) => fit(3200, 2400),
            (LANDSCAPE, Fit4096) => fit(4000, 3000),
            (LANDSCAPE, Fit7680) => Plan::ServeAs(Fit4096),
            (PORTRAIT, Fit720) => fit(540, 720),
            (PORTRAIT, Fit1280) => fit(768, 1024),
            (PORTRAIT, Fit1600) => fit(675, 900),
            (PORTRAIT, Fit1920) => fit(900, 1200),
            (PORTRAIT, Fit2048) => fit(1536, 2048),
            (PORTRAIT, Fit2560) => fit(1200, 1600),
            (PORTRAIT, Fit3840) => fit(1800, 2400),
            (PORTRAIT, Fit4096) => fit(3000, 4000),
            (PORTRAIT, Fit7680) => Plan::ServeAs(Fit4096),
            (SQUARE, Fit720) => fit(720, 720),
            (SQUARE, Fit1280) => fit(1024, 1024),
            (SQUARE, Fit1600) => fit(900, 900),
            (SQUARE, Fit1920) => fit(1200, 1200),
            (SQUARE, Fit2048) => fit(2000, 2000),
            (SQUARE, Fit2560) => fit(1600, 1600),
            (SQUARE, Fit3840 | Fit4096 | Fit7680) => Plan::ServeAs(Fit2048),
            (TINY, Fit720) => fit(1, 1),
            (TINY, _) => Plan::ServeAs(Fit720),
            (HUGE, Fit720) => fit(720, 1),
            (HUGE, Fit1280) => fit(1280, 1),
            (HUGE, Fit1600) => fit(1600, 1),
            (HUGE, Fit1920) => fit(1920, 1),
            (HUGE, Fit2048) => fit(2048, 1),
            (HUGE, Fit2560) => fit(2560, 1),
            (HUGE, Fit3840) => fit(3840, 1),
            (HUGE, Fit4096) => fit(4096, 1),
            (HUGE, Fit7680) => fit(7680, 1),
            other => panic!("no expectation for {other:?}"),
        }
    }

    #[test]
    fn every_size_on_every_shape() {
        for orig in [LANDSCAPE, PORTRAIT, SQUARE, TINY, HUGE] {
            for size in Size::ALL {
                assert_eq!(
                    plan(size, orig.0, orig.1),
                    expected(size, orig),
                    "{size} of {orig:?}"
                );
            }
        }
    }

    #[test]
    fn fill_crops_keep_box_aspect_and_stay_inside() {
        for (w, h) in [LANDSCAPE, PORTRAIT, SQUARE, TINY, HUGE, (1, 60000), (7, 3)] {
            for size in Size::ALL.into_iter().filter(|s| s.spec().method.is_fill()) {
                let Plan::Render(g) = plan(size, w, h) else {
                    continue;
                };
                let c = g.crop;
                assert!(c.x >= 0.0 && c.y >= 0.0, "{size} {w}x{h} {c:?}");
                assert!(c.x + c.width <= f64::from(w) + 1e-9, "{size} {w}x{h} {c:?}");
                assert!(
                    c.y + c.height <= f64::from(h) + 1e-9,
                    "{size} {w}x{h} {c:?}"
                );
                let box_aspect = f64::from(g.width) / f64::from(g.height);
                assert!((c.width / c.height - box_aspect).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn fill_anchors() {
        let centre = geometry(Size::Tile224, 4000, 3000).crop;
        assert_eq!(
            (centre.x, centre.y, centre.width, centre.height),
            (500.0, 0.0, 3000.0, 3000.0)
        );
        let left = geometry(Size::Left224, 4000, 3000).crop;
        assert_eq!((left.x, left.y), (0.0, 0.0));
        let right = geometry(Size::Right224, 3000, 4000).crop;
        assert_eq!((right.x, right.y, right.width), (0.0, 1000.0, 3000.0));
        let colors = geometry(Size::Colors, 100, 50);
        assert_eq!((colors.width, colors.height), (3, 3));
        assert_eq!(colors.crop.x, 25.0);
    }

    #[test]
    fn fill_may_upscale_fit_never_does() {
        let g = geometry(Size::Tile500, 100, 67);
        assert_eq!((g.width, g.height), (500, 500));
        for size in Size::FITS {
            if let Plan::Render(g) = plan(size, 100, 67) {
                assert!(g.width <= 100 && g.height <= 67);
            }
        }
    }

    #[test]
    fn resolve_and_render_set() {
        use Size::*;
        // 1000x800 is contained by fit_1280 first.
        assert_eq!(resolve(Fit1920, 1000, 800), Some(Fit1280));
        assert_eq!(resolve(Fit720, 1000, 800), Some(Fit720));
        assert_eq!(resolve(Left224, 500, 500), None);
        let set = render_set(&SizeLimits::default().pregenerated(), 1000, 800);
        assert_eq!(
            set,
            vec![Colors, Tile50, Tile100, Tile224, Fit720, Tile500, Fit1280]
        );
    }

    #[test]
    fn cascade_follows_the_table_and_resolution() {
        use Size::*;
        let set = render_set(&SizeLimits::default().pregenerated(), 4000, 3000);
        assert_eq!(cascade_source(Tile50, 4000, 3000, &set), Some(Fit720));
        assert_eq!(cascade_source(Tile500, 4000, 3000, &set), Some(Fit1920));
        assert_eq!(cascade_source(Fit1280, 4000, 3000, &set), Some(Fit1920));
        assert_eq!(cascade_source(Fit720, 4000, 3000, &set), None);
        // A 1000x800 original has no fit_1920: tile_500 comes from fit_1280, which is the original's size.
        let small = render_set(&SizeLimits::default().pregenerated(), 1000, 800);
        assert_eq!(cascade_source(Tile500, 1000, 800, &small), Some(Fit1280));
        assert_eq!(cascade_source(Fit1280, 1000, 800, &small), None);
        // Without fit_4096 in the job, fit_2048 renders from the original.
        assert_eq!(cascade_source(Fit2048, 5000, 5000, &[Fit2048]), None);
        // A panorama's fit_1920 is too thin for tile_1080: that comes from the original.
        assert_eq!(
            cascade_source(Tile1080, 6000, 1000, &[Fit1920, Tile1080]),
            None
        );
        assert_eq!(
            cascade_source(Tile500, 6000, 1000, &[Fit1920, Tile500]),
            None
        );
        assert_eq!(
            cascade_source(Tile50, 6000, 1000, &[Fit720, Tile50]),
            Some(Fit720)
        );
    }

    #[test]
    fn crop_scales_to_a_cascade_source() {
        let c = geometry(Size::Tile224, 4000, 3000).crop;
        let s = c.scaled((4000, 3000), (1600, 1200));
        assert_eq!((s.x, s.y, s.width, s.height), (200.0, 0.0, 1200.0, 1200.0));
    }

    #[test]
    fn size_list_parsing() {
        let l = SizeLimits::default();
        assert_eq!(parse_size_list("all", &l).map(|v| v.len()), Ok(17));
        assert_eq!(parse_size_list("pregenerated", &l), Ok(l.pregenerated()));
        assert_eq!(
            parse_size_list("tile_50, fit_720,tile_50", &l),
            Ok(vec![Size::Tile50, Size::Fit720])
        );
        assert!(parse_size_list("tile_50,nope", &l).is_err());
    }
}
