//! The storage key layout (docs/contracts.md §3), shared by the S3 bucket and the local
//! directory:
//!
//! ```text
//! thumbs/<h0>/<h1>/<h2>/<sha1>_<W>x<H>_<method>.<jpg|png|webp|avif>
//! videos/<h0>/<h1>/<h2>/<sha1>.avc.mp4
//! meta/<h0>/<h1>/<h2>/<sha1>.json
//! originals/<h0>/<h1>/<h2>/<sha1>.<ext>
//! live/<content-id>/<photo|video>.json                   Live Photo halves (see [`live_photo_half`])
//! ```

use crate::hash::AssetHash;
use crate::renditions::Rendition;
use serde::{Deserialize, Serialize};

/// The top-level folders of the store.
pub const THUMBS: &str = "thumbs";
/// Video transcodes.
pub const VIDEOS: &str = "videos";
/// Asset manifests.
pub const META: &str = "meta";
/// Originals uploaded through thumbfarm.
pub const ORIGINALS: &str = "originals";
/// State of `thumbfarm-api backfill` (its resume cursor); never an original
/// or an output.
pub const BACKFILL: &str = "backfill";

/// Live Photo pairing: one small JSON object per half of a pair
/// (`live/<content-id>/photo.json`, `live/<content-id>/video.json`).
pub const LIVE: &str = "live";

/// The key of one half (`photo` or `video`) of the Live Photo pair with the
/// Apple ContentIdentifier `content_id`; `None` unless the identifier is
/// 1 to 64 ASCII letters, digits and hyphens (a UUID), so it is safe in a key.
pub fn live_photo_half(content_id: &str, half: &str) -> Option<String> {
    let ok = (1..=64).contains(&content_id.len())
        && content_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| format!("{LIVE}/{}/{half}.json", content_id.to_ascii_uppercase()))
}

/// The only video format thumbfarm makes: H.264/AVC in MP4 (`…/avc` URLs,
/// the `avc` output of a manifest, the `format` of a transcode job).
pub const AVC: &str = "avc";

/// Whether `key` (in the store's own bucket) is one of thumbfarm's own
/// objects (thumbnails, videos, manifests, backfill state) rather than an
/// original: ingest ignores those, so a bucket that notifies on every write
/// does not loop.
pub fn is_own_object(key: &str) -> bool {
    [THUMBS, VIDEOS, META, BACKFILL, LIVE]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// A prefix depth outside 1..=4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix depth must be between 1 and 4, got {0}")]
pub struct InvalidDepth(pub u8);

/// A key that is not one of thumbfarm's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a thumbfarm key: {0:?}")]
pub struct InvalidKey(pub String);

/// Builds and parses store keys for a given hash-prefix depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLayout {
    depth: u8,
}

impl Default for KeyLayout {
    fn default() -> Self {
        KeyLayout { depth: 3 }
    }
}

/// What a parsed key points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A thumbnail: a size in a format.
    Thumb(Rendition),
    /// The AVC transcode.
    Video,
    /// The manifest.
    Manifest,
    /// The original, with its extension.
    Original(String),
}

impl KeyLayout {
    /// A layout with `depth` single-character prefix folders (1..=4).
    pub fn new(depth: u8) -> Result<Self, InvalidDepth> {
        if (1..=4).contains(&depth) {
            Ok(KeyLayout { depth })
        } else {
            Err(InvalidDepth(depth))
        }
    }

    /// The configured depth.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// `<root>/<h0>/…/` for a hash.
    fn dir(&self, root: &str, hash: &AssetHash) -> String {
        let mut out = String::with_capacity(root.len() + 2 * usize::from(self.depth) + 1);
        out.push_str(root);
        for c in hash.as_str().chars().take(usize::from(self.depth)) {
            out.push('/');
            out.push(c);
        }
        out.push('/');
        out
    }

    /// The key of a thumbnail.
    /// A [`Size`](crate::sizes::Size) is its classic (JPEG/PNG) rendition.
    pub fn thumb(&self, hash: &AssetHash, rendition: impl Into<Rendition>) -> String {
        format!(
            "{}{}",
            self.dir(THUMBS, hash),
            rendition.into().file_name(hash.as_str())
        )
    }

    /// The key of the AVC transcode.
    pub fn video(&self, hash: &AssetHash) -> String {
        format!("{}{hash}.{AVC}.mp4", self.dir(VIDEOS, hash))
    }

    /// The key of the manifest.
    pub fn manifest(&self, hash: &AssetHash) -> String {
        format!("{}{hash}.json", self.dir(META, hash))
    }

    /// The key of an original uploaded through thumbfarm. The extension is
    /// lower-cased and reduced to `[a-z0-9]` (at most 8 characters); an empty
    /// one becomes `bin`.
    pub fn original(&self, hash: &AssetHash, ext: &str) -> String {
        let ext = sanitize_extension(ext);
        format!("{}{hash}.{ext}", self.dir(ORIGINALS, hash))
    }

    /// The folder that holds every manifest (for listing).
    pub fn manifest_root(&self) -> String {
        format!("{META}/")
    }

    /// Parses a key of any depth (1..=4) back into its hash and kind, checking
    /// that the prefix folders agree with the hash. Used to find data written
    /// under another depth, so a change of depth never silently loses it.
    pub fn parse(key: &str) -> Result<(AssetHash, KeyKind), InvalidKey> {
        let bad = || InvalidKey(key.chars().take(200).collect());
        let mut parts: Vec<&str> = key.split('/').collect();
        let file = parts.pop().ok_or_else(bad)?;
        if parts.len() < 2 || parts.len() > 5 {
            return Err(bad());
        }
        let root = parts[0];
        let prefixes = &parts[1..];
        let hash = AssetHash::parse(file.get(..40).ok_or_else(bad)?).map_err(|_| bad())?;
        let rest = &file[40..];
        for (i, p) in prefixes.iter().enumerate() {
            if p.len() != 1 || hash.as_str().as_bytes().get(i) != p.as_bytes().first() {
                return Err(bad());
            }
        }
        let kind = match root {
            THUMBS => Rendition::all()
                .find(|r| r.suffix() == rest)
                .map(KeyKind::Thumb),
            VIDEOS if rest.strip_prefix('.').and_then(|r| r.strip_suffix(".mp4")) == Some(AVC) => {
                Some(KeyKind::Video)
            }
            META if rest == ".json" => Some(KeyKind::Manifest),
            ORIGINALS => rest
                .strip_prefix('.')
                .filter(|e| !e.is_empty() && sanitize_extension(e) == *e)
                .map(|e| KeyKind::Original(e.to_string())),
            _ => None,
        };
        kind.map(|k| (hash, k)).ok_or_else(bad)
    }
}

/// Reduces a file extension to at most 8 lowercase ASCII letters and digits.
pub fn sanitize_extension(ext: &str) -> String {
    let clean: String = ext
        .trim_start_matches('.')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    if clean.is_empty() {
        "bin".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizes::Size;

    fn hash() -> AssetHash {
        AssetHash::parse("ec952cab562a55d96ddff2a2fcc41e875393a27a").unwrap()
    }

    #[test]
    fn default_layout_matches_design() {
        let l = KeyLayout::default();
        let h = hash();
        assert_eq!(
            l.thumb(&h, Size::Fit720),
            "thumbs/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a_720x720_fit.jpg"
        );
        assert_eq!(
            l.thumb(&h, Size::Colors),
            "thumbs/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a_3x3_resize.png"
        );
        assert_eq!(
            l.video(&h),
            "videos/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a.avc.mp4"
        );
        assert_eq!(
            l.manifest(&h),
            "meta/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a.json"
        );
        assert_eq!(
            l.original(&h, ".JPG"),
            "originals/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a.jpg"
        );
    }

    #[test]
    fn live_photo_keys_take_only_safe_identifiers() {
        assert_eq!(
            live_photo_half("e905e6c6-c747-4805-942f-9904a0281f02", "video").as_deref(),
            Some("live/E905E6C6-C747-4805-942F-9904A0281F02/video.json")
        );
        assert_eq!(live_photo_half("../meta", "photo"), None);
        assert_eq!(live_photo_half("", "photo"), None);
        assert_eq!(live_photo_half(&"A".repeat(65), "photo"), None);
    }

    #[test]
    fn own_objects_are_recognized() {
        for own in [
            "thumbs/e/c/9/x.jpg",
            "videos/e/x.avc.mp4",
            "meta/e/c/9/x.json",
            "backfill/cursor.json",
            "live/E905E6C6-C747-4805-942F-9904A0281F02/photo.json",
        ] {
            assert!(is_own_object(own), "{own}");
        }
        for original in ["originals/e/c/9/x.jpg", "in/thumbs/x.jpg", "thumbsx/y.jpg"] {
            assert!(!is_own_object(original), "{original}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        assert!(KeyLayout::new(0).is_err());
        assert!(KeyLayout::new(5).is_err());
        let l = KeyLayout::new(1).unwrap();
        assert_eq!(
            l.manifest(&hash()),
            "meta/e/ec952cab562a55d96ddff2a2fcc41e875393a27a.json"
        );
        let l = KeyLayout::new(4).unwrap();
        assert!(l.video(&hash()).starts_with("videos/e/c/9/5/"));
    }

    #[test]
    fn keys_parse_back_at_any_depth() {
        let h = hash();
        for depth in 1..=4 {
            let l = KeyLayout::new(depth).unwrap();
            for r in Rendition::all() {
                assert_eq!(
                    KeyLayout::parse(&l.thumb(&h, r)),
                    Ok((h, KeyKind::Thumb(r)))
                );
            }
            assert_eq!(KeyLayout::parse(&l.video(&h)), Ok((h, KeyKind::Video)));
            assert_eq!(
                KeyLayout::parse(&l.manifest(&h)),
                Ok((h, KeyKind::Manifest))
            );
            assert_eq!(
                KeyLayout::parse(&l.original(&h, "heic")),
                Ok((h, KeyKind::Original("heic".into())))
            );
        }
    }

    #[test]
    fn path_tricks_and_foreign_keys_are_rejected() {
        for key in [
            "",
            "thumbs",
            "thumbs/e/c/9/../../etc/passwd",
            "thumbs/x/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a_720x720_fit.jpg",
            "thumbs/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a_721x720_fit.jpg",
            "thumbs/ec952cab562a55d96ddff2a2fcc41e875393a27a_720x720_fit.jpg",
            "other/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a.json",
            "originals/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a.",
            "originals/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27a./x",
            "meta/e/c/9/ec952cab562a55d96ddff2a2fcc41e875393a27A.json",
        ] {
            assert!(KeyLayout::parse(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn extensions_are_sanitized() {
        assert_eq!(sanitize_extension("../../x"), "x");
        assert_eq!(sanitize_extension(""), "bin");
        assert_eq!(sanitize_extension("HEIC"), "heic");
        assert_eq!(sanitize_extension("verylongextension"), "verylong");
    }
}
