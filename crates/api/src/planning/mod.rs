//! Where jobs are planned: [`jobs`] builds every job the API publishes,
//! whichever part asks (the on-demand coordinator, the ingest route, the
//! ingest planner, the backfill).

pub mod jobs;

pub use jobs::{Original, PlannedJob};
