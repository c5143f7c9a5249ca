//! Building thumbnail URLs.

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
    let token = tokens.mint(hash, Subject::Thumb(size));
    format!(
        "{}{THUMB_PREFIX}/{hash}/{token}/{}",
        public_url.unwrap_or(""),
        size.name()
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
