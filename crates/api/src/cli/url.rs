//! `thumbfarm-api url HASH SIZE [--format webp]`: prints a valid URL for the
//! token mode (`SIZE` may be `avc` for a video's transcode, `thumbhash` for
//! the placeholder PNG).

use crate::config::{normalize_public_url, UrlArgs};
use crate::urls::{placeholder_url, rendition_url, thumb_url, video_url};
use thumbfarm_shared::config::ConfigError;
use thumbfarm_shared::renditions::{OutputFormat, Rendition, UnknownFormat};
use thumbfarm_shared::sizes::{Size, UnknownSize};
use thumbfarm_shared::AssetHash;

/// Why no URL could be made.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// The hash is malformed.
    #[error("{0}")]
    Hash(#[from] thumbfarm_shared::hash::InvalidHash),
    /// The size is not in the table.
    #[error("{0}")]
    Size(#[from] UnknownSize),
    /// The format is not one thumbfarm serves, or not for this size.
    #[error("{0}")]
    Format(#[from] UnknownFormat),
    /// `--format` with a video or the placeholder.
    #[error("--format applies to thumbnail sizes only, not {0}")]
    FormatOfNonThumbnail(String),
    /// The size is above the dynamic limit: its URL would answer 404.
    #[error("{0} is above the dynamic size limit ({1} px): its URL would answer 404")]
    AboveLimit(Size, u32),
    /// Token options are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--public-url` is invalid.
    #[error("invalid option --public-url: {0}")]
    PublicUrl(String),
}

/// The URL `thumbfarm-api url` prints.
pub fn url_for(args: &UrlArgs) -> Result<String, UrlError> {
    let hash = AssetHash::parse(args.hash.trim())?;
    let wanted = args.size.trim();
    let special = wanted == thumbfarm_shared::keys::AVC || wanted == "thumbhash";
    let format = args
        .format
        .as_deref()
        .map(str::parse::<OutputFormat>)
        .transpose()?;
    if special && format.is_some() {
        return Err(UrlError::FormatOfNonThumbnail(wanted.to_string()));
    }
    let size = if special {
        None
    } else {
        Some(wanted.parse::<Size>()?)
    };
    let limits = args.sizes.limits();
    if let Some(size) = size.filter(|s| !limits.allows_on_request(*s)) {
        return Err(UrlError::AboveLimit(size, limits.dynamic_limit()));
    }
    let tokens = args.tokens.policy()?;
    let base = args
        .public_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(normalize_public_url)
        .transpose()
        .map_err(UrlError::PublicUrl)?;
    Ok(match (size, format) {
        (Some(size), Some(format)) => {
            let rendition = Rendition::new(size, format)
                .ok_or_else(|| UnknownFormat(format!("{format} of {size}")))?;
            rendition_url(&tokens, base.as_deref(), &hash, rendition)
        }
        (Some(size), None) => thumb_url(&tokens, base.as_deref(), &hash, size),
        (None, _) if wanted == "thumbhash" => placeholder_url(&tokens, base.as_deref(), &hash),
        (None, _) => video_url(&tokens, base.as_deref(), &hash, wanted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, Command, ToolCommand};
    use clap::Parser;

    fn args(extra: &[&str]) -> UrlArgs {
        let mut argv = vec!["thumbfarm-api", "url"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Tool(ToolCommand::Url(a)) => a,
            _ => unreachable!(),
        }
    }

    const H: &str = "ec952cab562a55d96ddff2a2fcc41e875393a27a";

    #[test]
    fn urls_per_mode() {
        assert_eq!(
            url_for(&args(&[H, "fit_720", "--token-mode", "public"])).unwrap(),
            format!("/api/v1/t/{H}/public/fit_720")
        );
        assert_eq!(
            url_for(&args(&[
                H,
                "tile_50",
                "--token-mode",
                "preview-token",
                "--preview-tokens",
                "new1,old1",
                "--public-url",
                "https://x.example/"
            ]))
            .unwrap(),
            format!("https://x.example/api/v1/t/{H}/new1/tile_50")
        );
        let signed = url_for(&args(&[
            H,
            "tile_50",
            "--token-mode",
            "signed",
            "--signing-keys",
            "k1:0123456789abcdef",
        ]))
        .unwrap();
        assert!(signed.contains("/k1."), "{signed}");
        assert_eq!(
            url_for(&args(&[H, "avc", "--token-mode", "public"])).unwrap(),
            format!("/api/v1/videos/{H}/public/avc")
        );
        assert_eq!(
            url_for(&args(&[
                H,
                "tile_500",
                "--format",
                "webp",
                "--token-mode",
                "public"
            ]))
            .unwrap(),
            format!("/api/v1/t/{H}/public/tile_500.webp")
        );
        assert_eq!(
            url_for(&args(&[H, "thumbhash", "--token-mode", "public"])).unwrap(),
            format!("/api/v1/t/{H}/public/thumbhash")
        );
        let signed_webp = url_for(&args(&[
            H,
            "tile_50",
            "--format",
            "webp",
            "--token-mode",
            "signed",
            "--signing-keys",
            "k1:0123456789abcdef",
        ]))
        .unwrap();
        assert!(signed_webp.ends_with("/tile_50.webp"), "{signed_webp}");
        let token = |url: &str| url.split('/').nth(5).unwrap_or_default().to_string();
        assert_ne!(
            token(&signed_webp),
            token(&signed),
            "the signature covers the format"
        );
        for bad in [
            &[H, "tile_50", "--format", "gif", "--token-mode", "public"][..],
            &[H, "colors", "--format", "webp", "--token-mode", "public"],
            &[H, "avc", "--format", "webp", "--token-mode", "public"],
        ] {
            assert!(url_for(&args(bad)).is_err(), "{bad:?}");
        }
        assert!(url_for(&args(&["nothex", "tile_50", "--token-mode", "public"])).is_err());
        assert!(url_for(&args(&[H, "fit_999", "--token-mode", "public"])).is_err());
        assert!(matches!(
            url_for(&args(&[
                H,
                "fit_7680",
                "--token-mode",
                "public",
                "--dynamic-size-limit",
                "1920"
            ])),
            Err(UrlError::AboveLimit(..))
        ));
    }
}
