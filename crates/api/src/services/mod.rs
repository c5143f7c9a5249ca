//! The services behind the routes: the on-demand coordinator (one job and
//! one wait per missing asset), the hot cache of thumbnails and manifests,
//! the status board, and clearing recorded failures.

pub mod failures;
pub mod hot_cache;
pub mod ondemand;
pub mod status_board;
