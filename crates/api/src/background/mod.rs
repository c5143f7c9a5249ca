//! The API's background processes: the ingest planner (`thumbfarm.ingest`
//! → jobs), the backfill (manifests → missing outputs → jobs) and the
//! queue-stats poller (broker → `/metrics`).

pub mod backfill;
pub mod ingest_events;
pub mod ingest_planner;
pub mod management_api;
pub mod queue_stats;
