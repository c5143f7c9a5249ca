//! Job and event messages (docs/contracts.md §5). Every message is JSON with `"v": 1`.

use crate::hash::AssetHash;
use crate::renditions::Rendition;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The message schema version; only `1` deserializes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            1 => Ok(V1),
            other => Err(serde::de::Error::custom(format!(
                "unsupported message version {other}, expected 1"
            ))),
        }
    }
}

/// Where an original lives: a key in the configured store, or in another
/// bucket of the same S3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The bucket, when it is not the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The object key.
    pub key: String,
}

/// Render some sizes of an image (or of a video's poster frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderJob {
    pub v: V1,
    /// The asset; `None` when an ingest event did not know it: the worker
    /// computes it while reading the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<AssetHash>,
    /// The original.
    pub source: SourceRef,
    /// The renditions wanted: size names for the classic JPEG/PNG,
    /// `tile_500.webp` for other formats (sizes resolved per original by the
    /// worker).
    pub sizes: Vec<Rendition>,
    /// Re-render outputs that already exist.
    #[serde(default)]
    pub force: bool,
    /// The media type, when known (`image/jpeg`, `video/mp4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// Transcode a video to a streaming format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeJob {
    pub v: V1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<AssetHash>,
    pub source: SourceRef,
    /// Target format; only `avc`.
    pub format: String,
    #[serde(default)]
    pub force: bool,
}

/// A thumbfarm job, as carried on `thumbfarm.jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Render(RenderJob),
    Transcode(TranscodeJob),
}

/// What happened to an asset, published on `thumbfarm.events` with the
/// routing key `<kind>.<hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Thumbnails stored.
    Rendered {
        v: V1,
        hash: AssetHash,
        /// The renditions now stored (rendered or already there).
        sizes: Vec<Rendition>,
        /// The asset's ThumbHash (base64), when this job computed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thumbhash: Option<String>,
    },
    /// A transcode stored.
    Transcoded {
        v: V1,
        hash: AssetHash,
        format: String,
    },
    /// A job failed for good.
    Failed {
        v: V1,
        hash: AssetHash,
        reason: String,
        /// `true` for failures that will not go away by retrying.
        permanent: bool,
    },
    /// Progress of a long job, in percent.
    Progress { v: V1, hash: AssetHash, percent: u8 },
}

impl Event {
    /// The asset the event is about.
    pub fn hash(&self) -> &AssetHash {
        match self {
            Event::Rendered { hash, .. }
            | Event::Transcoded { hash, .. }
            | Event::Failed { hash, .. }
            | Event::Progress { hash, .. } => hash,
        }
    }

    /// The routing key on `thumbfarm.events`.
    pub fn routing_key(&self) -> String {
        let kind = match self {
            Event::Rendered { .. } => "rendered",
            Event::Transcoded { .. } => "transcoded",
            Event::Failed { .. } => "failed",
            Event::Progress { .. } => "progress",
        };
        format!("{kind}.{}", self.hash())
    }
}

/// thumbfarm's own ingest event (`file.created` on `thumbfarm.ingest`): an
/// original is already in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCreated {
    pub v: V1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<AssetHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// S3 bucket-notification JSON, as MinIO, Ceph RGW and others publish it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct S3Notification {
    #[serde(rename = "Records")]
    pub records: Vec<S3Record>,
}

/// One record of an S3 notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct S3Record {
    #[serde(rename = "eventName")]
    pub event_name: String,
    pub s3: S3Entity,
}

/// The bucket and object of a record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct S3Object {
    /// URL-encoded key, as S3 sends it.
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, rename = "eTag")]
    pub etag: Option<String>,
}

/// A message that is not a valid thumbfarm message.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct MalformedMessage(pub String);

impl Job {
    /// Parses a job body published with `routing_key` (`render.*` or `transcode`).
    pub fn parse(routing_key: &str, body: &[u8]) -> Result<Job, MalformedMessage> {
        let err = |e: serde_json::Error| MalformedMessage(e.to_string());
        if routing_key.starts_with("render") {
            serde_json::from_slice(body).map(Job::Render).map_err(err)
        } else if routing_key == "transcode" {
            serde_json::from_slice(body)
                .map(Job::Transcode)
                .map_err(err)
        } else {
            Err(MalformedMessage(format!(
                "unknown routing key {routing_key:?}"
            )))
        }
    }
}

/// The events that may arrive on `thumbfarm.ingest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestEvent {
    FileCreated(FileCreated),
    S3(S3Notification),
}

impl IngestEvent {
    /// Parses either shape.
    pub fn parse(body: &[u8]) -> Result<IngestEvent, MalformedMessage> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| MalformedMessage(e.to_string()))?;
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(IngestEvent::S3)
                .map_err(|e| MalformedMessage(format!("S3 notification: {e}")))
        } else {
            serde_json::from_value(value)
                .map(IngestEvent::FileCreated)
                .map_err(|e| MalformedMessage(format!("file.created: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renditions::OutputFormat;
    use crate::sizes::Size;

    const H: &str = "ec952cab562a55d96ddff2a2fcc41e875393a27a";

    #[test]
    fn render_job_round_trip() {
        let job = RenderJob {
            v: V1,
            hash: Some(AssetHash::parse(H).unwrap()),
            source: SourceRef {
                bucket: None,
                key: "originals/e/c/9/x.jpg".into(),
            },
            sizes: vec![
                Size::Tile50.into(),
                Rendition::new(Size::Fit720, OutputFormat::Webp).unwrap(),
            ],
            force: false,
            media_type: Some("image/jpeg".into()),
        };
        let json = serde_json::to_string(&job).unwrap();
        assert!(
            json.contains("\"v\":1")
                && json.contains("\"tile_50\"")
                && json.contains("\"fit_720.webp\""),
            "{json}"
        );
        assert_eq!(
            Job::parse("render.ondemand", json.as_bytes()).unwrap(),
            Job::Render(job)
        );
    }

    #[test]
    fn wrong_version_and_junk_are_malformed() {
        let v2 = format!(r#"{{"v":2,"hash":"{H}","source":{{"key":"k"}},"sizes":[]}}"#);
        let e = Job::parse("render.bulk", v2.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        assert!(Job::parse("render.bulk", b"not json").is_err());
        assert!(Job::parse(
            "render.bulk",
            br#"{"v":1,"source":{"key":"k"},"sizes":["fit_999"]}"#
        )
        .is_err());
        assert!(Job::parse(
            "render.bulk",
            br#"{"v":1,"source":{"key":"k"},"sizes":["tile_500.gif"]}"#
        )
        .is_err());
        assert!(Job::parse(
            "render.bulk",
            br#"{"v":1,"hash":"../etc","source":{"key":"k"},"sizes":[]}"#
        )
        .is_err());
        assert!(Job::parse("other", b"{}").is_err());
    }

    #[test]
    fn events_route_by_kind_and_hash() {
        let hash = AssetHash::parse(H).unwrap();
        let e = Event::Failed {
            v: V1,
            hash,
            reason: "bad".into(),
            permanent: true,
        };
        assert_eq!(e.routing_key(), format!("failed.{H}"));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }

    #[test]
    fn ingest_events_parse_both_shapes() {
        let native = br#"{"v":1,"key":"photos/a.jpg","bucket":"in","size":12}"#;
        assert!(matches!(
            IngestEvent::parse(native),
            Ok(IngestEvent::FileCreated(_))
        ));
        let s3 = br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%20b.jpg","size":5,"eTag":"x"}}}]}"#;
        match IngestEvent::parse(s3) {
            Ok(IngestEvent::S3(n)) => assert_eq!(n.records[0].s3.object.key, "a%20b.jpg"),
            other => panic!("{other:?}"),
        }
        assert!(IngestEvent::parse(br#"{"Records":"x"}"#).is_err());
        assert!(IngestEvent::parse(br#"{"v":1}"#).is_err());
        assert!(IngestEvent::parse(b"\xff").is_err());
    }
}
