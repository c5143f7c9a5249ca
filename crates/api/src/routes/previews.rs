//! `GET /api/v1/previews/{hash}`: the FotoWeb-shaped preview list (API key).

use crate::http::error::ApiError;
use crate::routes::manifests::keyed_manifest;
use crate::state::AppState;
use crate::urls::{rendition_url, thumb_url, video_url};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::renditions::{OutputFormat, Rendition};
use thumbfarm_shared::sizes::{self, Method, Plan, Size, SizeLimits};
use thumbfarm_shared::tokens::TokenPolicy;

/// One entry of a preview list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The size name (`fit_720`).
    pub name: String,
    /// max(width, height) of the actual pixels.
    pub size: u32,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// A ready URL with a valid token (relative, or absolute with `--public-url`).
    pub href: String,
    /// Whether width == height.
    pub square: bool,
    /// Set when this size failed permanently (a generic reason; the worker's
    /// own is on the keyed status page and in the logs): its URL answers 422
    /// until the failure is cleared (`POST /api/v1/assets/{hash}/retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The asset's video, when it has one (every entry of the list carries
    /// the same object; absent for plain stills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<PreviewVideo>,
    /// Every format this size is served in, by name (`jpeg`, `webp`,
    /// `avif`), each with a ready URL (`…/tile_500.webp`); `colors` has
    /// its PNG only (under `jpeg`, its classic format).
    #[serde(default)]
    pub formats: BTreeMap<String, PreviewFormat>,
    /// The asset's ThumbHash (base64; every entry carries the same), once
    /// its render job has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbhash: Option<String>,
}

/// One format of a size in the preview list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewFormat {
    /// A ready URL naming the format (`…/tile_500.avif`).
    pub href: String,
    /// The MIME type served.
    pub content_type: String,
    /// Whether the file is stored already (else the first request renders it).
    pub stored: bool,
    /// Set when this size in this format failed permanently (generic reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The video of an asset, as the preview list offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewVideo {
    /// `video`, `motion_photo`, `live_photo` or `animation`.
    pub kind: String,
    /// A ready URL of the AVC MP4 (`/api/v1/videos/<hash>/<token>/avc`, the
    /// asset's own hash, also for a Live Photo).
    pub href: String,
}

/// The video entry of an asset (`None` for plain stills).
pub fn preview_video(
    tokens: &TokenPolicy,
    public_url: Option<&str>,
    manifest: &Manifest,
) -> Option<PreviewVideo> {
    let kind = manifest.video_kind()?;
    Some(PreviewVideo {
        kind: kind.as_str().to_string(),
        href: video_url(tokens, public_url, &manifest.hash, AVC),
    })
}

/// The previews available for an asset: every size within the dynamic limit
/// that exists for the original, resolved (a fit size larger than the
/// original is listed once, as the size that actually serves it), with the
/// exact output pixels. While the original's dimensions are not known yet
/// (just ingested), only the sizes whose pixels do not depend on it are
/// listed (`colors` and the centre tiles). An asset with a video (a video,
/// motion photo, linked Live Photo or animation) has a `video` object on
/// every entry.
pub fn preview_list(
    tokens: &TokenPolicy,
    limits: &SizeLimits,
    formats: &[OutputFormat],
    public_url: Option<&str>,
    manifest: &Manifest,
) -> Vec<Preview> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let video = preview_video(tokens, public_url, manifest);
    for size in Size::ALL {
        if !limits.allows_on_request(size) {
            continue;
        }
        let (resolved, width, height) = if manifest.has_dimensions() {
            let Some(resolved) = sizes::resolve(size, manifest.width, manifest.height) else {
                continue;
            };
            match sizes::plan(resolved, manifest.width, manifest.height) {
                Plan::Render(g) => (resolved, g.width, g.height),
                Plan::ServeAs(_) | Plan::NotApplicable => continue,
            }
        } else {
            let spec = size.spec();
            if !matches!(spec.method, Method::FillCenter | Method::Colors) {
                continue;
            }
            (size, spec.width, spec.height)
        };
        if seen.contains(&resolved) {
            continue;
        }
        seen.push(resolved);
        out.push(Preview {
            name: resolved.name().to_string(),
            size: width.max(height),
            width,
            height,
            href: thumb_url(tokens, public_url, &manifest.hash, resolved),
            square: width == height,
            failed: manifest
                .failure_for(resolved.name())
                .map(|f| f.kind.public_text().to_string()),
            video: video.clone(),
            formats: preview_formats(tokens, public_url, manifest, resolved, formats),
            thumbhash: manifest.thumbhash.clone(),
        });
    }
    out
}

/// The formats of `size` for the preview list: JPEG (the classic format)
/// and every other served format the size has.
fn preview_formats(
    tokens: &TokenPolicy,
    public_url: Option<&str>,
    manifest: &Manifest,
    size: Size,
    formats: &[OutputFormat],
) -> BTreeMap<String, PreviewFormat> {
    let mut all = vec![OutputFormat::Jpeg];
    all.extend(formats.iter().copied().filter(|f| *f != OutputFormat::Jpeg));
    Rendition::of(size, &all)
        .into_iter()
        .map(|r| {
            let entry = PreviewFormat {
                href: rendition_url(tokens, public_url, &manifest.hash, r),
                content_type: r.content_type().to_string(),
                stored: manifest.outputs.contains_key(&r.name()),
                failed: manifest
                    .failure_for(&r.name())
                    .map(|f| f.kind.public_text().to_string()),
            };
            (r.format.name().to_string(), entry)
        })
        .collect()
}

/// The preview list handler.
pub async fn preview_list_handler(
    state: &AppState,
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let manifest = keyed_manifest(state, headers, path).await?;
    let list = preview_list(
        state.tokens(),
        state.limits(),
        &state.options().formats,
        state.options().public_url.as_deref(),
        &manifest,
    );
    let mut response = Json(list).into_response();
    // Signed URLs are per-caller material: keep them out of shared caches.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `GET /api/v1/previews/{hash}`.
pub async fn preview_list_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    match preview_list_handler(&state, &headers, path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::messages::SourceRef;
    use thumbfarm_shared::AssetHash;

    fn manifest(w: u32, h: u32) -> Manifest {
        let source = SourceRef {
            bucket: None,
            key: "originals/x.jpg".into(),
        };
        let mut m = Manifest::new(AssetHash::of_bytes(b"x"), source, "image/jpeg", 1);
        m.width = w;
        m.height = h;
        m
    }

    #[test]
    fn landscape_list() {
        let list = preview_list(
            &TokenPolicy::Public,
            &SizeLimits::default(),
            &OutputFormat::ALL,
            None,
            &manifest(4000, 3000),
        );
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 16, "{names:?}: fit_7680 is served as fit_4096");
        assert!(!names.contains(&"fit_7680"));
        let fit = list.iter().find(|p| p.name == "fit_1920").unwrap();
        assert_eq!(
            (fit.width, fit.height, fit.size, fit.square),
            (1600, 1200, 1600, false)
        );
        let tile = list.iter().find(|p| p.name == "tile_224").unwrap();
        assert!(tile.square && tile.size == 224);
        assert!(tile.href.ends_with("/public/tile_224"));
        let names: Vec<&str> = tile.formats.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["avif", "jpeg", "webp"]);
        assert!(tile.formats["webp"].href.ends_with("/public/tile_224.webp"));
        assert!(tile.formats["jpeg"].href.ends_with("/public/tile_224.jpg"));
        assert_eq!(tile.formats["avif"].content_type, "image/avif");
        let colors = list.iter().find(|p| p.name == "colors").unwrap();
        assert_eq!(colors.formats.keys().collect::<Vec<_>>(), vec!["jpeg"]);
        assert!(colors.formats["jpeg"].href.ends_with("/public/colors.png"));
    }

    #[test]
    fn stills_with_a_video_say_so() {
        use thumbfarm_shared::manifest::{StillVideo, VideoKind};
        let mut m = manifest(4000, 3000);
        let plain = preview_list(
            &TokenPolicy::Public,
            &SizeLimits::default(),
            &OutputFormat::ALL,
            None,
            &m,
        );
        assert!(plain.iter().all(|p| p.video.is_none()));
        let json = serde_json::to_value(&plain[0]).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["formats", "height", "href", "name", "size", "square", "width"],
            "the FotoWeb fields, unchanged, and the formats"
        );
        for (kind, name) in [
            (VideoKind::MotionPhoto, "motion_photo"),
            (VideoKind::LivePhoto, "live_photo"),
            (VideoKind::Animation, "animation"),
        ] {
            m.video = Some(StillVideo::new(kind));
            let list = preview_list(
                &TokenPolicy::Public,
                &SizeLimits::default(),
                &OutputFormat::ALL,
                None,
                &m,
            );
            let video = list[0].video.as_ref().expect("video entry");
            assert_eq!(video.kind, name);
            assert_eq!(
                video.href,
                format!("/api/v1/videos/{}/public/avc", m.hash),
                "the still's own hash"
            );
            assert_eq!(list.len(), plain.len());
        }
        m.video = None;
        m.media_type = "video/mp4".into();
        let list = preview_list(
            &TokenPolicy::Public,
            &SizeLimits::default(),
            &OutputFormat::ALL,
            None,
            &m,
        );
        assert_eq!(
            list[0].video.as_ref().map(|v| v.kind.as_str()),
            Some("video")
        );
    }

    #[test]
    fn square_small_and_limited() {
        let limits = SizeLimits::new(720, 720);
        let list = preview_list(
            &TokenPolicy::Public,
            &limits,
            &[OutputFormat::Jpeg],
            Some("https://t.example"),
            &manifest(500, 500),
        );
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["colors", "tile_50", "tile_100", "tile_224", "fit_720", "tile_500"]
        );
        assert!(list[0].href.starts_with("https://t.example/api/v1/t/"));
        let unknown = preview_list(&TokenPolicy::Public, &limits, &[], None, &manifest(0, 0));
        let names: Vec<&str> = unknown.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["colors", "tile_50", "tile_100", "tile_224", "tile_500"]
        );
    }
}
