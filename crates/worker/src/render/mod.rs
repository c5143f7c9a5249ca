//! The render pipeline: one decode per job, then every requested size along
//! the cascade. The steps are listed, in order, in [`pipeline`]:
//! probe → plan → decode → orient → colour → resize cascade → encode.
//!
//! - [`header`], [`probe`](mod@probe), [`limits`]: what the header says and
//!   the limits checked before any pixel buffer exists;
//! - [`cascade`]: which sizes, from where;
//! - [`decode`] with the decoders [`jpeg`] (libjpeg-turbo 3, DCT scaling),
//!   [`heif`] (libheif 1.23, 16 bits for 10/12-bit images), [`camera_raw`]
//!   (embedded previews or a [`raw`] develop) and [`generic`] (the `image`
//!   crate);
//! - [`hdr`]: whether an original is HDR; [`tonemap`]: PQ/HLG to SDR;
//! - [`orient`], [`color`], [`resize`] (and [`resize16`]), [`encode`]: the
//!   per-output steps; [`placeholder`]: the asset's ThumbHash;
//! - [`pixels`], [`options`], [`error`]: the types they share.

mod camera_raw;
mod cascade;
mod color;
mod decode;
mod encode;
mod error;
mod generic;
mod hdr;
mod header;
mod heif;
mod jpeg;
mod limits;
mod options;
mod orient;
mod pipeline;
mod pixels;
mod placeholder;
mod probe;
pub mod raw;
mod resize;
mod resize16;
mod tonemap;

pub use encode::{encode_avif, encode_png, encode_webp, JpegEncoder};
pub use error::RenderError;
pub use options::{RenderOptions, DEFAULT_AVIF_QUALITY, DEFAULT_WEBP_QUALITY};
pub use pipeline::{
    probe_bytes, probe_file, render_bytes, render_file, ProbeResult, RenderResult, RenderedOutput,
};
pub use probe::{detect, ImageFormat};
pub use raw::RawKind;
