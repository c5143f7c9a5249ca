//! The video of a motion photo: the MP4 inside a JPEG/HEIC still, cut out
//! into a file of its own so that the normal remux/transcode path takes it
//! (remuxed when it already is streamable H.264, transcoded otherwise).

use super::error::VideoError;
use std::path::{Path, PathBuf};
use thumbfarm_shared::manifest::sniff_media_type;
use thumbfarm_shared::motion_photo::{find_embedded_video, EmbeddedVideo};

/// The largest still read whole to look for its video (phones write
/// motion photos of a few MB; the video limit of 8 GiB is for real videos).
pub const MAX_MOTION_PHOTO_BYTES: u64 = 512 * 1024 * 1024;

/// Whether a still of this media type can carry an embedded video.
pub fn may_be_motion_photo(media_type: &str) -> bool {
    matches!(media_type, "image/jpeg" | "image/heif" | "image/avif")
}

/// Finds the MP4 inside the still at `still` and writes it to
/// `dir/motion.mp4`. `Ok(None)` when the still carries no video; an error
/// when it says it does but the video cannot be found (permanent).
pub fn extract_motion_video(
    still: &Path,
    dir: &Path,
) -> Result<Option<(PathBuf, EmbeddedVideo)>, VideoError> {
    let size = std::fs::metadata(still)?.len();
    if size > MAX_MOTION_PHOTO_BYTES {
        return Err(VideoError::TooLarge(format!(
            "a {size}-byte still, over the {MAX_MOTION_PHOTO_BYTES}-byte limit of a motion photo"
        )));
    }
    let data = std::fs::read(still)?;
    let Some(found) = embedded_video(&data)? else {
        return Ok(None);
    };
    let bytes = found.slice(&data).ok_or_else(|| {
        VideoError::NotVideo("motion photo: the embedded video range is outside the file".into())
    })?;
    let out = dir.join("motion.mp4");
    std::fs::write(&out, bytes)?;
    Ok(Some((out, found)))
}

/// The embedded video of a still's bytes (see [`extract_motion_video`]).
pub fn embedded_video(data: &[u8]) -> Result<Option<EmbeddedVideo>, VideoError> {
    let media_type = sniff_media_type(data.get(..64).unwrap_or(data)).unwrap_or("");
    if !may_be_motion_photo(media_type) {
        return Ok(None);
    }
    find_embedded_video(data).map_err(|e| VideoError::NotVideo(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_stills_are_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("huge.jpg");
        // Sparse: the size is what counts, nothing is written.
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_MOTION_PHOTO_BYTES + 1).expect("set_len");
        let err = extract_motion_video(&path, dir.path()).unwrap_err();
        assert!(matches!(err, VideoError::TooLarge(_)), "{err}");
    }

    #[test]
    fn only_jpeg_and_heif_are_looked_at() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(b"<x:xmpmeta Camera:MotionPhoto=\"1\"></x:xmpmeta>");
        assert!(embedded_video(&png).unwrap().is_none());
        let jpeg = b"\xFF\xD8\xFF<x:xmpmeta Camera:MotionPhoto=\"1\"></x:xmpmeta>";
        assert!(embedded_video(jpeg).is_err(), "marked, but no video");
    }
}
