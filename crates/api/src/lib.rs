//! thumbfarm-api: the HTTP API of thumbfarm.
//!
//! - [`app`]: [`AppState`] and [`router`];
//! - [`routes`]: thumbnails (on demand), preview lists, ingest, operations;
//! - [`ondemand`]: the coordinator that turns concurrent misses into one job
//!   and one wait per asset;
//! - [`planner`]: which sizes a job renders;
//! - [`server`]: `thumbfarm-api serve` ([`serve`], [`Server`]);
//! - [`cli`]: the `ingest` and `url` subcommands;
//! - [`ingest_events`]: the ingest planner (`thumbfarm.ingest` → jobs);
//! - [`backfill`]: `thumbfarm-api backfill` (manifests → missing outputs → jobs);
//! - [`config`], [`metrics`], [`openapi`], [`placeholder`], [`error`].

pub mod app;
pub mod auth;
pub mod backfill;
pub mod broker_stats;
pub mod cli;
pub mod config;
pub mod error;
pub mod hot_cache;
pub mod ingest_events;
pub mod metrics;
pub mod ondemand;
pub mod openapi;
pub mod placeholder;
pub mod planner;
pub mod range;
pub mod routes;
pub mod server;
pub mod urls;

pub use app::{router, routes, AppState};
pub use config::{ApiOptions, ServeArgs};
pub use server::{serve, shutdown_signal, ServeError, Server};
