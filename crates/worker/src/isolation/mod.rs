//! Decoding in supervised child processes (`--isolate-decoders`, on by
//! default), so that a memory fault or abort in a C decoder (libjpeg-turbo,
//! libheif/libde265, lcms2, FFmpeg) costs one job, not the worker — or, in
//! single-machine mode, the API.
//!
//! - [`work`]: the decoder work of a job — rendering an original's sizes (a
//!   still, or a video's poster frame) and making its AVC MP4. The same
//!   functions run in a child or, with isolation off, in the worker.
//! - [`DecoderChildren`] keeps reusable children (one per job slot: spawning
//!   one per job would cost a process start each time), hands each the
//!   original's local path, and reads back the outputs it wrote to the job's
//!   private directory.
//! - A child runs under an address-space limit (`--job-memory-limit`,
//!   default from `--max-pixels`), a wall-clock limit (`--job-timeout` for
//!   renders and posters, the transcode limit for transcodes), with an empty
//!   environment (no AWS or AMQP credentials) in its own process group, and
//!   with no store or broker connection of its own.
//! - A child that dies becomes a permanent failure of that job with a clear
//!   reason (`decoder crashed: SIGSEGV`, `over the job memory limit
//!   (1.5 GiB)`, `took longer than 120 s`); the next job gets a fresh child.
//!
//! The child is the same binary started with [`CHILD_ARG`]; `main` calls
//! [`run_child_if_asked`] first thing.

mod child;
mod pool;
mod protocol;
pub mod work;

pub use child::{run_child_if_asked, CHILD_ARG};
pub use pool::{DecoderChildren, IsolationLimits, NO_MEMORY_LIMIT};
