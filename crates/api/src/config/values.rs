//! Parsers of option values shared by several commands.

use std::time::{Duration, SystemTime};
use thumbfarm_shared::time::parse_timestamp;

/// Parses a number of seconds (fractions allowed, `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} must be between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Normalizes a `--public-url`: must be http(s), no trailing slash.
pub fn normalize_public_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?} must not contain a query, fragment or space"
        ));
    }
    Ok(url.to_string())
}

/// Parses `--since`: RFC 3339, an HTTP date, or a duration ago
/// (`90s`, `15m`, `24h`, `7d`, `2w`).
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Some(t) = parse_timestamp(s) {
        return Ok(t);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor a duration like 24h"))?;
    let unit_secs = match unit.trim() {
        "s" | "" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    let secs = n * unit_secs;
    if !secs.is_finite() || !(0.0..=100.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    now.checked_sub(Duration::from_secs_f64(secs))
        .ok_or_else(|| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn since_parses_timestamps_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_since("24h", now).unwrap(),
            now - Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            now - Duration::from_secs(5400)
        );
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            parse_since("2023-11-15T00:13:20.25+02:00", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            parse_since("Tue, 14 Nov 2023 22:13:20 GMT", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5 parsecs", now).is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_seconds("5s").unwrap(), Duration::from_secs(5));
        assert!(parse_seconds("soon").is_err() && parse_seconds("-1").is_err());
    }
}
