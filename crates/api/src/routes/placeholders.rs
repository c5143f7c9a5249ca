//! `GET /api/v1/t/{hash}/{token}/thumbhash`: the asset's ThumbHash as a
//! small PNG (at most 32×32, blurred by construction), for clients that
//! cannot decode ThumbHash themselves. The ThumbHash itself (base64) is in
//! the preview list and the ingest response.
//!
//! The token is checked as for a thumbnail (in `signed` mode it signs the
//! subject `thumbhash`); an asset whose render job has not run yet has no
//! ThumbHash: 404 with the placeholder, like a size that does not exist.

use crate::http::entity::respond;
use crate::http::error::ThumbError;
use crate::routes::manifests::{cached_manifest, load_manifest};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine;
use thumbfarm_shared::store::ObjectMeta;
use thumbfarm_shared::tokens::Subject;
use thumbfarm_shared::AssetHash;

/// The last path segment that names the placeholder.
pub const NAME: &str = "thumbhash";

/// Answers the placeholder of `hash` (HEAD and `If-None-Match` as for
/// thumbnails).
pub async fn serve(
    state: &AppState,
    hash: &AssetHash,
    token: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ThumbError> {
    if !state.tokens().verify(hash, Subject::Placeholder, token) {
        return Err(ThumbError::BadToken);
    }
    let mut manifest = cached_manifest(state, hash).await?;
    if manifest.thumbhash.is_none() {
        // Cached before its render job ran: read it again.
        if let Ok(Some(fresh)) = load_manifest(state, hash).await {
            manifest = std::sync::Arc::new(fresh);
            state.cache().put_manifest(std::sync::Arc::clone(&manifest));
        }
    }
    let encoded = manifest
        .thumbhash
        .as_deref()
        .ok_or(ThumbError::NoPlaceholder)?;
    let png = render_png(encoded).ok_or(ThumbError::NoPlaceholder)?;
    // The ETag follows from the ThumbHash, so it changes when it does.
    let meta = ObjectMeta {
        key: String::new(),
        size: png.len() as u64,
        etag: format!("th-{}", AssetHash::of_bytes(encoded.as_bytes())),
        last_modified: None,
        content_type: None,
    };
    let cache_control = &state.options().cache_control;
    Ok(respond(
        cache_control,
        "image/png",
        false,
        &meta,
        Body::from(png),
        method,
        headers,
    ))
}

/// The PNG of a base64 ThumbHash; `None` when it does not decode.
pub fn render_png(encoded: &str) -> Option<Vec<u8>> {
    let hash = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    // A ThumbHash is 5 to 25 bytes; anything else is not one.
    if !(5..=32).contains(&hash.len()) {
        return None;
    }
    let (w, h, rgba) = std::panic::catch_unwind(|| thumbhash::thumb_hash_to_rgba(&hash))
        .ok()?
        .ok()?;
    let mut out = Vec::new();
    {
        let mut encoder =
            png::Encoder::new(&mut out, u32::try_from(w).ok()?, u32::try_from(h).ok()?);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&rgba).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbhash_becomes_a_png_of_its_shape() {
        // ThumbHash of a 4:3 landscape (from the reference implementation's demo).
        let hash: Vec<u8> = {
            let rgba: Vec<u8> = (0..100 * 75)
                .flat_map(|i| [(i % 100) as u8 * 2, 90, 200, 255])
                .collect();
            thumbhash::rgba_to_thumb_hash(100, 75, &rgba)
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(&hash);
        let png = render_png(&encoded).expect("a PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert!(info.width > info.height, "{}x{}", info.width, info.height);
        assert!(info.width <= 32);
    }

    #[test]
    fn junk_is_no_placeholder() {
        assert!(render_png("not base64!").is_none());
        assert!(render_png("AAAA").is_none());
        assert!(render_png(&"A".repeat(400)).is_none());
    }
}
