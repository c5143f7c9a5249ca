//! The HTTP routes: thumbnails, videos, preview lists, ingest, the status
//! page and the operations endpoints. Each handler reads [`AppState`](crate::state::AppState).

pub mod ingest;
pub mod manifests;
pub mod ops;
pub mod previews;
pub mod status;
pub mod thumbs;
pub mod videos;
