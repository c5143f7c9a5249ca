//! Building thumbnail URLs.

use thumbfarm_shared::renditions::Rendition;
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::tokens::{Subject, TokenPolicy};
use thumbfarm_shared::AssetHash;

/// The path prefix of thumbnail URLs.
pub const THUMB_PREFIX: &str = "/api/v1/t";

/// The URL of `size` of `hash`, with a freshly minted token: relative
/// (`/api/v1/t/<hash>/<token>/<size>`) or below `public_url` when set
/// (normalized, without a trailing slash).
pub fn thumb_url(
    tokens: &TokenPolicy,
    public_url: Option<&str>,
    hash: &AssetHash,
    size: Size,
) -> String {
    let token = tokens.mint(hash, Subject::Thumb(size.into()));
    format!(
        "{}{THUMB_PREFIX}/{hash}/{token}/{}",
        public_url.unwrap_or(""),
        size.name()
    )
}

/// The URL of `rendition` of `hash` naming its format (`…/tile_500.webp`,
/// `…/tile_500.jpg`, `…/colors.png`): the CDN-safe form, never negotiated.
pub fn rendition_url(
    tokens: &TokenPolicy,
    public_url: Option<&str>,
    hash: &AssetHash,
    rendition: Rendition,
) -> String {
    let token = tokens.mint(hash, Subject::Thumb(rendition));
    format!(
        "{}{THUMB_PREFIX}/{hash}/{token}/{}.{}",
        public_url.unwrap_or(""),
        rendition.size.name(),
        rendition.file_format().extension()
    )
}

/// The URL of the ThumbHash placeholder PNG of `hash`.
pub fn placeholder_url(tokens: &TokenPolicy, public_url: Option<&str>, hash: &AssetHash) -> String {
    let token = tokens.mint(hash, Subject::Placeholder);
    format!(
        "{}{THUMB_PREFIX}/{hash}/{token}/thumbhash",
        public_url.unwrap_or("")
    )
}

/// The path prefix of video URLs.
pub const VIDEO_PREFIX: &str = "/api/v1/videos";

/// The URL of the `format` (`avc`) transcode of the video `hash`.
pub fn video_url(
    tokens: &TokenPolicy,
    public_url: Option<&str>,
    hash: &AssetHash,
    format: &str,
) -> String {
    let token = tokens.mint(hash, Subject::Video(format));
    format!(
        "{}{VIDEO_PREFIX}/{hash}/{token}/{format}",
        public_url.unwrap_or("")
    )
}

/// Decodes `%XX` escapes (hex digits only); anything else, including a
/// malformed escape, is kept as it is. Invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        let h = AssetHash::of_bytes(b"abc");
        assert_eq!(
            thumb_url(&TokenPolicy::Public, None, &h, Size::Fit720),
            format!("/api/v1/t/{h}/public/fit_720")
        );
        assert_eq!(
            thumb_url(
                &TokenPolicy::Public,
                Some("https://x.example"),
                &h,
                Size::Tile50
            ),
            format!("https://x.example/api/v1/t/{h}/public/tile_50")
        );
        assert_eq!(
            video_url(&TokenPolicy::Public, None, &h, "avc"),
            format!("/api/v1/videos/{h}/public/avc")
        );
    }
}
