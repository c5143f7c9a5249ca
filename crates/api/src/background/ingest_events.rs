//! What an ingest event names: thumbfarm's own `file.created`
//! (`{"v":1,"hash"?,"bucket"?,"key","media_type"?,"size"?}`) or S3
//! bucket-notification JSON (`{"Records":[…]}`, as MinIO, Ceph RGW and
//! Garage-style setups publish it to AMQP), normalized into
//! [`IngestItem`]s. Every `s3:ObjectCreated:*` record becomes an item, other
//! event names are ignored; object keys arrive URL-encoded (`+` for a space,
//! `%XX`) and are decoded here. Unsafe keys, bad media types and bucket
//! names make the whole event malformed.

use crate::planning::Original;
use thumbfarm_shared::keys::{is_own_object, KeyKind, KeyLayout};
use thumbfarm_shared::manifest::media_type_for_extension;
use thumbfarm_shared::messages::{FileCreated, IngestEvent, S3Notification, SourceRef};
use thumbfarm_shared::store::validate_key;
use thumbfarm_shared::AssetHash;

/// One original an event names, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestItem {
    /// `file_created` or `s3` (the metrics label).
    pub kind: &'static str,
    /// The asset, when known.
    pub hash: Option<AssetHash>,
    /// Where the original is (`bucket` is `None` for the store's own bucket).
    pub source: SourceRef,
    /// The media type (given, else from the key's extension).
    pub media_type: String,
    /// Bytes, when given.
    pub size: Option<u64>,
    /// The S3 entity tag, when given.
    pub etag: Option<String>,
}

impl IngestItem {
    /// The item as the job planner sees it.
    pub fn original(&self) -> Original<'_> {
        Original {
            hash: self.hash,
            source: &self.source,
            media_type: &self.media_type,
            // Not read here: the render job finds a motion photo's video
            // and records it; its transcode is made on request or by backfill.
            still_video: None,
        }
    }

    /// The key under which duplicates of this original are folded.
    pub fn dedupe_key(&self) -> String {
        match self.hash {
            Some(h) => format!("h:{h}"),
            None => format!(
                "o:{}\u{0}{}\u{0}{}",
                self.source.bucket.as_deref().unwrap_or(""),
                self.source.key,
                self.etag
                    .clone()
                    .or_else(|| self.size.map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Decodes an S3 notification object key: `+` is a space, `%XX` a byte.
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let pair = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(bytes.get(i + 2).copied().and_then(hex));
                match pair {
                    Some((h, l)) => out.push(h * 16 + l),
                    None => return Err(format!("bad percent escape in object key {raw:?}")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("object key {raw:?} is not UTF-8 once decoded"))
}

/// Whether a media type looks like `type/subtype`.
fn plausible_media_type(m: &str) -> bool {
    m.len() <= 100
        && m.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty()
                && !s.is_empty()
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
        })
}

/// The media type of an original: the given one, else from the extension.
fn media_type_of(given: Option<&str>, key: &str) -> Result<String, String> {
    if let Some(m) = given.map(str::trim).filter(|m| !m.is_empty()) {
        if !plausible_media_type(m) {
            return Err(format!("media_type {:?} is not a media type", truncate(m)));
        }
        return Ok(m.to_ascii_lowercase());
    }
    let ext = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e)
        .unwrap_or("");
    Ok(media_type_for_extension(ext).to_string())
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Turns a parsed event into the originals it names. `own_bucket` is the
/// store's bucket (`None` for a local store). Errors are reasons to
/// dead-letter the whole event.
pub fn items_of(
    event: &IngestEvent,
    own_bucket: Option<&str>,
) -> Result<Vec<Result<IngestItem, String>>, String> {
    match event {
        IngestEvent::FileCreated(fc) => Ok(vec![Ok(file_created_item(fc, own_bucket)?)]),
        IngestEvent::S3(n) => s3_items(n, own_bucket),
    }
}

/// The bucket as stored in a [`SourceRef`]: `None` for the store's own.
fn source_bucket(bucket: Option<&str>, own_bucket: Option<&str>) -> Result<Option<String>, String> {
    match bucket.map(str::trim) {
        None | Some("") => Ok(None),
        Some(b) if Some(b) == own_bucket => Ok(None),
        Some(b) => {
            let ok = b.len() <= 255
                && b.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
            if ok {
                Ok(Some(b.to_string()))
            } else {
                Err(format!("bucket name {:?} is not valid", truncate(b)))
            }
        }
    }
}

/// The hash a key of the store's own `originals/` folder carries.
fn hash_from_original_key(key: &str) -> Option<AssetHash> {
    match KeyLayout::parse(key) {
        Ok((hash, KeyKind::Original(_))) => Some(hash),
        _ => None,
    }
}

fn item(
    kind: &'static str,
    hash: Option<AssetHash>,
    bucket: Option<String>,
    key: String,
    media_type: Option<&str>,
    size: Option<u64>,
    etag: Option<String>,
) -> Result<IngestItem, String> {
    validate_key(&key).map_err(|_| format!("unsafe or empty object key {:?}", truncate(&key)))?;
    let media_type = media_type_of(media_type, &key)?;
    let hash = hash.or_else(|| {
        bucket
            .is_none()
            .then(|| hash_from_original_key(&key))
            .flatten()
    });
    Ok(IngestItem {
        kind,
        hash,
        source: SourceRef { bucket, key },
        media_type,
        size,
        etag,
    })
}

fn file_created_item(fc: &FileCreated, own_bucket: Option<&str>) -> Result<IngestItem, String> {
    let bucket = source_bucket(fc.bucket.as_deref(), own_bucket)?;
    if bucket.is_none() && is_own_object(&fc.key) {
        return Err(format!(
            "key {:?} is one of thumbfarm's own outputs, not an original",
            truncate(&fc.key)
        ));
    }
    item(
        "file_created",
        fc.hash,
        bucket,
        fc.key.clone(),
        fc.media_type.as_deref(),
        fc.size,
        None,
    )
}

fn s3_items(
    n: &S3Notification,
    own_bucket: Option<&str>,
) -> Result<Vec<Result<IngestItem, String>>, String> {
    if n.records.is_empty() {
        return Err("S3 notification without records".into());
    }
    let mut out = Vec::with_capacity(n.records.len());
    for (i, r) in n.records.iter().enumerate() {
        if !r.event_name.starts_with("s3:ObjectCreated:")
            && !r.event_name.starts_with("ObjectCreated:")
        {
            out.push(Err(format!("event {:?}", truncate(&r.event_name))));
            continue;
        }
        let key = decode_s3_key(&r.s3.object.key).map_err(|e| format!("record {i}: {e}"))?;
        let bucket = source_bucket(Some(&r.s3.bucket.name), own_bucket)
            .map_err(|e| format!("record {i}: {e}"))?;
        if bucket.is_none() && is_own_object(&key) {
            out.push(Err(format!("thumbfarm's own output {}", truncate(&key))));
            continue;
        }
        let etag =
            r.s3.object
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_string())
                .filter(|e| !e.is_empty());
        let it = item("s3", None, bucket, key, None, r.s3.object.size, etag)
            .map_err(|e| format!("record {i}: {e}"))?;
        out.push(Ok(it));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::jobs::{self, PlannedJob};
    use thumbfarm_shared::messages::IngestEvent;

    #[test]
    fn s3_keys_are_decoded() {
        assert_eq!(decode_s3_key("a+b%20c%2Fd.jpg").unwrap(), "a b c/d.jpg");
        assert_eq!(decode_s3_key("caf%C3%A9.jpg").unwrap(), "café.jpg");
        assert!(decode_s3_key("bad%2").is_err());
        assert!(decode_s3_key("bad%zz").is_err());
        assert!(decode_s3_key("%FF").is_err());
    }

    #[test]
    fn s3_records_become_items() {
        let body = br#"{"Records":[
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ours"},"object":{"key":"in/a+b.JPG","size":5,"eTag":"\"e1\""}}},
            {"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"ours"},"object":{"key":"in/c.jpg"}}},
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ours"},"object":{"key":"thumbs/a/b/c/x.jpg"}}},
            {"eventName":"s3:ObjectCreated:Copy","s3":{"bucket":{"name":"other"},"object":{"key":"v/clip.mov"}}}
        ]}"#;
        let event = IngestEvent::parse(body).unwrap();
        let items = items_of(&event, Some("ours")).unwrap();
        assert_eq!(items.len(), 4);
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.source.key, "in/a b.JPG");
        assert_eq!(a.source.bucket, None);
        assert_eq!(a.media_type, "image/jpeg");
        assert_eq!(a.etag.as_deref(), Some("e1"));
        assert!(items[1].is_err() && items[2].is_err());
        let v = items[3].as_ref().unwrap();
        assert_eq!(v.source.bucket.as_deref(), Some("other"));
        assert!(v.media_type.starts_with("video/"));
        let keys: Vec<_> = jobs::pregeneration_jobs(&jobs::Pregeneration::default(), v.original())
            .iter()
            .map(PlannedJob::routing_key)
            .collect();
        assert_eq!(keys, vec!["render.bulk", "transcode"]);
    }

    #[test]
    fn unsafe_events_are_malformed() {
        for body in [
            &br#"{"v":1,"key":"../etc/passwd"}"#[..],
            br#"{"v":1,"key":"/abs.jpg"}"#,
            br#"{"v":1,"key":""}"#,
            br#"{"v":1,"key":"thumbs/a/b/c/x.jpg"}"#,
            br#"{"v":1,"key":"a.jpg","media_type":"<script>"}"#,
            br#"{"v":1,"key":"a.jpg","bucket":"b/../c"}"#,
            br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%2F..%2F..%2Fx"}}}]}"#,
            br#"{"Records":[]}"#,
        ] {
            let parsed = IngestEvent::parse(body).unwrap();
            assert!(
                items_of(&parsed, None).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn own_original_keys_carry_their_hash() {
        let h = AssetHash::of_bytes(b"x");
        let key = KeyLayout::default().original(&h, "jpg");
        let body = serde_json::json!({"v":1,"key":key}).to_string();
        let items = items_of(&IngestEvent::parse(body.as_bytes()).unwrap(), None).unwrap();
        assert_eq!(items[0].as_ref().unwrap().hash, Some(h));
    }
}
