//! The video pipeline (FFmpeg through `ffmpeg-next`, Debian's FFmpeg 5.1).
//!
//! - [`probe`]: container, streams, duration, rotation and the limits, read
//!   before any frame is decoded;
//! - [`transcode_file`]: the AVC MP4 for streaming. A source that already is
//!   H.264 (yuv420p) in an MP4/MOV container with AAC or no audio, upright and
//!   within the limits, is **remuxed** (packets copied, no re-encode);
//!   anything else is **transcoded** (H.264 + AAC, long side capped, even
//!   dimensions, yuv420p, rotation applied). Both write `moov` before `mdat`
//!   (`movflags=+faststart`) and drop the source's metadata;
//! - [`hdr`]: PQ, HLG and Dolby Vision sources are tone-mapped to SDR
//!   BT.709 (transcode and poster) and never remuxed; Dolby Vision profile 5
//!   fails for good;
//! - animated GIF/APNG (FFmpeg) and WebP (`image` frames, `animation.rs`)
//!   become short clips under frame, duration and pixel limits;
//! - [`motion_photo`]: the MP4 inside a motion photo, cut out for the
//!   same remux/transcode path;
//! - [`poster`]: a still frame at PhotoPrism's offsets, rendered through the
//!   normal image cascade;
//! - [`sniff`](looks_like_video): whether an original goes this way at all.
//!
//! The store-level transcode job is `crate::jobs::transcode`.
//!
//! Everything here blocks: call it from `spawn_blocking`.

mod animation;
mod avc;
mod error;
mod filters;
pub mod hdr;
mod init;
pub mod metrics;
pub mod motion_photo;
mod options;
pub mod poster;
pub mod probe;
mod progress;
mod remux;
mod sniff;
mod transcode;

pub use avc::{media_speed, transcode_file, TranscodeResult, VideoPath};
pub use error::VideoError;
pub use hdr::{ToneMap, VideoHdr, VideoTransfer};
pub use options::VideoOptions;
pub use poster::{extract_poster, poster_offset, render_poster_file, Poster};
pub use probe::{probe_file, VideoProbe};
pub use progress::publishes_progress;
pub use sniff::{file_looks_like_video, looks_like_video};
