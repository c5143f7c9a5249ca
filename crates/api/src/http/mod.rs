//! What every route shares: error responses and placeholders, API-key
//! checks, `Range` parsing, answering a stored entity (headers, 304/HEAD), `Accept` negotiation of thumbnail formats.

pub mod auth;
pub mod entity;
pub mod error;
pub mod negotiate;
pub mod placeholder;
pub mod range;
