//! Decoding in a supervised child process (`--isolate-decoders`), so that a
//! memory fault or abort in a C decoder (libjpeg-turbo, libheif/libde265,
//! lcms2) costs one job, not the worker — or, in single-machine mode, the
//! API.
//!
//! - [`IsolatedRenderer`] keeps a pool of reusable children (one per job
//!   slot; spawning one per job would cost a process start each time), hands
//!   each the original's local path and the sizes, and reads back the
//!   outputs it wrote to a private directory.
//! - A child runs under an address-space limit (`--job-memory-limit`,
//!   default from `--max-pixels`), a wall-clock limit (`--job-timeout`),
//!   with an empty environment (no AWS or AMQP credentials) and no store or
//!   broker connection of its own.
//! - A child that dies becomes a permanent failure of that job with a clear
//!   reason (`decoder crashed: SIGSEGV`, `over the job memory limit
//!   (1.5 GiB)`, `took longer than 120 s`); the next job gets a fresh child.
//!
//! Still images go through it; video posters and transcodes (FFmpeg) still
//! run in the worker process.
//!
//! The child is the same binary started with [`CHILD_ARG`]; `main` calls
//! [`run_child_if_asked`] first thing.

mod child;
mod pool;
mod protocol;

pub use child::{run_child_if_asked, CHILD_ARG};
pub use pool::{IsolatedRenderer, IsolationLimits};
