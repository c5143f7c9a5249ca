//! The HTTP routes: thumbnails, videos, preview lists, ingest, retrying an
//! asset's failures, the status
//! page and the operations endpoints. Each handler reads [`AppState`](crate::state::AppState).

pub mod assets;
pub mod ingest;
pub mod manifests;
pub mod ops;
pub mod placeholders;
pub mod previews;
pub mod status;
pub mod thumbs;
pub mod videos;
