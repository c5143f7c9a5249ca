//! FFmpeg's one-time initialisation.

use super::error::VideoError;
use ffmpeg_next as ffmpeg;
use std::sync::OnceLock;

/// Initializes FFmpeg once (quiet logging: errors only).
pub(crate) fn init() -> Result<(), VideoError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
        Ok(())
    })
    .clone()
    .map_err(|e| VideoError::Encode(format!("FFmpeg initialization: {e}")))
}
