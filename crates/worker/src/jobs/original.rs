//! Fetching a job's original: one place for the bucket check, the size
//! limit, the download into a private temporary directory and the hash.

use super::context::JobContext;
use std::path::{Path, PathBuf};
use thumbfarm_shared::messages::SourceRef;
use thumbfarm_shared::retry::WorkError;
use thumbfarm_shared::AssetHash;

/// An original copied to local disk; the directory goes when it is dropped.
#[derive(Debug)]
pub struct LocalOriginal {
    /// The private temporary directory (outputs may be written here too).
    pub dir: tempfile::TempDir,
    /// The original's file inside it.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Fails when the original is in another bucket than this worker's store.
pub fn check_bucket(ctx: &JobContext<'_>, source: &SourceRef) -> Result<(), WorkError> {
    if let Some(bucket) = &source.bucket {
        let ours = ctx.store.describe();
        if ours != format!("s3://{bucket}") {
            return Err(WorkError::Permanent(format!(
                "original is in bucket {bucket:?}, which this worker's store ({ours}) does not reach"
            )));
        }
    }
    Ok(())
}

/// Checks that the original exists and is at most `max_bytes`, then copies
/// it into a private temporary directory.
pub async fn fetch_original(
    ctx: &JobContext<'_>,
    source: &SourceRef,
    max_bytes: u64,
) -> Result<LocalOriginal, WorkError> {
    check_bucket(ctx, source)?;
    let key = source.key.as_str();
    let meta = ctx
        .store_retry("head original", || ctx.store.head(key))
        .await?
        .ok_or_else(|| WorkError::Permanent(format!("original missing: {key}")))?;
    if meta.size > max_bytes {
        return Err(WorkError::Permanent(format!(
            "over the limits: original is {} bytes, over the {max_bytes} byte limit",
            meta.size
        )));
    }
    let dir = tempfile::tempdir().map_err(|e| WorkError::Transient(format!("temp dir: {e}")))?;
    let path = dir.path().join("original");
    let bytes = ctx
        .store_retry("download original", || ctx.store.download(key, &path))
        .await?;
    ctx.metrics.bytes_in.inc_by(bytes);
    Ok(LocalOriginal { dir, path, bytes })
}

/// The SHA-1 of a local file, read in chunks off the runtime.
pub async fn hash_file(path: &Path) -> Result<AssetHash, WorkError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = thumbfarm_shared::hash::HashingReader::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok::<_, std::io::Error>(hasher.finish())
    })
    .await
    .map_err(|e| WorkError::Transient(format!("hashing task: {e}")))?
    .map_err(|e| WorkError::Transient(format!("hashing original: {e}")))
}
