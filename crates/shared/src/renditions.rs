//! Output formats and renditions (one size in one format).
//!
//! Every size is served as JPEG (`colors` as PNG), its classic format; the
//! photo sizes may also be served as WebP and AVIF. A rendition's *name* is
//! the size name for the classic format (`tile_500`, exactly as before
//! formats existed, so manifests, messages and signatures of JPEG outputs are
//! unchanged) and `<size>.<ext>` otherwise (`tile_500.webp`). Its store key
//! is the size's key with the extension replaced (`…_500x500_center.webp`).

use crate::sizes::{Format, Size, SizeLimits};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The encodings a size can be served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputFormat {
    /// The size's classic format: JPEG (PNG for `colors`).
    Jpeg,
    /// Lossy WebP (libwebp).
    Webp,
    /// AVIF (AV1 intra frame).
    Avif,
}

impl OutputFormat {
    /// Every format, in the default negotiation order (smallest first).
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Jpeg];

    /// The option and JSON name (`jpeg`, `webp`, `avif`).
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// The URL and file extension (`jpg`, `webp`, `avif`).
    pub fn extension(self) -> &'static str {
        self.file_format().extension()
    }

    /// The MIME type (`image/webp`); JPEG for the classic format.
    pub fn content_type(self) -> &'static str {
        self.file_format().content_type()
    }

    fn file_format(self) -> Format {
        match self {
            OutputFormat::Jpeg => Format::Jpeg,
            OutputFormat::Webp => Format::Webp,
            OutputFormat::Avif => Format::Avif,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not `jpeg`, `webp` or `avif`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?} (expected jpeg, webp or avif)")]
pub struct UnknownFormat(pub String);

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Ok(OutputFormat::Jpeg),
            "webp" => Ok(OutputFormat::Webp),
            "avif" => Ok(OutputFormat::Avif),
            _ => Err(UnknownFormat(s.chars().take(32).collect())),
        }
    }
}

impl Serialize for OutputFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for OutputFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list of formats (order kept, duplicates dropped).
pub fn parse_format_list(s: &str) -> Result<Vec<OutputFormat>, UnknownFormat> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let f: OutputFormat = part.parse()?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// One size in one format: what a store object, a manifest output, a job
/// entry and a URL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rendition {
    /// The size.
    pub size: Size,
    /// The format.
    pub format: OutputFormat,
}

impl From<Size> for Rendition {
    fn from(size: Size) -> Self {
        Rendition {
            size,
            format: OutputFormat::Jpeg,
        }
    }
}

impl Rendition {
    /// `size` in `format`; `None` for `colors` in anything but its PNG.
    pub fn new(size: Size, format: OutputFormat) -> Option<Rendition> {
        (format == OutputFormat::Jpeg || size != Size::Colors).then_some(Rendition { size, format })
    }

    /// Every format of `size` among `formats` (`colors`: only its PNG).
    pub fn of(size: Size, formats: &[OutputFormat]) -> Vec<Rendition> {
        formats
            .iter()
            .filter_map(|f| Rendition::new(size, *f))
            .collect()
    }

    /// Whether this is the size's classic format (JPEG, or PNG for `colors`).
    pub fn is_classic(self) -> bool {
        self.format == OutputFormat::Jpeg
    }

    /// The file format written.
    pub fn file_format(self) -> Format {
        match self.format {
            OutputFormat::Jpeg => self.size.format(),
            other => other.file_format(),
        }
    }

    /// The MIME type served.
    pub fn content_type(self) -> &'static str {
        self.file_format().content_type()
    }

    /// The name in manifests, messages and signatures (`tile_500`,
    /// `tile_500.webp`).
    pub fn name(self) -> String {
        if self.is_classic() {
            self.size.name().to_string()
        } else {
            format!("{}.{}", self.size.name(), self.format.extension())
        }
    }

    /// The file name of this rendition for an asset
    /// (`<sha1>_500x500_center.webp`).
    pub fn file_name(self, hash: &str) -> String {
        format!("{hash}{}", self.suffix())
    }

    /// What follows the hash in the file name.
    pub fn suffix(self) -> String {
        let classic = self.size.spec().suffix;
        if self.is_classic() {
            return classic.to_string();
        }
        let stem = classic.rsplit_once('.').map_or(classic, |(stem, _)| stem);
        format!("{stem}.{}", self.format.extension())
    }

    /// Every rendition that exists (17 classic, 16 × WebP, 16 × AVIF).
    pub fn all() -> impl Iterator<Item = Rendition> {
        OutputFormat::ALL.into_iter().flat_map(|f| {
            Size::ALL
                .into_iter()
                .filter_map(move |s| Rendition::new(s, f))
        })
    }
}

impl fmt::Display for Rendition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A rendition name that is not a size, or a size in a format it is not
/// served in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rendition {0:?}")]
pub struct UnknownRendition(pub String);

impl FromStr for Rendition {
    type Err = UnknownRendition;

    /// Parses a rendition name (`tile_500`, `tile_500.webp`); the URL form
    /// with an explicit classic extension (`tile_500.jpg`, `colors.png`) is
    /// accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_url_name(s)
            .map(|(size, format)| Rendition::from(size).with(format))
            .ok_or_else(|| UnknownRendition(s.chars().take(64).collect()))
    }
}

impl Rendition {
    fn with(mut self, format: Option<OutputFormat>) -> Rendition {
        if let Some(f) = format {
            self.format = f;
        }
        self
    }
}

/// Parses the last segment of a thumbnail URL: a size name, optionally with
/// one extension naming the format (`tile_500.webp`, `tile_500.avif`,
/// `tile_500.jpg`, `colors.png`). `None` for anything else (`tile_500.gif`,
/// `tile_500.webp.avif`, `colors.webp`); `Some((size, None))` when no format
/// is named.
pub fn parse_url_name(s: &str) -> Option<(Size, Option<OutputFormat>)> {
    let (name, ext) = match s.split_once('.') {
        Some((name, ext)) => (name, Some(ext)),
        None => (s, None),
    };
    let size: Size = name.parse().ok()?;
    let Some(ext) = ext else {
        return Some((size, None));
    };
    let format = match ext {
        "jpg" if size != Size::Colors => OutputFormat::Jpeg,
        "png" if size == Size::Colors => OutputFormat::Jpeg,
        "webp" => OutputFormat::Webp,
        "avif" => OutputFormat::Avif,
        _ => return None,
    };
    Rendition::new(size, format).map(|r| (r.size, Some(r.format)))
}

impl Serialize for Rendition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Rendition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The renditions of the pre-generated sizes in `formats` (the ingest set).
pub fn pregenerated(limits: &SizeLimits, formats: &[OutputFormat]) -> Vec<Rendition> {
    let mut out: Vec<Rendition> = limits
        .pregenerated()
        .into_iter()
        .flat_map(|s| Rendition::of(s, formats))
        .collect();
    out.sort();
    out
}

/// `renditions` resolved for a `w`×`h` original (sizes that do not exist
/// for it dropped, larger fits resolved to the one stored; see
/// [`crate::sizes::resolve`]), sorted, without repeats.
pub fn resolve_renditions(renditions: &[Rendition], w: u32, h: u32) -> Vec<Rendition> {
    let mut out: Vec<Rendition> = renditions
        .iter()
        .filter_map(|r| Rendition::new(crate::sizes::resolve(r.size, w, h)?, r.format))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The sizes of `renditions`, sorted, without repeats.
pub fn sizes_of(renditions: &[Rendition]) -> Vec<Size> {
    let mut sizes: Vec<Size> = renditions.iter().map(|r| r.size).collect();
    sizes.sort();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_names_and_keys_are_the_size_ones() {
        for size in Size::ALL {
            let r = Rendition::from(size);
            assert_eq!(r.name(), size.name());
            assert_eq!(r.suffix(), size.spec().suffix);
            assert_eq!(r.content_type(), size.format().content_type());
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{size}\""));
        }
    }

    #[test]
    fn other_formats_replace_the_extension() {
        let r = Rendition::new(Size::Tile500, OutputFormat::Webp).unwrap();
        assert_eq!(r.name(), "tile_500.webp");
        assert_eq!(r.suffix(), "_500x500_center.webp");
        assert_eq!(r.content_type(), "image/webp");
        let a = Rendition::new(Size::Fit1280, OutputFormat::Avif).unwrap();
        assert_eq!(a.file_name("h"), "h_1280x1024_fit.avif");
        assert_eq!(a.content_type(), "image/avif");
        assert_eq!("fit_1280.avif".parse::<Rendition>(), Ok(a));
        assert_eq!(
            serde_json::from_str::<Rendition>("\"tile_500.webp\"").unwrap(),
            r
        );
        assert!(Rendition::new(Size::Colors, OutputFormat::Webp).is_none());
        assert_eq!(Rendition::all().count(), 17 + 16 + 16);
        let suffixes: std::collections::HashSet<String> =
            Rendition::all().map(Rendition::suffix).collect();
        assert_eq!(suffixes.len(), 49);
    }

    #[test]
    fn url_names() {
        assert_eq!(parse_url_name("tile_500"), Some((Size::Tile500, None)));
        assert_eq!(
            parse_url_name("tile_500.jpg"),
            Some((Size::Tile500, Some(OutputFormat::Jpeg)))
        );
        assert_eq!(
            parse_url_name("colors.png"),
            Some((Size::Colors, Some(OutputFormat::Jpeg)))
        );
        assert_eq!(
            parse_url_name("fit_720.avif"),
            Some((Size::Fit720, Some(OutputFormat::Avif)))
        );
        for bad in [
            "tile_500.gif",
            "tile_500.webp.avif",
            "tile_500.",
            "tile_500.WEBP",
            "colors.jpg",
            "colors.webp",
            "tile_500.png",
            "tile_501.webp",
            ".webp",
        ] {
            assert_eq!(parse_url_name(bad), None, "{bad}");
            assert!(bad.parse::<Rendition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn format_lists() {
        assert_eq!(
            parse_format_list("avif, webp,jpeg,webp").unwrap(),
            vec![OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Jpeg]
        );
        assert!(parse_format_list("jpeg,gif").is_err());
        let set = pregenerated(
            &SizeLimits::default(),
            &[OutputFormat::Jpeg, OutputFormat::Webp],
        );
        assert!(set.contains(&Rendition::from(Size::Colors)));
        assert!(set.contains(&Rendition::new(Size::Tile224, OutputFormat::Webp).unwrap()));
        assert_eq!(sizes_of(&set), SizeLimits::default().pregenerated());
    }
}
