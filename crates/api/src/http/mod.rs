//! What every route shares: error responses and placeholders, API-key
//! checks, `Range` parsing, `If-None-Match`, `Accept` negotiation of thumbnail formats.

pub mod auth;
pub mod error;
pub mod etag;
pub mod negotiate;
pub mod placeholder;
pub mod range;
