//! What every route shares: error responses and placeholders, API-key
//! checks, `Range` parsing.

pub mod auth;
pub mod error;
pub mod placeholder;
pub mod range;
