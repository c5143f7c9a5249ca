//! API-key checks for the preview list and ingest.

use crate::http::error::ApiError;
use axum::http::{header, HeaderMap};
use thumbfarm_shared::tokens::constant_time_eq;

/// Checks `Authorization: Bearer <key>` against the configured keys in
/// constant time. With no keys configured every request is refused.
pub fn check_api_key(keys: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    // Compare against every key, without stopping early.
    let ok = keys
        .iter()
        .fold(false, |ok, key| ok | constant_time_eq(presented, key));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_keys() {
        let keys = vec![
            "k1-0123456789abcdef".to_string(),
            "k2-0123456789abcdef".to_string(),
        ];
        assert!(check_api_key(&keys, &headers("Bearer k2-0123456789abcdef")).is_ok());
        assert!(check_api_key(&keys, &headers("bearer  k1-0123456789abcdef ")).is_ok());
        assert!(check_api_key(&keys, &headers("Bearer k3-0123456789abcdef")).is_err());
        assert!(check_api_key(&keys, &headers("Basic k1-0123456789abcdef")).is_err());
        assert!(check_api_key(&keys, &headers("Bearer ")).is_err());
        assert!(check_api_key(&keys, &HeaderMap::new()).is_err());
        assert!(check_api_key(&[], &headers("Bearer k1-0123456789abcdef")).is_err());
    }
}
