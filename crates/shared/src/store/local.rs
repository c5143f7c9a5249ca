//! Local directory store: every key is a relative path under a root directory.
//!
//! Whole-object writes go to a uniquely named temporary file (`.tmp-<uuid>`) in
//! the target directory, are flushed to disk, then renamed over the final
//! name. A reader therefore sees either the old or the new object, never a
//! partial one, and concurrent writers of one key never produce a mixed file.
//! Temporary files are never listed and no key may name one.
//!
//! All file-system work runs on tokio's blocking pool.

use super::interface::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;
use tokio_util::io::ReaderStream;

/// Name prefix of temporary files; such names are never keys.
const TMP_PREFIX: &str = ".tmp-";

/// Size of the chunks a streamed body is read in.
const CHUNK_SIZE: usize = 64 * 1024;
/// Objects up to this size are read whole when opened for streaming.
const INLINE_READ_BYTES: u64 = 1024 * 1024;
/// Objects up to this size (thumbnails up to about fit_1280) are read on
/// the async runtime's own thread.
const RUNTIME_READ_BYTES: u64 = 256 * 1024;

/// An object opened for [`Store::get_stream`]: read whole, or a file to
/// stream `len` bytes from.
enum Opened {
    Read(Bytes),
    File(fs::File, u64),
}

/// A store under a local directory.
pub struct LocalStore {
    root: PathBuf,
    /// Serialises conditional writes ([`Store::put_if`]): compare and
    /// replace happen under it. One process owns a local store.
    conditional: Arc<Mutex<()>>,
}

impl LocalStore {
    /// Opens the directory, creating it when missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        Ok(LocalStore {
            root,
            conditional: Arc::new(Mutex::new(())),
        })
    }

    /// The (canonical) root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to its path, rejecting anything that could leave the root
    /// or collide with a temporary file.
    fn resolve(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        let rel = Path::new(key);
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !key.split('/').any(|seg| seg.starts_with(TMP_PREFIX));
        let path = self.root.join(rel);
        if !plain || !path.starts_with(&self.root) || path == self.root {
            return Err(StoreError::InvalidKey(key.chars().take(200).collect()));
        }
        Ok(path)
    }
}

/// Runs file-system work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(io::Error::other(format!("store task failed: {e}"))))?
}

/// Whether an I/O error means "there is no such object".
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

/// Maps "no such file" to `NotFound(key)`, anything else to `Io`.
fn missing_or_io(key: &str, e: io::Error) -> StoreError {
    if is_missing(&e) {
        StoreError::NotFound(key.to_string())
    } else {
        StoreError::Io(e)
    }
}

/// A strong entity tag for a file: its size, modification time and inode.
///
/// Every write replaces the file with a freshly created one (new inode, new
/// modification time), so the tag changes whenever the content does.
fn etag_of(md: &fs::Metadata) -> String {
    let nanos = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        md.ino()
    };
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("{:x}-{:x}-{:x}", md.len(), nanos, inode)
}

/// A content type guessed from the key's extension (the directory store keeps none).
fn guess_content_type(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (_, ext) = name.rsplit_once('.')?;
    let ct = match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "heic" => "image/heic",
        "avif" => "image/avif",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "json" => "application/json",
        _ => return None,
    };
    Some(ct.to_string())
}

fn meta_of(key: &str, md: &fs::Metadata, content_type: Option<String>) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: md.len(),
        etag: etag_of(md),
        last_modified: md.modified().ok(),
        content_type: content_type.or_else(|| guess_content_type(key)),
    }
}

/// Opens an object for reading, checking that it is a regular file.
fn open_object(key: &str, path: &Path) -> Result<(fs::File, fs::Metadata), StoreError> {
    let file = fs::File::open(path).map_err(|e| missing_or_io(key, e))?;
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(StoreError::NotFound(key.to_string()));
    }
    Ok((file, md))
}

/// Reads a whole object of at most [`RUNTIME_READ_BYTES`] on the calling
/// thread, as nginx reads from the page cache in its event loop: for a
/// thumbnail, a hop to the blocking pool costs more than the read itself.
/// `None` for a larger object (read it off the runtime).
fn read_small(key: &str, path: &Path) -> Result<Option<(fs::Metadata, Bytes)>, StoreError> {
    let (mut file, md) = open_object(key, path)?;
    if md.len() > RUNTIME_READ_BYTES {
        return Ok(None);
    }
    let bytes = read_up_to(&mut file, md.len())?;
    Ok(Some((md, bytes)))
}

/// Reads up to `len` bytes from `file`'s position into a buffer of that
/// size: one `read` for a file in the page cache (`read_to_end` without a
/// size hint starts at 8 KiB and takes two or more), fewer bytes only when
/// the file ends sooner.
fn read_up_to(file: &mut fs::File, len: u64) -> io::Result<Bytes> {
    let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

/// Creates a new temporary file in `dir`, creating the directory when needed
/// (it may also vanish under us when a concurrent delete prunes empty
/// directories, hence the retries).
fn create_tmp(dir: &Path, tmp: &Path) -> io::Result<fs::File> {
    let mut attempt = 0;
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => {
                attempt += 1;
                fs::create_dir_all(dir)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Flushes a directory entry change to disk (best effort).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "directory fsync failed");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes a whole file: temporary file, fsync, rename over `path`.
/// Returns the metadata of the new file.
fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<fs::Metadata> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("object path has no parent directory"))?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let mut file = create_tmp(dir, &tmp)?;
    let result = (|| {
        fill(&mut file)?;
        file.sync_all()?;
        let md = file.metadata()?;
        drop(file);
        fs::rename(&tmp, path)?;
        Ok(md)
    })();
    match result {
        Ok(md) => {
            sync_dir(dir);
            Ok(md)
        }
        Err(e) => {
            if let Err(rm) = fs::remove_file(&tmp) {
                if rm.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(tmp = %tmp.display(), error = %rm, "could not remove temporary file");
                }
            }
            Err(e)
        }
    }
}

/// An ordered walk of the directory tree for [`Store::list`].
struct Lister<'a> {
    prefix: &'a str,
    start_after: Option<&'a str>,
    /// Stop once this many objects are collected (the page size plus one).
    want: usize,
    out: Vec<ObjectMeta>,
}

/// One directory entry, with the string it sorts by: the key for a file,
/// the key plus `/` for a directory (so that the walk yields keys in plain
/// byte order, like S3).
struct Entry {
    sort: String,
    path: PathBuf,
    is_dir: bool,
}

impl Lister<'_> {
    /// Whether the subtree whose keys all start with `dir_key` (ending in `/`)
    /// may hold keys to list.
    fn dir_relevant(&self, dir_key: &str) -> bool {
        let prefix_ok = dir_key.starts_with(self.prefix) || self.prefix.starts_with(dir_key);
        let after_ok = match self.start_after {
            Some(s) => dir_key > s || s.starts_with(dir_key),
            None => true,
        };
        prefix_ok && after_ok && dir_key.len() <= 1024
    }

    fn file_relevant(&self, key: &str) -> bool {
        key.starts_with(self.prefix) && self.start_after.is_none_or(|s| key > s)
    }

    /// Walks `dir` (whose keys start with `key_prefix`); returns `true` once
    /// enough objects were collected.
    fn walk(&mut self, dir: &Path, key_prefix: &str) -> io::Result<bool> {
        let read = match fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) if is_missing(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for entry in read {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e),
            };
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: cannot be a key
            };
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e),
            };
            let is_dir = if file_type.is_symlink() {
                match fs::metadata(&path) {
                    Ok(md) if md.is_dir() => true,
                    Ok(md) if md.is_file() => false,
                    _ => continue,
                }
            } else if file_type.is_dir() {
                true
            } else if file_type.is_file() {
                false
            } else {
                continue;
            };
            let key = format!("{key_prefix}{name}");
            if is_dir {
                let sort = format!("{key}/");
                if self.dir_relevant(&sort) {
                    entries.push(Entry { sort, path, is_dir });
                }
            } else if self.file_relevant(&key) {
                entries.push(Entry {
                    sort: key,
                    path,
                    is_dir,
                });
            }
        }
        entries.sort_unstable_by(|a, b| a.sort.cmp(&b.sort));
        for entry in entries {
            if entry.is_dir {
                if self.walk(&entry.path, &entry.sort)? {
                    return Ok(true);
                }
                continue;
            }
            if validate_key(&entry.sort).is_err() {
                continue;
            }
            let md = match fs::metadata(&entry.path) {
                Ok(md) if md.is_file() => md,
                Ok(_) => continue,
                Err(e) if is_missing(&e) => continue, // deleted meanwhile
                Err(e) => return Err(e),
            };
            self.out.push(meta_of(&entry.sort, &md, None));
            if self.out.len() >= self.want {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Lists under `root`; see [`Store::list`].
fn list_blocking(
    root: &Path,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Result<ListPage, StoreError> {
    let limit = limit.max(1);
    // Start from the deepest directory the prefix names.
    let dir_part = match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    };
    let mut dir = root.to_path_buf();
    if !dir_part.is_empty() {
        for seg in dir_part[..dir_part.len() - 1].split('/') {
            let bad = seg.is_empty()
                || seg == "."
                || seg == ".."
                || seg.starts_with(TMP_PREFIX)
                || seg.contains('\\')
                || seg.chars().any(char::is_control);
            if bad {
                // No valid key has such a segment.
                return Ok(ListPage::default());
            }
            dir.push(seg);
        }
    }
    let mut lister = Lister {
        prefix,
        start_after,
        want: limit.saturating_add(1),
        out: Vec::new(),
    };
    lister.walk(&dir, dir_part)?;
    let mut objects = lister.out;
    let next = if objects.len() > limit {
        objects.truncate(limit);
        objects.last().map(|m| m.key.clone())
    } else {
        None
    };
    Ok(ListPage { objects, next })
}

#[async_trait]
impl Store for LocalStore {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.resolve(key)?;
        let md = blocking(move || Ok(write_atomic(&path, |f| f.write_all(&body))?)).await?;
        Ok(meta_of(key, &md, Some(content_type.to_string())))
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let dest = self.resolve(key)?;
        let src_path = path.to_path_buf();
        let md = blocking(move || {
            let mut src = fs::File::open(&src_path)?;
            Ok(write_atomic(&dest, |f| io::copy(&mut src, f).map(|_| ()))?)
        })
        .await?;
        Ok(meta_of(key, &md, Some(content_type.to_string())))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.resolve(key)?;
        let key = key.to_string();
        blocking(move || {
            let (mut file, md) = open_object(&key, &path)?;
            Ok(read_up_to(&mut file, md.len())?)
        })
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<(Bytes, String), StoreError> {
        let path = self.resolve(key)?;
        let key = key.to_string();
        blocking(move || {
            let (mut file, md) = open_object(&key, &path)?;
            Ok((read_up_to(&mut file, md.len())?, etag_of(&md)))
        })
        .await
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.resolve(key)?;
        let lock = Arc::clone(&self.conditional);
        let expected = if_match.map(str::to_string);
        let name = key.to_string();
        let md = blocking(move || {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            let current = match fs::metadata(&path) {
                Ok(md) if md.is_file() => Some(etag_of(&md)),
                Ok(_) => None,
                Err(e) if is_missing(&e) => None,
                Err(e) => return Err(e.into()),
            };
            if current != expected {
                return Err(StoreError::Conflict(name));
            }
            Ok(write_atomic(&path, |f| f.write_all(&body))?)
        })
        .await?;
        Ok(meta_of(key, &md, Some(content_type.to_string())))
    }

    async fn get_stream(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectMeta, ByteStream), StoreError> {
        let path = self.resolve(key)?;
        if range.is_none() {
            if let Some((md, bytes)) = read_small(key, &path)? {
                let meta = meta_of(key, &md, None);
                return Ok((meta, futures::stream::once(async { Ok(bytes) }).boxed()));
            }
        }
        let owned_key = key.to_string();
        let (opened, md) = blocking(move || {
            let (mut file, md) = open_object(&owned_key, &path)?;
            let size = md.len();
            let (start, len) = match range {
                None => (0, size),
                Some(r) => {
                    if r.start >= size || r.end < r.start {
                        return Err(StoreError::RangeNotSatisfiable {
                            key: owned_key,
                            size,
                        });
                    }
                    let end = r.end.min(size - 1);
                    (r.start, end - r.start + 1)
                }
            };
            if start > 0 {
                file.seek(SeekFrom::Start(start))?;
            }
            // A small object (every thumbnail but the largest) is read in
            // this same blocking call: one hop off the runtime per request
            // instead of one per chunk.
            if len <= INLINE_READ_BYTES {
                return Ok((Opened::Read(read_up_to(&mut file, len)?), md));
            }
            Ok((Opened::File(file, len), md))
        })
        .await?;
        let meta = meta_of(key, &md, None);
        let (file, len) = match opened {
            Opened::Read(bytes) => {
                return Ok((meta, futures::stream::once(async { Ok(bytes) }).boxed()))
            }
            Opened::File(file, len) => (file, len),
        };
        let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), len);
        let stream =
            ReaderStream::with_capacity(reader, CHUNK_SIZE).map(|r| r.map_err(StoreError::from));
        Ok((meta, stream.boxed()))
    }

    async fn download(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        let src = self.resolve(key)?;
        let key = key.to_string();
        let dest = path.to_path_buf();
        blocking(move || {
            let (mut file, _) = open_object(&key, &src)?;
            let mut out = fs::File::create(&dest)?;
            let n = io::copy(&mut file, &mut out)?;
            out.flush()?;
            Ok(n)
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.resolve(key)?;
        let owned_key = key.to_string();
        blocking(move || match fs::metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(meta_of(&owned_key, &md, None))),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(StoreError::Io(e)),
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        blocking(move || list_blocking(&root, &prefix, start_after.as_deref(), limit)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.resolve(key)?;
        let root = self.root.clone();
        blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => return Ok(()),
                Err(e) => return Err(StoreError::Io(e)),
            }
            // Prune directories left empty (a concurrent writer recreates them).
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == root || !d.starts_with(&root) || fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        blocking(move || {
            let probe = root.join(format!(
                "{TMP_PREFIX}ping-{}",
                uuid::Uuid::new_v4().simple()
            ));
            let check = (|| {
                fs::create_dir_all(&root)?;
                fs::write(&probe, b"ping")?;
                fs::remove_file(&probe)
            })();
            check.map_err(|e| {
                StoreError::Unavailable(format!(
                    "directory {} is not writable: {e}",
                    root.display()
                ))
            })
        })
        .await
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path()).expect("open");
        (dir, store)
    }

    async fn read_range(
        store: &LocalStore,
        key: &str,
        range: Option<ByteRange>,
    ) -> (ObjectMeta, Vec<u8>) {
        let (meta, stream) = store.get_stream(key, range).await.expect("get_stream");
        let chunks: Vec<Bytes> = stream.try_collect().await.expect("stream");
        (meta, chunks.concat())
    }

    fn body(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn round_trip_and_head() {
        let (_dir, store) = store();
        let data = Bytes::from(body(200_000, 1));
        let put = store
            .put("thumbs/a/b/c/x.jpg", data.clone(), "image/jpeg")
            .await
            .unwrap();
        assert_eq!(put.size, 200_000);
        assert_eq!(put.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(store.get("thumbs/a/b/c/x.jpg").await.unwrap(), data);

        let head = store
            .head("thumbs/a/b/c/x.jpg")
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(head.size, 200_000);
        assert_eq!(head.etag, put.etag);
        assert!(head.last_modified.is_some());
        assert_eq!(head.content_type.as_deref(), Some("image/jpeg"));

        let (meta, all) = read_range(&store, "thumbs/a/b/c/x.jpg", None).await;
        assert_eq!(meta.size, 200_000);
        assert_eq!(all, data.as_ref());

        // Rewriting changes the etag.
        let put2 = store
            .put(
                "thumbs/a/b/c/x.jpg",
                Bytes::from(body(200_000, 2)),
                "image/jpeg",
            )
            .await
            .unwrap();
        assert_ne!(put2.etag, put.etag);
        let head2 = store.head("thumbs/a/b/c/x.jpg").await.unwrap().unwrap();
        assert_eq!(head2.etag, put2.etag);

        // Empty objects work too.
        store
            .put("empty", Bytes::new(), "application/octet-stream")
            .await
            .unwrap();
        assert!(store.get("empty").await.unwrap().is_empty());
        assert_eq!(store.head("empty").await.unwrap().unwrap().size, 0);
    }

    #[tokio::test]
    async fn ranged_reads() {
        let (_dir, store) = store();
        let data = body(100_000, 7);
        store
            .put("videos/v.mp4", Bytes::from(data.clone()), "video/mp4")
            .await
            .unwrap();
        let r = |start, end| Some(ByteRange { start, end });

        let (meta, first) = read_range(&store, "videos/v.mp4", r(0, 9)).await;
        assert_eq!(meta.size, 100_000);
        assert_eq!(first, &data[..10]);

        let (_, middle) = read_range(&store, "videos/v.mp4", r(40_000, 70_000)).await;
        assert_eq!(middle, &data[40_000..=70_000]);

        let (meta, tail) = read_range(&store, "videos/v.mp4", r(99_990, 1_000_000)).await;
        assert_eq!(meta.size, 100_000);
        assert_eq!(tail, &data[99_990..]);

        let (_, last) = read_range(&store, "videos/v.mp4", r(99_999, 99_999)).await;
        assert_eq!(last, &data[99_999..]);

        for start in [100_000, 100_001, u64::MAX] {
            match store.get_stream("videos/v.mp4", r(start, u64::MAX)).await {
                Err(StoreError::RangeNotSatisfiable { size, .. }) => assert_eq!(size, 100_000),
                other => panic!(
                    "expected RangeNotSatisfiable, got {:?}",
                    other.map(|(m, _)| m)
                ),
            }
        }
        store.put("empty", Bytes::new(), "x/y").await.unwrap();
        assert!(matches!(
            store.get_stream("empty", r(0, 0)).await,
            Err(StoreError::RangeNotSatisfiable { size: 0, .. })
        ));
    }

    #[tokio::test]
    async fn missing_keys() {
        let (dir, store) = store();
        assert!(matches!(
            store.get("meta/a/nope.json").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.get_stream("nope", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(store.head("nope").await.unwrap().is_none());
        assert!(matches!(
            store.download("nope", &dir.path().join("out")).await,
            Err(StoreError::NotFound(_))
        ));
        store.delete("nope/never/was").await.unwrap();
        // A directory is not an object, and a file is not a directory.
        store
            .put("a/b", Bytes::from_static(b"x"), "x/y")
            .await
            .unwrap();
        assert!(store.head("a").await.unwrap().is_none());
        assert!(matches!(store.get("a").await, Err(StoreError::NotFound(_))));
        assert!(store.head("a/b/c").await.unwrap().is_none());
        assert!(matches!(
            store.get("a/b/c").await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn delete_download_put_file_ping() {
        let (dir, store) = store();
        let scratch = tempfile::tempdir().unwrap();
        let src = scratch.path().join("src.png");
        let data = body(300_000, 3);
        std::fs::write(&src, &data).unwrap();
        let meta = store
            .put_file("originals/a/b/c/o.png", &src, "image/png")
            .await
            .unwrap();
        assert!(matches!(
            store
                .put_file("originals/x", &scratch.path().join("missing"), "image/png")
                .await,
            Err(StoreError::Io(_))
        ));
        assert!(store.head("originals/x").await.unwrap().is_none());
        assert_eq!(meta.size, 300_000);
        let out = scratch.path().join("copy.bin");
        assert_eq!(
            store.download("originals/a/b/c/o.png", &out).await.unwrap(),
            300_000
        );
        assert_eq!(std::fs::read(&out).unwrap(), data);

        store.delete("originals/a/b/c/o.png").await.unwrap();
        assert!(store.head("originals/a/b/c/o.png").await.unwrap().is_none());
        // Empty directories are pruned, the root stays.
        assert!(!dir.path().join("originals").exists());
        assert!(dir.path().exists());
        store.delete("originals/a/b/c/o.png").await.unwrap();
        // And can be written again afterwards.
        store
            .put(
                "originals/a/b/c/o.png",
                Bytes::from_static(b"again"),
                "image/png",
            )
            .await
            .unwrap();
        assert_eq!(
            store.get("originals/a/b/c/o.png").await.unwrap(),
            Bytes::from_static(b"again")
        );

        store.ping().await.unwrap();
        assert!(store.describe().starts_with("file://"));
        let page = store.list("", None, 100).await.unwrap();
        assert_eq!(page.objects.len(), 1, "ping leaves nothing behind");
    }

    #[tokio::test]
    async fn listing_in_order_with_paging() {
        let (_dir, store) = store();
        // Keys chosen so that directory order differs from key order
        // ('-' < '/' < '0' < 'a').
        let keys = [
            "a-b",
            "a/b",
            "a/c/d",
            "a/c-d",
            "a0",
            "ab",
            "b",
            "thumbs/e/c/9/x_1.jpg",
            "thumbs/e/c/9/x_2.jpg",
            "thumbs/e/c/9a",
            "thumbs/e/d/1/y.jpg",
            "thumbs/f/0/0/z.jpg",
        ];
        for k in keys {
            store
                .put(k, Bytes::from(k.as_bytes().to_vec()), "x/y")
                .await
                .unwrap();
        }
        let mut sorted: Vec<&str> = keys.to_vec();
        sorted.sort();

        let all = store.list("", None, 1000).await.unwrap();
        let got: Vec<&str> = all.objects.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(got, sorted);
        assert!(all.next.is_none());
        assert_eq!(all.objects[0].size, 3);

        // Paging with limit 3 reproduces the full listing.
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list("", after.as_deref(), 3).await.unwrap();
            assert!(page.objects.len() <= 3);
            paged.extend(page.objects.iter().map(|m| m.key.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(paged, sorted);

        // Prefixes are plain string prefixes.
        let keys_of = |p: ListPage| p.objects.into_iter().map(|m| m.key).collect::<Vec<_>>();
        assert_eq!(
            keys_of(store.list("a", None, 100).await.unwrap()),
            ["a-b", "a/b", "a/c-d", "a/c/d", "a0", "ab"]
        );
        assert_eq!(
            keys_of(store.list("a/", None, 100).await.unwrap()),
            ["a/b", "a/c-d", "a/c/d"]
        );
        assert_eq!(
            keys_of(store.list("a/c", None, 100).await.unwrap()),
            ["a/c-d", "a/c/d"]
        );
        assert_eq!(
            keys_of(store.list("thumbs/e/c/9", None, 100).await.unwrap()),
            [
                "thumbs/e/c/9/x_1.jpg",
                "thumbs/e/c/9/x_2.jpg",
                "thumbs/e/c/9a"
            ]
        );
        assert_eq!(
            keys_of(
                store
                    .list("thumbs/e/", Some("thumbs/e/c/9/x_1.jpg"), 2)
                    .await
                    .unwrap()
            ),
            ["thumbs/e/c/9/x_2.jpg", "thumbs/e/c/9a"]
        );
        let page = store
            .list("thumbs/", Some("thumbs/e/c/9a"), 1)
            .await
            .unwrap();
        assert_eq!(page.next.as_deref(), Some("thumbs/e/d/1/y.jpg"));
        assert_eq!(keys_of(page), ["thumbs/e/d/1/y.jpg"]);
        // start_after need not be an existing key.
        assert_eq!(
            keys_of(store.list("", Some("a/c"), 2).await.unwrap()),
            ["a/c-d", "a/c/d"]
        );
        assert_eq!(
            keys_of(store.list("", Some("thumbs/f"), 10).await.unwrap()),
            ["thumbs/f/0/0/z.jpg"]
        );
        assert!(store
            .list("nothing/", None, 10)
            .await
            .unwrap()
            .objects
            .is_empty());
        assert!(store
            .list("zzz", None, 10)
            .await
            .unwrap()
            .objects
            .is_empty());
        assert!(store
            .list("../", None, 10)
            .await
            .unwrap()
            .objects
            .is_empty());
        assert!(store
            .list("a//", None, 10)
            .await
            .unwrap()
            .objects
            .is_empty());
    }

    #[tokio::test]
    async fn path_tricks_rejected() {
        let (dir, store) = store();
        let outside = dir.path().parent().unwrap().join("x");
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            outside.to_str().unwrap(),
            "a//b",
            "./a",
            "a/.",
            "",
            "a\\..\\b",
            "dir/",
            "a\0b",
            ".tmp-abc",
            "a/.tmp-1/b",
        ] {
            let bad = |r: Result<(), StoreError>| {
                assert!(matches!(r, Err(StoreError::InvalidKey(_))), "{key:?}")
            };
            bad(store
                .put(key, Bytes::from_static(b"x"), "x/y")
                .await
                .map(|_| ()));
            bad(store.get(key).await.map(|_| ()));
            bad(store.get_stream(key, None).await.map(|_| ()));
            bad(store.head(key).await.map(|_| ()));
            bad(store.delete(key).await);
            bad(store.download(key, &dir.path().join("o")).await.map(|_| ()));
        }
    }

    #[tokio::test]
    async fn temp_files_never_listed() {
        let (dir, store) = store();
        store
            .put("a/b.jpg", Bytes::from_static(b"x"), "image/jpeg")
            .await
            .unwrap();
        std::fs::write(dir.path().join("a").join(".tmp-leftover"), b"partial").unwrap();
        std::fs::write(dir.path().join(".tmp-root"), b"partial").unwrap();
        std::fs::create_dir_all(dir.path().join(".tmp-dir")).unwrap();
        std::fs::write(dir.path().join(".tmp-dir").join("c"), b"partial").unwrap();
        let page = store.list("", None, 100).await.unwrap();
        let keys: Vec<_> = page.objects.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["a/b.jpg"]);
        assert!(store
            .list("a/.tmp", None, 100)
            .await
            .unwrap()
            .objects
            .is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_leave_one_whole_body() {
        let (dir, store) = store();
        let store = Arc::new(store);
        const SIZE: usize = 1 << 20;
        let bodies: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; SIZE])).collect();
        let tasks: Vec<_> = bodies
            .iter()
            .cloned()
            .map(|b| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.put("thumbs/c/c/c/same.jpg", b, "image/jpeg").await },
                )
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let got = store.get("thumbs/c/c/c/same.jpg").await.unwrap();
        assert_eq!(got.len(), SIZE);
        assert!(bodies.contains(&got), "final content is a mix");
        // No temporary files remain.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("thumbs/c/c/c"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[tokio::test]
    async fn conditional_writes_and_concurrent_manifest_updates() {
        use crate::manifest::{update_manifest, Manifest, OutputInfo};
        let (_dir, store) = store();
        let key = "meta/a/b/c/m.json";
        store
            .put_if(key, Bytes::from_static(b"1"), "application/json", None)
            .await
            .expect("create");
        assert!(matches!(
            store
                .put_if(key, Bytes::from_static(b"2"), "application/json", None)
                .await,
            Err(StoreError::Conflict(_))
        ));
        let (_, etag) = store.get_versioned(key).await.expect("versioned");
        store
            .put_if(
                key,
                Bytes::from_static(b"3"),
                "application/json",
                Some(&etag),
            )
            .await
            .expect("on the version read");
        assert!(matches!(
            store
                .put_if(
                    key,
                    Bytes::from_static(b"4"),
                    "application/json",
                    Some(&etag)
                )
                .await,
            Err(StoreError::Conflict(_))
        ));

        let store = Arc::new(store);
        let key = "meta/d/e/f/n.json";
        let hash = crate::AssetHash::of_bytes(b"n");
        let tasks: Vec<_> = (0..32u32)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let create = || {
                        let source = crate::messages::SourceRef {
                            bucket: None,
                            key: "originals/n.jpg".into(),
                        };
                        Some(Manifest::new(hash, source, "image/jpeg", 1))
                    };
                    update_manifest(store.as_ref(), key, create, |m| {
                        m.outputs.insert(
                            format!("o{i}"),
                            OutputInfo {
                                key: format!("t/{i}"),
                                width: i,
                                height: i,
                                bytes: 1,
                            },
                        );
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("update");
        }
        let m: Manifest = crate::store::get_json(store.as_ref(), key)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(m.outputs.len(), 32);
    }
}
