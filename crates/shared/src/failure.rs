//! What kind of failure a worker's reason describes, and the generic text
//! that may be shown to anonymous clients.
//!
//! Workers write detailed reasons (library messages, store keys, bucket
//! names) into events, logs and the dead-letter header. Those stay inside:
//! anonymous clients (the `X-Thumbfarm-Reason` header, the SVG placeholder,
//! the status page without an API key) only ever see
//! [`FailureKind::public_text`].

use serde::{Deserialize, Serialize};

/// A bounded classification of why an asset cannot be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A format the pipeline does not decode.
    Unsupported,
    /// Truncated, corrupt or not an image at all.
    Undecodable,
    /// Over the pixel, size or duration limits.
    OverLimits,
    /// The original is not where the manifest says.
    OriginalMissing,
    /// The job ran out of time.
    TimedOut,
    /// The decoder process died (signal, abort, out of memory).
    Crashed,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// Classifies a worker's reason by the prefixes the worker's errors use.
    pub fn of_reason(reason: &str) -> FailureKind {
        let r = reason.trim_start();
        let starts = |p: &str| r.starts_with(p);
        if starts("unsupported format") || starts("not a video") || starts("unknown video format") {
            FailureKind::Unsupported
        } else if starts("over the limits")
            || starts("original is ") && r.contains("over the")
            || starts("every size asked for is above")
            || starts("over the job memory limit")
        {
            FailureKind::OverLimits
        } else if starts("original missing") || starts("original is in bucket") {
            FailureKind::OriginalMissing
        } else if starts("timed out") || starts("took longer than") {
            FailureKind::TimedOut
        } else if starts("decoder crashed")
            || starts("renderer crashed")
            || starts("transcoder crashed")
        {
            FailureKind::Crashed
        } else if starts("cannot decode") || starts("encode failed") {
            FailureKind::Undecodable
        } else {
            FailureKind::Other
        }
    }

    /// The text anonymous clients may see: no keys, bucket names, paths or
    /// library messages.
    pub fn public_text(self) -> &'static str {
        match self {
            FailureKind::Unsupported => "cannot be rendered: unsupported format",
            FailureKind::Undecodable => "cannot be rendered: damaged file or not an image",
            FailureKind::OverLimits => "cannot be rendered: over the limits",
            FailureKind::OriginalMissing => "cannot be rendered: original unavailable",
            FailureKind::TimedOut => "cannot be rendered: took too long",
            FailureKind::Crashed => "cannot be rendered: decoder crashed",
            FailureKind::Other => "cannot be rendered",
        }
    }

    /// A metric label (`unsupported`, `undecodable`, …).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Unsupported => "unsupported",
            FailureKind::Undecodable => "undecodable",
            FailureKind::OverLimits => "over_limits",
            FailureKind::OriginalMissing => "original_missing",
            FailureKind::TimedOut => "timed_out",
            FailureKind::Crashed => "crashed",
            FailureKind::Other => "other",
        }
    }
}

/// The text of [`FailureKind::public_text`] for a worker's reason.
pub fn public_reason(reason: &str) -> &'static str {
    FailureKind::of_reason(reason).public_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_classified_without_leaking() {
        let cases = [
            ("unsupported format: camera RAW (Sony ARW)", FailureKind::Unsupported),
            ("cannot decode: JPEG: Premature end of JPEG file", FailureKind::Undecodable),
            ("over the limits: 30000x30000 exceeds", FailureKind::OverLimits),
            ("original is 900 bytes, over the 10 byte limit", FailureKind::OverLimits),
            (
                "original missing: originals/a/b/c/abc.jpg",
                FailureKind::OriginalMissing,
            ),
            (
                "original is in bucket \"secret-bucket\", which this worker's store (s3://x) does not reach",
                FailureKind::OriginalMissing,
            ),
            ("timed out after 3 s", FailureKind::TimedOut),
            ("decoder crashed: SIGSEGV", FailureKind::Crashed),
            ("something new", FailureKind::Other),
        ];
        for (reason, kind) in cases {
            assert_eq!(FailureKind::of_reason(reason), kind, "{reason}");
            let public = public_reason(reason);
            assert!(public.starts_with("cannot be rendered"), "{public}");
            assert!(!public.contains("secret-bucket") && !public.contains("originals/"));
        }
    }
}
