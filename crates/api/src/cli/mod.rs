//! The client subcommands: `ingest` and `url`.

pub mod ingest;
pub mod url;
