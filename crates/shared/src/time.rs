//! Timestamps as thumbfarm writes them: RFC 3339 in UTC, whole seconds
//! (`2024-05-01T12:00:00Z`). Manifests written by older workers may carry an
//! HTTP date instead; [`parse_timestamp`] reads both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats seconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A point in time as RFC 3339 (times before the epoch read as the epoch).
pub fn rfc3339_of(t: SystemTime) -> String {
    rfc3339(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// The current time as RFC 3339.
pub fn rfc3339_now() -> String {
    rfc3339_of(SystemTime::now())
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.5+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = rest.get(1..)?;
            let (oh, om) = hm.split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Parses a stored timestamp: RFC 3339, or an HTTP date (older manifests).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    parse_rfc3339(s).or_else(|| httpdate::parse_http_date(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
        assert_eq!(parse_rfc3339(&rfc3339(1_234_567_890)), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20.25+02:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert!(parse_rfc3339("2023-13-01T00:00:00Z").is_none());
        assert_eq!(
            parse_timestamp("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert!(parse_timestamp("yesterday").is_none());
    }
}
