//! thumbfarm-worker: turns jobs into stored thumbnails and transcodes.
//!
//! The data flows one way: [`intake`] takes a delivery → [`settle`] runs
//! its job from [`jobs`] and settles it → the jobs use the pipelines
//! [`render`] (images) and [`video`] (FFmpeg) and write to the store.
//!
//! - [`options`] and [`config`]: what the worker does, from flags and
//!   `THUMBFARM_*` variables;
//! - [`metrics`]: Prometheus metrics and the health endpoints; [`health`]:
//!   readiness (not ready while the store refuses the configuration).

pub mod config;
pub mod health;
pub mod intake;
pub mod isolation;
pub mod jobs;
pub mod live_photo;
pub mod metrics;
pub mod options;
pub mod render;
pub mod settle;
pub mod video;

pub use options::{JobKind, WorkerOptions};
