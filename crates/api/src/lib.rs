//! thumbfarm-api: the HTTP API of thumbfarm. It never decodes an image or a
//! video: rendering is the worker's (`thumbfarm-worker`, or in-process in
//! the `thumbfarm` single-machine binary).
//!
//! The parts, in the order a request meets them:
//! - [`router`]: every route with its handler and listener; [`state`]:
//!   [`AppState`], what every handler reads;
//! - [`routes`]: the handlers (thumbnails, videos, preview lists, ingest,
//!   status, operations), with [`http`] (errors, placeholders, API keys,
//!   `Range`) and [`urls`] (minting URLs);
//! - [`services`]: what the routes use (the on-demand coordinator, the hot
//!   cache, the status board);
//! - [`planning`]: every job the API publishes is built there;
//! - [`background`]: the ingest planner, the backfill, the queue-stats
//!   poller;
//! - [`server`]: `serve` (listeners, background processes, sidecars such as
//!   an in-process worker); [`cli`]: the other subcommands; [`config`]:
//!   their options;
//! - [`metrics`], [`openapi`].

pub mod background;
pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod planning;
pub mod router;
pub mod routes;
pub mod server;
pub mod services;
pub mod state;
pub mod urls;

pub use config::{ApiOptions, ServeArgs};
pub use router::{router, routes};
pub use server::{serve, ServeError, Server, Sidecar};
pub use state::AppState;
