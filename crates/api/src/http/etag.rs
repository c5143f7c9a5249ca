//! Conditional requests: `If-None-Match` against an entity tag.

use axum::http::HeaderValue;

/// Whether an `If-None-Match` header matches `etag` (unquoted), with the weak
/// comparison RFC 9110 prescribes for it.
pub fn etag_matches(if_none_match: &HeaderValue, etag: &str) -> bool {
    let Ok(value) = if_none_match.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let m = |v: &'static str| etag_matches(&HeaderValue::from_static(v), "abc");
        assert!(m("\"abc\""));
        assert!(m("W/\"abc\""));
        assert!(m("\"x\", \"abc\""));
        assert!(m("*"));
        assert!(!m("\"abcd\""));
        assert!(!m(""));
    }
}
