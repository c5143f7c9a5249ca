//! Error responses: SVG placeholders on the thumbnail routes, JSON elsewhere.

use crate::http::placeholder::{self, Icon};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use thumbfarm_shared::failure::public_reason;
use thumbfarm_shared::store::StoreError;

/// The header that says why a request was refused or failed.
pub const REASON_HEADER: HeaderName = HeaderName::from_static("x-thumbfarm-reason");

/// Reduces free text to a valid, short header value (printable ASCII only).
pub fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect();
    HeaderValue::from_str(clean.trim()).unwrap_or_else(|_| HeaderValue::from_static("error"))
}

/// Why a thumbnail request did not produce an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbError {
    /// The hash segment is not 40 lowercase hex characters.
    #[error("malformed hash")]
    BadHash,
    /// The token does not grant this URL.
    #[error("invalid token")]
    BadToken,
    /// The size name is not in the size table, or names a format that is
    /// not served (`tile_500.gif`, `colors.webp`, a format left out of
    /// `--formats`).
    #[error("unknown size")]
    UnknownSize,
    /// The asset has no ThumbHash (yet): its render job has not run.
    #[error("no placeholder yet")]
    NoPlaceholder,
    /// The video format is not one thumbfarm makes (only `avc`).
    #[error("unknown video format")]
    UnknownFormat,
    /// A video URL for an asset that is neither a video nor a GIF.
    #[error("asset is not a video")]
    NotVideo,
    /// The size is above the dynamic size limit.
    #[error("size above dynamic limit")]
    AboveLimit,
    /// No manifest for this hash.
    #[error("unknown asset")]
    UnknownAsset,
    /// The size does not exist for this original (`left_224` of a square).
    #[error("size not applicable to this original")]
    NotApplicable,
    /// The thumbnail was not rendered before the deadline.
    #[error("thumbnail not ready yet")]
    Timeout {
        /// Value of `Retry-After`.
        retry_after: Duration,
    },
    /// The original cannot be rendered.
    #[error("cannot render: {reason}")]
    Failed {
        /// The worker's reason.
        reason: String,
    },
    /// The store or the queue failed; retrying may help.
    #[error("temporarily unavailable: {reason}")]
    Unavailable {
        /// What failed (logged, shortened in the response).
        reason: String,
        /// Value of `Retry-After`.
        retry_after: Duration,
    },
}

impl ThumbError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ThumbError::BadHash => StatusCode::BAD_REQUEST,
            ThumbError::BadToken => StatusCode::FORBIDDEN,
            ThumbError::UnknownSize
            | ThumbError::UnknownFormat
            | ThumbError::NotVideo
            | ThumbError::AboveLimit
            | ThumbError::UnknownAsset
            | ThumbError::NoPlaceholder
            | ThumbError::NotApplicable => StatusCode::NOT_FOUND,
            ThumbError::Timeout { .. } | ThumbError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ThumbError::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn icon(&self) -> Icon {
        match self {
            ThumbError::BadHash => Icon::BadRequest,
            ThumbError::BadToken => Icon::Forbidden,
            ThumbError::UnknownSize
            | ThumbError::UnknownFormat
            | ThumbError::NotVideo
            | ThumbError::AboveLimit
            | ThumbError::UnknownAsset
            | ThumbError::NoPlaceholder
            | ThumbError::NotApplicable => Icon::NotFound,
            ThumbError::Timeout { .. } | ThumbError::Unavailable { .. } => Icon::Pending,
            ThumbError::Failed { .. } => Icon::Failed,
        }
    }

    /// The text of `X-Thumbfarm-Reason` and the placeholder: generic, so
    /// that no store key, bucket name or library message reaches anonymous
    /// clients (the detail goes to the log).
    fn reason(&self) -> String {
        match self {
            ThumbError::Unavailable { .. } => "temporarily unavailable".to_string(),
            ThumbError::Failed { reason } => public_reason(reason).to_string(),
            other => other.to_string(),
        }
    }
}

/// Whole seconds for `Retry-After`, at least 1.
fn retry_after_value(d: Duration) -> HeaderValue {
    let secs = d.as_secs().max(1) + u64::from(d.subsec_nanos() > 0 && d.as_secs() > 0);
    HeaderValue::from(secs)
}

/// Headers every error body of the thumbnail routes carries.
pub fn placeholder_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
}

impl IntoResponse for ThumbError {
    fn into_response(self) -> Response {
        if let ThumbError::Failed { reason } = &self {
            tracing::info!(%reason, "answering 422: the asset cannot be rendered");
        }
        let reason = self.reason();
        let body = placeholder::svg(self.icon(), &reason);
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        placeholder_headers(headers);
        headers.insert(REASON_HEADER, header_text(&reason));
        match &self {
            ThumbError::Timeout { retry_after } | ThumbError::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, retry_after_value(*retry_after));
            }
            _ => {}
        }
        response
    }
}

/// Errors of the JSON routes (preview list, ingest, readiness).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// The hash is not known.
    #[error("unknown asset")]
    NotFound,
    /// The upload is larger than `--max-upload-bytes`.
    #[error("upload larger than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The asset's manifest is damaged (not valid JSON): re-ingesting the
    /// original repairs it.
    #[error("manifest damaged: re-ingest the original to repair it")]
    DamagedManifest,
    /// The store or the queue failed.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    /// The answer for a manifest that could not be read: 422 for a damaged
    /// one (its detail logged), 503 otherwise.
    pub fn from_manifest_read(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { key, message } => {
                tracing::error!(%key, %message, "damaged manifest: re-ingest the original to repair it");
                ApiError::DamagedManifest
            }
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DamagedManifest => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "request failed: backend unavailable");
                "temporarily unavailable".to_string()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": message, "status": self.status().as_u16() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"thumbfarm\""),
                );
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_always_valid() {
        assert_eq!(header_text("ok reason"), "ok reason");
        assert_eq!(header_text("a\nb\u{e9}"), "a?b?");
        assert_eq!(header_text(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn failure_reasons_are_generic() {
        let e = ThumbError::Failed {
            reason: "original missing: originals/a/b/c/x.jpg in s3://private-bucket".into(),
        };
        let r = e.into_response();
        let header = r.headers()[REASON_HEADER].to_str().unwrap().to_string();
        assert_eq!(header, "cannot be rendered: original unavailable");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_value(Duration::from_millis(200)), "1");
        assert_eq!(retry_after_value(Duration::from_secs(5)), "5");
        assert_eq!(retry_after_value(Duration::from_millis(5500)), "6");
    }
}
