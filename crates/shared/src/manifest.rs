//! The asset manifest stored at `meta/…/<sha1>.json`.

use crate::failure::FailureKind;
use crate::hash::AssetHash;
use crate::messages::{SourceRef, V1};
use crate::store::{get_json_versioned, Store, StoreError};
use crate::time::{parse_timestamp, rfc3339_now};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One stored output of an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// The store key.
    pub key: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Bytes stored.
    pub bytes: u64,
}

/// HDR characteristics of an original (absent for SDR originals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HdrInfo {
    /// The primary image is HDR-encoded: its thumbnails are tone-mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<HdrTransfer>,
    /// Gain maps present: the primary is the SDR base, thumbnails use it as is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gain_maps: Vec<GainMap>,
    /// Bit depth of the coded primary image (8, 10, 12).
    pub bit_depth: u8,
    /// Dolby Vision signalling of a video (its `dvcC`/`dvvC` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dolby_vision: Option<DolbyVision>,
}

/// A video's Dolby Vision configuration record (`dvcC`/`dvvC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DolbyVision {
    /// Profile (5, 7, 8, 9, 10, …).
    pub profile: u8,
    /// Level (1..=13).
    pub level: u8,
    /// Base-layer signal compatibility id (0: none, 1: HDR10, 2: SDR, 4: HLG, 6: BD HDR10).
    pub compatibility: u8,
}

/// What kind of moving picture an asset offers at its `avc` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoKind {
    /// The original is a video.
    Video,
    /// A JPEG/HEIC with an MP4 inside (Google/Pixel, Samsung).
    MotionPhoto,
    /// A still linked to an Apple Live Photo MOV (another asset).
    LivePhoto,
    /// An animated GIF, WebP or PNG.
    Animation,
}

impl VideoKind {
    /// The JSON name (`motion_photo`).
    pub fn as_str(self) -> &'static str {
        match self {
            VideoKind::Video => "video",
            VideoKind::MotionPhoto => "motion_photo",
            VideoKind::LivePhoto => "live_photo",
            VideoKind::Animation => "animation",
        }
    }
}

/// The video that belongs to a still: the MP4 inside a motion photo, the
/// MOV of a Live Photo, or an animation. Served at the still's own
/// `/api/v1/videos/:hash/:token/avc` and stored under its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillVideo {
    /// What it is.
    pub kind: VideoKind,
    /// Motion photos: where the embedded MP4 starts in the original, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Motion photos: its length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Live Photos: the paired MOV's original (the transcode's source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Live Photos: the paired MOV's asset hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_hash: Option<AssetHash>,
    /// Live Photos: the Apple ContentIdentifier both halves carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

impl StillVideo {
    /// A video of `kind` with nothing else known.
    pub fn new(kind: VideoKind) -> Self {
        StillVideo {
            kind,
            offset: None,
            length: None,
            source: None,
            source_hash: None,
            content_id: None,
        }
    }
}

/// An HDR transfer function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HdrTransfer {
    /// SMPTE ST 2084 (CICP 16).
    Pq,
    /// ARIB STD-B67 / BT.2100 HLG (CICP 18).
    Hlg,
}

/// A gain-map flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GainMap {
    /// Apple `urn:com:apple:photo:2020:aux:hdrgainmap` (HEIC aux image, JPEG MPF image).
    Apple,
    /// ISO 21496-1 (`tmap` item in HEIF/AVIF; APP2 segment in JPEG).
    Iso21496,
    /// Adobe/Google `hdrgm:` XMP (Ultra HDR JPEG), or Adobe's aux gain map.
    Hdrgm,
}

/// The output name under which a failed render of the original is kept:
/// it applies to every size (and format) of the asset.
pub const IMAGE_OUTPUT: &str = "image";

/// A permanent failure of one output of an asset (`image`: every size;
/// `avc`: the transcode), kept in the manifest so that every API replica
/// and worker sees it: requests answer 422 at once instead of rendering
/// again. Cleared by re-ingesting the same bytes, `backfill
/// --retry-failed`, or `POST /api/v1/assets/:hash/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The worker's reason (operators only: it may name keys and buckets).
    pub reason: String,
    /// What kind of failure (anonymous clients see its generic text).
    pub kind: FailureKind,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The version of the worker that recorded it.
    pub worker_version: String,
}

impl FailureRecord {
    /// A record of `reason`, now, by this build.
    pub fn now(reason: &str) -> Self {
        FailureRecord {
            reason: reason.chars().take(1000).collect(),
            kind: FailureKind::of_reason(reason),
            at: rfc3339_now(),
            worker_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Everything thumbfarm knows about an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: V1,
    pub hash: AssetHash,
    /// Where the original is.
    pub original: SourceRef,
    /// The original's media type (`image/jpeg`, `video/mp4`, …).
    pub media_type: String,
    /// Bytes of the original.
    #[serde(default)]
    pub bytes: u64,
    /// Pixel width after orientation (0 until known).
    pub width: u32,
    /// Pixel height after orientation (0 until known).
    pub height: u32,
    /// Duration in milliseconds, for video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Set when the original is HDR (PQ/HLG, or with a gain map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<HdrInfo>,
    /// Set when a still has a video (motion photo, linked Live Photo,
    /// animation); absent for videos (their media type says so) and plain stills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<StillVideo>,
    /// The ThumbHash of the image or poster (base64, standard alphabet with
    /// padding): a ~25-byte blurred placeholder, computed by the render job
    /// from pixels it already had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbhash: Option<String>,
    /// Stored outputs by rendition name (`fit_720`, `fit_720.webp`) or
    /// video format (`avc`).
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputInfo>,
    /// Permanent failures by output ([`IMAGE_OUTPUT`] for every size, `avc`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, FailureRecord>,
    /// RFC 3339 time of the first write.
    #[serde(default)]
    pub created_at: String,
    /// RFC 3339 time of the last write.
    #[serde(default)]
    pub updated_at: String,
}

impl Manifest {
    /// A new manifest: dimensions unknown until a worker reads the
    /// original, no outputs, written now.
    pub fn new(
        hash: AssetHash,
        original: SourceRef,
        media_type: impl Into<String>,
        bytes: u64,
    ) -> Self {
        let now = rfc3339_now();
        Manifest {
            v: V1,
            hash,
            original,
            media_type: media_type.into(),
            bytes,
            width: 0,
            height: 0,
            duration_ms: None,
            hdr: None,
            video: None,
            thumbhash: None,
            outputs: BTreeMap::new(),
            failures: BTreeMap::new(),
            created_at: now.clone(),
            updated_at: now,
        }
    }

    /// Marks the manifest as written now (RFC 3339).
    pub fn touch(&mut self) {
        self.updated_at = rfc3339_now();
    }

    /// Records what a worker learnt reading the original: its media type
    /// (unless a specific one is known already) and its size (unless known).
    pub fn learn_original(&mut self, media_type: &str, bytes: u64) {
        if self.media_type.is_empty() || self.media_type == "application/octet-stream" {
            self.media_type = media_type.to_string();
        }
        if self.bytes == 0 {
            self.bytes = bytes;
        }
    }

    /// When the manifest was last written (RFC 3339, or an HTTP date in
    /// manifests of older workers).
    pub fn updated(&self) -> Option<SystemTime> {
        parse_timestamp(&self.updated_at)
    }

    /// The recorded permanent failure that answers a request for `output`
    /// (a size name or `avc`): its own, or for a size the failure of the
    /// whole image.
    pub fn failure_for(&self, output: &str) -> Option<&FailureRecord> {
        self.failures.get(output).or_else(|| {
            (output != crate::keys::AVC)
                .then(|| self.failures.get(IMAGE_OUTPUT))
                .flatten()
        })
    }

    /// Whether the original is a video.
    pub fn is_video(&self) -> bool {
        self.media_type.starts_with("video/")
    }

    /// What the asset's `avc` URL serves, if anything: the video itself, a
    /// still's video (motion photo, Live Photo, animation), or for a GIF
    /// (every GIF is offered: a still one becomes a one-frame clip).
    pub fn video_kind(&self) -> Option<VideoKind> {
        if self.is_video() {
            Some(VideoKind::Video)
        } else if let Some(v) = &self.video {
            Some(v.kind)
        } else if self.media_type == "image/gif" {
            Some(VideoKind::Animation)
        } else {
            None
        }
    }

    /// Whether the pixel size is known yet.
    pub fn has_dimensions(&self) -> bool {
        self.width > 0 && self.height > 0
    }

    /// Parses a stored manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Serializes for storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Guesses a media type from a file extension (lower-case, without the dot).
pub fn media_type_for_extension(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "heic" | "heif" => "image/heif",
        "avif" => "image/avif",
        "dng" => "image/x-adobe-dng",
        "gpr" => "image/x-gopro-gpr",
        "cr2" => "image/x-canon-cr2",
        "cr3" => "image/x-canon-cr3",
        "crw" => "image/x-canon-crw",
        "nef" | "nrw" => "image/x-nikon-nef",
        "arw" | "srf" | "sr2" => "image/x-sony-arw",
        "raf" => "image/x-fuji-raf",
        "orf" => "image/x-olympus-orf",
        "rw2" => "image/x-panasonic-rw2",
        "pef" => "image/x-pentax-pef",
        "srw" => "image/x-samsung-srw",
        "mp4" | "m4v" => "video/mp4",
        "mov" | "qt" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

/// Whether a media type is a camera RAW (`image/x-adobe-dng`, `image/x-nikon-nef`, …).
pub fn is_camera_raw(media_type: &str) -> bool {
    media_type == "image/x-adobe-dng"
        || media_type == "image/x-raw"
        || (media_type.starts_with("image/x-")
            && [
                "gpr", "cr2", "cr3", "crw", "nef", "arw", "raf", "orf", "rw2", "pef", "srw",
            ]
            .iter()
            .any(|k| media_type.ends_with(k)))
}

/// Sniffs a media type from the first bytes of a file (magic numbers), so
/// that a JPEG named `.png` is still a JPEG.
pub fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"AVI " {
        Some("video/x-msvideo")
    } else if starts(b"FUJIFILMCCD-RAW") {
        Some("image/x-fuji-raf")
    } else if starts(b"IIRO") || starts(b"IIRS") || starts(b"MMOR") {
        Some("image/x-olympus-orf")
    } else if starts(b"IIU\0") {
        Some("image/x-panasonic-rw2")
    } else if head.len() >= 14 && &head[..2] == b"II" && &head[6..14] == b"HEAPCCDR" {
        Some("image/x-canon-crw")
    } else if (starts(b"II*\0") || starts(b"MM\0*")) && head.get(8..10) == Some(b"CR") {
        Some("image/x-canon-cr2")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        // DNG, NEF, ARW, PEF… are TIFFs too: the name tells them apart
        // (`is_camera_raw`), the worker's own probe decides for sure.
        Some("image/tiff")
    } else if starts(b"BM") {
        Some("image/bmp")
    } else if starts(b"\x1A\x45\xDF\xA3") {
        Some("video/webm")
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        Some(match brand {
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => "image/heif",
            b"avif" | b"avis" => "image/avif",
            b"crx " => "image/x-canon-cr3",
            b"qt  " => "video/quicktime",
            _ => "video/mp4",
        })
    } else {
        None
    }
}

/// The writers of this process's manifest updates, one at a time per key.
static MANIFEST_WRITERS: std::sync::LazyLock<crate::key_turns::KeyTurns> =
    std::sync::LazyLock::new(Default::default);

/// How many times [`update_manifest`] reads again after losing a race.
const UPDATE_ATTEMPTS: usize = 24;

/// Reads, changes and writes back the manifest at `key` so that no
/// concurrent writer's change is lost: the write is conditional on the
/// version read ([`Store::put_if`]), and on a conflict the manifest is read
/// again and `apply` runs again. The write is read back, so that a store
/// which ignores the condition cannot silently drop it either. `apply` must
/// be idempotent. Updates of one key within this process take turns. A
/// missing manifest is made by `create` (`None`: leave it missing). Returns
/// the manifest as read back after the write (the change in it, perhaps
/// with a concurrent writer's), if one was written.
pub async fn update_manifest(
    store: &dyn Store,
    key: &str,
    mut create: impl FnMut() -> Option<Manifest>,
    mut apply: impl FnMut(&mut Manifest),
) -> Result<Option<Manifest>, StoreError> {
    // Writers in this process take turns on the key; the conditional write
    // and the read-back below guard against writers in other processes.
    let _turn = MANIFEST_WRITERS.take(key).await;
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            // Lost a race: step aside for a random moment so that many
            // writers of one manifest take turns instead of colliding again.
            let cap = 2u64 << attempt.min(6);
            let wait = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=cap);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        let (mut m, version) = match get_json_versioned::<Manifest>(store, key).await? {
            Some((m, etag)) => (m, Some(etag)),
            None => match create() {
                Some(m) => (m, None),
                None => return Ok(None),
            },
        };
        apply(&mut m);
        m.touch();
        match store
            .put_if(
                key,
                m.to_json().into(),
                "application/json",
                version.as_deref(),
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
        // Read back: a store that ignores the condition (or checks it
        // apart from the write) may have let a concurrent writer replace
        // ours. `apply` is idempotent, so the change is still in when
        // applying it again changes nothing.
        match get_json_versioned::<Manifest>(store, key).await? {
            Some((now, _)) if still_applied(&now, &mut apply) => return Ok(Some(now)),
            Some(_) => {
                tracing::debug!(%key, "manifest change lost to a concurrent writer; merging again");
                continue;
            }
            None => continue,
        }
    }
    Err(StoreError::Conflict(format!(
        "{key}: still changing after {UPDATE_ATTEMPTS} attempts"
    )))
}

/// Whether `apply` (idempotent) would leave `m` as it is.
fn still_applied(m: &Manifest, apply: &mut impl FnMut(&mut Manifest)) -> bool {
    let mut again = m.clone();
    apply(&mut again);
    again == *m
}

/// Clears the recorded failures of the manifest at `key` (so that its
/// outputs are tried again) and returns the outputs that had failed; an
/// empty list, and no write, when nothing had.
pub async fn clear_failures(store: &dyn Store, key: &str) -> Result<Vec<String>, StoreError> {
    match get_json_versioned::<Manifest>(store, key).await? {
        Some((m, _)) if m.failures.is_empty() => return Ok(Vec::new()),
        None => return Ok(Vec::new()),
        Some(_) => {}
    }
    let mut cleared = Vec::new();
    update_manifest(
        store,
        key,
        || None,
        |m| {
            // A union: `apply` also runs on the read-back copy (then empty).
            cleared.extend(m.failures.keys().cloned());
            m.failures.clear();
        },
    )
    .await?;
    cleared.sort();
    cleared.dedup();
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_beats_the_name() {
        assert_eq!(
            sniff_media_type(b"\xFF\xD8\xFF\xE0rest"),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_media_type(b"\0\0\0\x18ftypheic\0\0"),
            Some("image/heif")
        );
        assert_eq!(
            sniff_media_type(b"\0\0\0\x18ftypisom\0\0"),
            Some("video/mp4")
        );
        assert_eq!(sniff_media_type(b""), None);
        assert_eq!(
            sniff_media_type(b"\0\0\0\x18ftypcrx \0\0"),
            Some("image/x-canon-cr3")
        );
        assert_eq!(
            sniff_media_type(b"II\x1a\0\0\0HEAPCCDR"),
            Some("image/x-canon-crw")
        );
        assert!(is_camera_raw(media_type_for_extension("NEF")));
        assert!(!is_camera_raw("image/tiff") && !is_camera_raw("image/x-icon"));
        assert_eq!(media_type_for_extension("JPG"), "image/jpeg");
    }

    #[test]
    fn manifest_round_trip() {
        let m = Manifest {
            v: V1,
            hash: AssetHash::of_bytes(b"x"),
            original: SourceRef {
                bucket: None,
                key: "originals/x".into(),
            },
            media_type: "image/jpeg".into(),
            bytes: 1,
            width: 2,
            height: 3,
            duration_ms: None,
            hdr: None,
            video: None,
            thumbhash: Some("1QcSHQRnh493V4dIh4eXh1h4kJUI".into()),
            outputs: BTreeMap::new(),
            failures: BTreeMap::new(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        assert!(!m.is_video() && m.has_dimensions());
    }

    #[test]
    fn hdr_json_shape_and_old_manifests() {
        let h = HdrInfo {
            transfer: None,
            gain_maps: vec![GainMap::Apple, GainMap::Iso21496],
            bit_depth: 8,
            dolby_vision: None,
        };
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"gain_maps":["apple","iso21496"],"bit_depth":8}"#
        );
        let back: HdrInfo = serde_json::from_str(r#"{"transfer":"hlg","bit_depth":12}"#).unwrap();
        assert_eq!(back.transfer, Some(HdrTransfer::Hlg));
        // A manifest written before the field existed still reads.
        let old = br#"{"v":1,"hash":"ec952cab562a55d96ddff2a2fcc41e875393a27a","original":{"key":"k"},"media_type":"image/jpeg","width":1,"height":1}"#;
        assert_eq!(Manifest::from_json(old).unwrap().hdr, None);
        assert_eq!(Manifest::from_json(old).unwrap().video, None);
    }

    #[test]
    fn still_video_and_dolby_vision_shapes() {
        let mut v = StillVideo::new(VideoKind::MotionPhoto);
        v.offset = Some(10);
        v.length = Some(20);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"kind":"motion_photo","offset":10,"length":20}"#
        );
        let h: HdrInfo = serde_json::from_str(
            r#"{"transfer":"pq","bit_depth":10,"dolby_vision":{"profile":8,"level":6,"compatibility":1}}"#,
        )
        .unwrap();
        assert_eq!(h.dolby_vision.map(|d| d.profile), Some(8));
        let mut m = Manifest::new(
            AssetHash::of_bytes(b"x"),
            SourceRef {
                bucket: None,
                key: "k".into(),
            },
            "image/jpeg",
            1,
        );
        assert_eq!(m.video_kind(), None);
        m.video = Some(StillVideo::new(VideoKind::LivePhoto));
        assert_eq!(m.video_kind(), Some(VideoKind::LivePhoto));
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn new_manifests_carry_rfc3339_times() {
        let source = SourceRef {
            bucket: None,
            key: "originals/x".into(),
        };
        let mut m = Manifest::new(
            AssetHash::of_bytes(b"x"),
            source,
            "application/octet-stream",
            0,
        );
        assert!(m.created_at.ends_with('Z') && m.created_at.contains('T'));
        assert!(m.updated().is_some());
        m.learn_original("image/png", 12);
        assert_eq!((m.media_type.as_str(), m.bytes), ("image/png", 12));
        m.learn_original("image/gif", 99);
        assert_eq!((m.media_type.as_str(), m.bytes), ("image/png", 12));
        m.updated_at = "Tue, 14 Nov 2023 22:13:20 GMT".into();
        assert!(
            m.updated().is_some(),
            "HTTP dates of older workers still read"
        );
    }
}
