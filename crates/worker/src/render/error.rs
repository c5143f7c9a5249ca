//! Why a render failed, and the last line of defence against a decoder that
//! panics.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Not an image format the pipeline decodes (RAW, video, PSD, ...).
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// Truncated, corrupt or hostile data.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Over the file size, dimension or pixel count limits.
    #[error("over the limits: {0}")]
    TooLarge(String),
    /// The encoder failed.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Reading the original failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The decoder child died or overran its limits (`decoder crashed:
    /// SIGSEGV`, `over the job memory limit (1.5 GiB)`, `took longer than
    /// 120 s`); see `crate::isolation`.
    #[error("{0}")]
    Crashed(String),
}

impl RenderError {
    /// Whether retrying cannot help (bad or hostile input).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, RenderError::Io(_))
    }
}

/// Runs `f`, turning a panic inside a decoder into a permanent error (a last
/// line of defence: hostile files must never take the worker down).
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(RenderError::Decode(format!("decoder panicked: {msg}")))
        }
    }
}
