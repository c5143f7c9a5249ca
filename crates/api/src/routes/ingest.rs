//! `POST /api/v1/ingest` (API key): the request body is the original file.
//!
//! The body is streamed into a temporary file while its SHA-1 is computed;
//! the original is stored under `originals/…/<sha1>.<ext>`, its manifest
//! written (dimensions 0 until the worker knows them), and the
//! pre-generation jobs published. Uploading bytes that are already known is a
//! no-op that answers 200 with the same hash, except that it clears the
//! asset's recorded failures and renders those outputs again, and that it
//! replaces a damaged manifest.
//!
//! The answer carries the asset's ThumbHash once its render job has run: at
//! once for a known asset, and for a new one with `?wait=true`, which waits
//! (up to `--wait-timeout`) for the pre-generation render before answering.

use crate::http::auth::check_api_key;
use crate::http::error::ApiError;
use crate::planning::jobs;
use crate::routes::manifests::load_manifest;
use crate::routes::previews::{preview_list, Preview};
use crate::services::failures::retry_failed;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use thumbfarm_shared::animation::is_animated_image;
use thumbfarm_shared::hash::HashingReader;
use thumbfarm_shared::manifest::{
    is_camera_raw, media_type_for_extension, sniff_media_type, Manifest, StillVideo, VideoKind,
};
use thumbfarm_shared::messages::SourceRef;
use thumbfarm_shared::motion_photo::find_embedded_video;
use thumbfarm_shared::store::StoreError;
use tokio::io::AsyncWriteExt;

/// Query parameters of the ingest route.
#[derive(Debug, Default, Deserialize)]
pub struct IngestQuery {
    /// The original file name (for its extension, when sniffing fails).
    pub name: Option<String>,
    /// Wait (up to `--wait-timeout`) for the render job, so that the answer
    /// has the dimensions, the sizes and the ThumbHash.
    #[serde(default)]
    pub wait: bool,
}

/// The answer of the ingest route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestResponse {
    /// The asset hash (SHA-1 of the bytes).
    pub hash: String,
    /// The media type (sniffed from the bytes, else from the name).
    pub media_type: String,
    /// Whether the asset was new.
    pub new: bool,
    /// The previews known now (see the preview list).
    pub previews: Vec<Preview>,
    /// The ThumbHash (base64), once the render job has run (see `?wait=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbhash: Option<String>,
}

/// The extension stored for a media type.
pub fn extension_for_media_type(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/tiff" => "tif",
        "image/bmp" => "bmp",
        "image/heif" => "heic",
        "image/avif" => "avif",
        "image/x-adobe-dng" => "dng",
        "image/x-gopro-gpr" => "gpr",
        "image/x-canon-cr2" => "cr2",
        "image/x-canon-cr3" => "cr3",
        "image/x-canon-crw" => "crw",
        "image/x-nikon-nef" => "nef",
        "image/x-sony-arw" => "arw",
        "image/x-fuji-raf" => "raf",
        "image/x-olympus-orf" => "orf",
        "image/x-panasonic-rw2" => "rw2",
        "image/x-pentax-pef" => "pef",
        "image/x-samsung-srw" => "srw",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/x-msvideo" => "avi",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        _ => return None,
    })
}

/// The file name in a `Content-Disposition` header (`filename="a.jpg"`,
/// `filename=a.jpg`, or `filename*=UTF-8''a.jpg`).
pub fn content_disposition_name(value: &str) -> Option<String> {
    let mut plain = None;
    for part in value.split(';').map(str::trim) {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let val = val.trim();
        if key == "filename*" {
            if let Some((_, encoded)) = val.split_once("''") {
                return Some(crate::urls::percent_decode(encoded));
            }
        } else if key == "filename" {
            plain = Some(val.trim_matches('"').to_string());
        }
    }
    plain.filter(|n| !n.is_empty())
}

/// The extension of a file name, if any.
fn name_extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (_, ext) = base.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase()).filter(|e| !e.is_empty())
}

/// Media type and stored extension: sniffed from the bytes, else from the name.
pub fn classify(head: &[u8], name: Option<&str>) -> (String, String) {
    let by_name = name.and_then(name_extension);
    if let Some(media_type) = sniff_media_type(head) {
        // DNG, NEF, ARW, PEF… are TIFFs: a RAW extension names the kind.
        if media_type == "image/tiff" {
            if let Some(ext) = by_name.as_deref() {
                let named = media_type_for_extension(ext);
                if is_camera_raw(named) {
                    return (named.to_string(), ext.to_string());
                }
            }
        }
        let ext = extension_for_media_type(media_type).unwrap_or("bin");
        return (media_type.to_string(), ext.to_string());
    }
    match by_name {
        Some(ext) => (media_type_for_extension(&ext).to_string(), ext),
        None => ("application/octet-stream".to_string(), "bin".to_string()),
    }
}

/// What was received.
struct Received {
    path: tempfile::TempPath,
    hash: thumbfarm_shared::AssetHash,
    bytes: u64,
    head: Vec<u8>,
}

/// Streams the body into a temporary file, hashing it and enforcing `limit`.
async fn receive(body: Body, limit: u64) -> Result<Received, ApiError> {
    let io = |e: std::io::Error| ApiError::Unavailable(format!("temporary file: {e}"));
    let (file, path) = tempfile::Builder::new()
        .prefix("thumbfarm-upload-")
        .tempfile()
        .map_err(io)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = HashingReader::new();
    let mut head = Vec::with_capacity(64);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if hasher.bytes() + chunk.len() as u64 > limit {
            return Err(ApiError::TooLarge { limit });
        }
        if head.len() < 64 {
            let take = (64 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    drop(file);
    let bytes = hasher.bytes();
    if bytes == 0 {
        return Err(ApiError::BadRequest(
            "empty body: send the file as the request body".into(),
        ));
    }
    Ok(Received {
        path,
        hash: hasher.finish(),
        bytes,
        head,
    })
}

/// Largest upload scanned for a motion photo's video at ingest (larger
/// stills are found by the render job instead).
const MOTION_PHOTO_SCAN_LIMIT: u64 = 256 * 1024 * 1024;

/// The video of an uploaded still: the embedded MP4 of a motion photo
/// (JPEG/HEIC), so that ingest plans its transcode, or the animation of an
/// APNG/WebP (made into a clip on request). A byte scan, no decoding. A
/// still that says it has a video that cannot be found is logged and gets none.
async fn motion_photo_video(
    path: &std::path::Path,
    media_type: &str,
    bytes: u64,
) -> Option<StillVideo> {
    let animation = matches!(media_type, "image/png" | "image/webp");
    if !(animation || matches!(media_type, "image/jpeg" | "image/heif" | "image/avif"))
        || bytes > MOTION_PHOTO_SCAN_LIMIT
    {
        return None;
    }
    if animation {
        let path = path.to_path_buf();
        let animated = tokio::task::spawn_blocking(move || {
            std::fs::read(&path).is_ok_and(|data| is_animated_image(&data))
        })
        .await
        .unwrap_or(false);
        return animated.then(|| StillVideo::new(VideoKind::Animation));
    }
    let path = path.to_path_buf();
    let found = tokio::task::spawn_blocking(move || {
        std::fs::read(&path).map(|data| find_embedded_video(&data))
    })
    .await;
    match found {
        Ok(Ok(Ok(Some(video)))) => {
            let mut v = StillVideo::new(VideoKind::MotionPhoto);
            v.offset = Some(video.offset);
            v.length = Some(video.length);
            Some(v)
        }
        Ok(Ok(Ok(None))) => None,
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "upload says it is a motion photo; no video offered");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "motion photo scan: upload unreadable");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "motion photo scan failed");
            None
        }
    }
}

/// `POST /api/v1/ingest`.
pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IngestQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    match ingest_inner(&state, &headers, query, body).await {
        Ok(response) => response,
        Err(e) => {
            state.metrics().ingest(match e {
                ApiError::Unavailable(_) => "error",
                _ => "rejected",
            });
            e.into_response()
        }
    }
}

async fn ingest_inner(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<Query<IngestQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    check_api_key(&state.options().api_keys, headers)?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::BadRequest("malformed query string".into()));
    };
    let limit = state.options().max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    let name = query.name.or_else(|| {
        headers
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(content_disposition_name)
    });
    let received = receive(body, limit).await?;
    let hash = received.hash;
    let unavailable = |e: &dyn std::fmt::Display| ApiError::Unavailable(e.to_string());

    match load_manifest(state, &hash).await {
        Ok(Some(manifest)) => {
            // The same bytes again: a no-op, except that outputs which failed
            // permanently are tried again (an operator may have fixed why).
            let retried = retry_failed(state, &manifest)
                .await
                .map_err(|e| unavailable(&e))?;
            tracing::info!(%hash, cleared = ?retried.cleared, "upload of a known asset");
            state.metrics().ingest("known");
            let manifest = if retried.cleared.is_empty() {
                manifest
            } else {
                load_manifest(state, &hash)
                    .await
                    .map_err(|e| unavailable(&e))?
                    .unwrap_or(manifest)
            };
            return Ok(answer(state, &manifest, false));
        }
        Ok(None) => {}
        // A damaged manifest is replaced by the fresh one below.
        Err(StoreError::Corrupt { key, message }) => {
            tracing::warn!(%hash, %key, %message, "replacing a damaged manifest");
        }
        Err(e) => return Err(unavailable(&e)),
    }

    let (media_type, ext) = classify(&received.head, name.as_deref());
    let layout = state.layout();
    let original_key = layout.original(&hash, &ext);
    let store = state.store();
    store
        .put_file(&original_key, &received.path, &media_type)
        .await
        .map_err(|e| unavailable(&e))?;
    let original = SourceRef {
        bucket: None,
        key: original_key.clone(),
    };
    let mut manifest = Manifest::new(hash, original, media_type.clone(), received.bytes);
    manifest.video = motion_photo_video(&received.path, &media_type, received.bytes).await;
    // The manifest goes first, so that a worker finishing a job merges into it
    // instead of being overwritten by it.
    let manifest_key = layout.manifest(&hash);
    store
        .put(&manifest_key, manifest.to_json().into(), "application/json")
        .await
        .map_err(|e| unavailable(&e))?;
    for job in jobs::pregeneration_jobs(state.pregeneration(), (&manifest).into()) {
        if let Err(e) = job.publish(state.queue().as_ref()).await {
            // Without its jobs the asset would look known and never render:
            // forget the manifest so that uploading again retries.
            if let Err(del) = store.delete(&manifest_key).await {
                tracing::error!(%hash, error = %del, "could not remove manifest after failed publish");
            }
            return Err(unavailable(&e));
        }
        state.metrics().job_published(job.routing_key());
    }
    tracing::info!(%hash, %media_type, bytes = received.bytes, key = %original_key, "ingested");
    state.metrics().ingest("new");
    if query.wait {
        manifest = wait_for_render(state, manifest).await;
    }
    Ok(answer(state, &manifest, true))
}

/// The manifest once a worker has rendered the asset (it has a ThumbHash or
/// a recorded failure), or as it is when `--wait-timeout` passes first.
async fn wait_for_render(state: &AppState, mut manifest: Manifest) -> Manifest {
    let deadline = tokio::time::Instant::now() + state.options().wait_timeout;
    let mut pause = std::time::Duration::from_millis(20);
    while manifest.thumbhash.is_none() && manifest.failures.is_empty() {
        if tokio::time::Instant::now() + pause > deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
        match load_manifest(state, &manifest.hash).await {
            Ok(Some(fresh)) => manifest = fresh,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(hash = %manifest.hash, error = %e, "manifest not read while waiting");
            }
        }
    }
    manifest
}

fn answer(state: &AppState, manifest: &Manifest, new: bool) -> Response {
    let body = IngestResponse {
        hash: manifest.hash.to_string(),
        media_type: manifest.media_type.clone(),
        new,
        previews: preview_list(
            state.tokens(),
            state.limits(),
            &state.options().formats,
            state.options().public_url.as_deref(),
            manifest,
        ),
        thumbhash: manifest.thumbhash.clone(),
    };
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/previews/{}", manifest.hash)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_content_disposition() {
        assert_eq!(
            content_disposition_name("attachment; filename=\"a b.JPG\""),
            Some("a b.JPG".into())
        );
        assert_eq!(
            content_disposition_name("inline; filename=x.png"),
            Some("x.png".into())
        );
        assert_eq!(
            content_disposition_name(
                "attachment; filename=\"x\"; filename*=UTF-8''%C3%A9t%C3%A9.heic"
            ),
            Some("été.heic".into())
        );
        assert_eq!(content_disposition_name("attachment"), None);
    }

    #[test]
    fn classify_prefers_bytes() {
        assert_eq!(
            classify(b"\xFF\xD8\xFF\xE0", Some("x.png")),
            ("image/jpeg".into(), "jpg".into())
        );
        assert_eq!(
            classify(b"????", Some("dir/x.HEIC")),
            ("image/heif".into(), "heic".into())
        );
        assert_eq!(
            classify(b"????", None),
            ("application/octet-stream".into(), "bin".into())
        );
        assert_eq!(
            classify(b"II*\0\x08\0\0\0", Some("DSC_0001.NEF")),
            ("image/x-nikon-nef".into(), "nef".into())
        );
        assert_eq!(
            classify(b"II*\0\x08\0\0\0", Some("scan.tif")),
            ("image/tiff".into(), "tif".into())
        );
        assert_eq!(
            classify(b"\0\0\0\x18ftypcrx \0\0", Some("IMG_1.CR3")),
            ("image/x-canon-cr3".into(), "cr3".into())
        );
        assert_eq!(
            classify(b"\0\0\0\x18ftypisom", None),
            ("video/mp4".into(), "mp4".into())
        );
    }
}
