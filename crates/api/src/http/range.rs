//! HTTP `Range` requests (RFC 9110 §14) for streamed videos.
//!
//! One byte range is served as 206. A `Range` header the server may ignore
//! (another unit, bad syntax, several ranges) gets the whole object as 200,
//! which RFC 9110 allows; a well-formed range that starts past the end is
//! 416.

use thumbfarm_shared::store::ByteRange;

/// What a `Range` header asks of an object of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole object (no header, or one that is ignored).
    Full,
    /// One satisfiable byte range.
    Partial(ByteRange),
    /// A well-formed range that does not overlap the object.
    Unsatisfiable,
}

/// Interprets a `Range` header value for an object of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(specs) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let mut parts = specs.split(',').map(str::trim);
    let (Some(spec), None) = (parts.next(), parts.next()) else {
        // Several ranges: served whole rather than as multipart.
        return RangeRequest::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse::<u64>().ok()
        }
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
        },
        (start, "") => match number(start) {
            None => RangeRequest::Full,
            Some(start) if start >= size => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Partial(ByteRange {
                start,
                end: size - 1,
            }),
        },
        (start, end) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial(ByteRange {
                        start,
                        end: end.min(size - 1),
                    })
                }
            }
            _ => RangeRequest::Full,
        },
    }
}

/// Whether an `If-Range` value still names the stored object (strong ETag
/// `etag`, unquoted, or its exact `Last-Modified` date); when it does not,
/// the `Range` header is ignored and the whole object is sent.
pub fn if_range_holds(if_range: &str, etag: &str, last_modified: Option<&str>) -> bool {
    let v = if_range.trim();
    if v.starts_with('"') {
        v.trim_matches('"') == etag
    } else if v.starts_with("W/") {
        false
    } else {
        last_modified.is_some_and(|lm| lm == v)
    }
}

/// The `Content-Range` value of a 206.
pub fn content_range(range: ByteRange, size: u64) -> String {
    format!("bytes {}-{}/{size}", range.start, range.end)
}

/// The `Content-Range` value of a 416.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start, end })
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), part(0, 99));
        assert_eq!(parse_range("bytes=500-", 1000), part(500, 999));
        assert_eq!(parse_range("bytes=-500", 1000), part(500, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), part(0, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), part(990, 999));
        assert_eq!(parse_range(" bytes= 10 - 20 ", 1000), part(10, 20));
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(
            parse_range("bytes=1000-", 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range("bytes=1000-1200", 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn ignored_ranges_mean_the_whole_object() {
        for v in [
            "",
            "items=0-1",
            "bytes=",
            "bytes=abc",
            "bytes=5-1",
            "bytes=-",
            "bytes=+1-2",
            "bytes=0-1,5-9",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(v, 1000), RangeRequest::Full, "{v:?}");
        }
    }

    #[test]
    fn if_range_forms() {
        assert!(if_range_holds("\"abc\"", "abc", None));
        assert!(!if_range_holds("\"abd\"", "abc", None));
        assert!(!if_range_holds("W/\"abc\"", "abc", None));
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert!(if_range_holds(date, "abc", Some(date)));
        assert!(!if_range_holds(date, "abc", None));
    }

    #[test]
    fn header_values() {
        assert_eq!(
            content_range(ByteRange { start: 0, end: 9 }, 100),
            "bytes 0-9/100"
        );
        assert_eq!(unsatisfied_range(100), "bytes */100");
    }
}
