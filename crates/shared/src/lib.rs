//! thumbfarm-shared: everything the API and the workers must agree on.
//!
//! - [`sizes`]: the size table, limits and output geometry; [`renditions`]: a size in an output format (JPEG, WebP, AVIF);
//! - [`hash`] and [`keys`]: asset hashes and the storage key layout;
//! - [`tokens`]: URL tokens for the three token modes;
//! - [`messages`] and [`manifest`]: job, event and ingest messages, asset manifests;
//! - [`animation`]: whether a PNG or WebP is animated;
//! - [`motion_photo`]: where the MP4 inside a motion photo is (a bounds-checked byte parser);
//! - [`store`]: object storage (S3 and a local directory);
//! - [`queue`]: messaging (AMQP and in-process);
//! - [`config`]: command-line and environment options;
//! - [`retry`]: the transient/permanent split of every piece of work, and retrying with backoff;
//! - [`time`]: RFC 3339 timestamps; [`signals`]: the stop signal;
//! - [`failure`]: what kind of failure a worker's reason describes, and what anonymous clients may see of it.

pub mod animation;
pub mod config;
pub mod failure;
pub mod hash;
mod key_turns;
pub mod keys;
pub mod manifest;
pub mod messages;
pub mod motion_photo;
pub mod queue;
pub mod renditions;
pub mod retry;
pub mod signals;
pub mod sizes;
pub mod stdout;
pub mod store;
pub mod time;
pub mod tokens;

pub use hash::AssetHash;
pub use keys::KeyLayout;
pub use manifest::Manifest;
pub use renditions::{OutputFormat, Rendition};
pub use sizes::{Size, SizeLimits};
