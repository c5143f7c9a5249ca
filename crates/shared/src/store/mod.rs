//! Object storage: one trait, two implementations (S3 through `aws-sdk-s3`,
//! and a local directory). Both use the same keys (see [`crate::keys`]) and
//! whole-object writes: a reader never sees a partial object under a final key.

mod interface;
mod local;
mod s3;

pub use interface::*;
pub use local::LocalStore;
pub use s3::{S3Settings, S3Store};
