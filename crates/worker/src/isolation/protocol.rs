//! What the worker and a decoder child say to each other: one JSON line per
//! request on the child's stdin, one JSON line per reply on its stdout. The
//! encoded outputs travel as files in a directory the worker chose.

use crate::render::{RenderError, RenderOptions};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use thumbfarm_shared::manifest::HdrInfo;
use thumbfarm_shared::sizes::Size;

/// Render `sizes` of the image at `source`, writing each output to `out_dir`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub source: PathBuf,
    pub sizes: Vec<Size>,
    pub options: WireOptions,
    pub out_dir: PathBuf,
}

/// [`RenderOptions`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireOptions {
    pub jpeg_quality: u8,
    pub jpeg_quality_small: u8,
    pub max_pixels: u64,
    pub max_file_size: u64,
    pub max_dimension: u32,
}

impl From<&RenderOptions> for WireOptions {
    fn from(o: &RenderOptions) -> Self {
        WireOptions {
            jpeg_quality: o.jpeg_quality,
            jpeg_quality_small: o.jpeg_quality_small,
            max_pixels: o.max_pixels,
            max_file_size: o.max_file_size,
            max_dimension: o.max_dimension,
        }
    }
}

impl From<WireOptions> for RenderOptions {
    fn from(o: WireOptions) -> Self {
        RenderOptions {
            jpeg_quality: o.jpeg_quality,
            jpeg_quality_small: o.jpeg_quality_small,
            max_pixels: o.max_pixels,
            max_file_size: o.max_file_size,
            max_dimension: o.max_dimension,
        }
    }
}

/// The answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Every output is in the request's `out_dir`.
    Rendered(Rendered),
    /// The render failed the ordinary way (the child lives on).
    Failed(Failure),
}

/// A finished render; `media_type` is read again by the worker from the
/// original's first bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub decode_millis: f64,
    pub hdr: Option<HdrInfo>,
    pub outputs: Vec<Output>,
}

/// One output file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Output {
    pub size: Size,
    pub width: u32,
    pub height: u32,
    pub millis: f64,
    pub file: PathBuf,
}

/// A [`RenderError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum Failure {
    Unsupported(String),
    Decode(String),
    TooLarge(String),
    Encode(String),
    Io(String),
    Crashed(String),
}

impl From<&RenderError> for Failure {
    fn from(e: &RenderError) -> Self {
        match e {
            RenderError::Unsupported(m) => Failure::Unsupported(m.clone()),
            RenderError::Decode(m) => Failure::Decode(m.clone()),
            RenderError::TooLarge(m) => Failure::TooLarge(m.clone()),
            RenderError::Encode(m) => Failure::Encode(m.clone()),
            RenderError::Io(e) => Failure::Io(e.to_string()),
            RenderError::Crashed(m) => Failure::Crashed(m.clone()),
        }
    }
}

impl From<Failure> for RenderError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unsupported(m) => RenderError::Unsupported(m),
            Failure::Decode(m) => RenderError::Decode(m),
            Failure::TooLarge(m) => RenderError::TooLarge(m),
            Failure::Encode(m) => RenderError::Encode(m),
            Failure::Io(m) => RenderError::Io(std::io::Error::other(m)),
            Failure::Crashed(m) => RenderError::Crashed(m),
        }
    }
}
