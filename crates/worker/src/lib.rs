//! thumbfarm-worker: turns jobs into stored thumbnails and transcodes.
//!
//! - [`render`]: the image pipeline (decode once, orient, convert to sRGB,
//!   resize along the cascade, encode);
//! - [`video`]: the video pipeline (probe, remux or transcode to AVC MP4,
//!   poster frames);
//! - [`consumer`]: the job loop (queue in, store out, events, acks);
//! - [`metrics`]: Prometheus metrics and the health endpoint.

pub mod config;
pub mod consumer;
pub mod metrics;
pub mod render;
pub mod video;
