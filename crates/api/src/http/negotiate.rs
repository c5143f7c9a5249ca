//! Picking a thumbnail format from a request's `Accept` header
//! (`--negotiate-format`).
//!
//! Only explicit mentions count: `image/avif` and `image/webp` with a
//! non-zero `q`. Wildcards (`image/*`, `*/*`) do not, since clients that send
//! only those (curl, old apps) may not decode AVIF or WebP; browsers that do
//! name them explicitly. JPEG is always acceptable.

use axum::http::HeaderValue;
use thumbfarm_shared::renditions::OutputFormat;

/// The first format of `preference` the `accept` header names (JPEG, when
/// reached, is always taken); JPEG when none is named.
pub fn negotiate(accept: Option<&HeaderValue>, preference: &[OutputFormat]) -> OutputFormat {
    let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
    preference
        .iter()
        .copied()
        .find(|f| *f == OutputFormat::Jpeg || names(accept, f.content_type()))
        .unwrap_or(OutputFormat::Jpeg)
}

/// Whether `accept` lists `media_type` itself with a `q` above 0.
fn names(accept: &str, media_type: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let matches = parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case(media_type));
        matches && parts.all(|p| !is_zero_q(p))
    })
}

/// Whether a parameter is `q=0` (`q=0`, `q=0.0`, `q=0.000`).
fn is_zero_q(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputFormat::*;

    fn pick(accept: &'static str, pref: &[OutputFormat]) -> OutputFormat {
        negotiate(Some(&HeaderValue::from_static(accept)), pref)
    }

    #[test]
    fn browsers_get_the_first_format_they_name() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(pick(chrome, &[Avif, Webp, Jpeg]), Avif);
        assert_eq!(pick(chrome, &[Webp, Avif, Jpeg]), Webp);
        assert_eq!(pick(chrome, &[Jpeg, Avif]), Jpeg, "the operator's order");
        let safari_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
        assert_eq!(pick(safari_15, &[Avif, Webp, Jpeg]), Webp);
    }

    #[test]
    fn wildcards_and_refusals_mean_jpeg() {
        assert_eq!(pick("*/*", &[Avif, Webp, Jpeg]), Jpeg);
        assert_eq!(pick("image/*", &[Avif, Webp, Jpeg]), Jpeg);
        assert_eq!(
            pick("image/avif;q=0, image/webp", &[Avif, Webp, Jpeg]),
            Webp
        );
        assert_eq!(pick("image/avif; q=0.0", &[Avif, Jpeg]), Jpeg);
        assert_eq!(pick("IMAGE/AVIF;Q=0.5", &[Avif, Jpeg]), Avif);
        assert_eq!(negotiate(None, &[Avif, Webp, Jpeg]), Jpeg);
        assert_eq!(pick("image/avif", &[Webp]), Jpeg, "not served: JPEG");
    }
}
