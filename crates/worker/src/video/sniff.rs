//! Whether an original goes through the video pipeline, from its first bytes.

use std::path::Path;

/// Whether a file whose first bytes are `head` should go through the video
/// pipeline: its magic numbers say video, or they say nothing and the job's
/// media type `hint` says video. QuickTime files that start with a `wide`,
/// `mdat`, `moov`, `free` or `skip` atom instead of `ftyp` count as video.
pub fn looks_like_video(head: &[u8], hint: Option<&str>) -> bool {
    match thumbfarm_shared::manifest::sniff_media_type(head) {
        Some(t) => t.starts_with("video/"),
        None => {
            let qt_atom = head.len() >= 8
                && matches!(&head[4..8], b"wide" | b"mdat" | b"moov" | b"free" | b"skip");
            qt_atom || hint.is_some_and(|h| h.starts_with("video/"))
        }
    }
}

/// [`looks_like_video`] for a file on disk (reads its first 64 bytes).
pub fn file_looks_like_video(path: &Path, hint: Option<&str>) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let read = file.read(&mut head[n..])?;
        if read == 0 {
            break;
        }
        n += read;
    }
    Ok(looks_like_video(&head[..n], hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_sniffing() {
        assert!(looks_like_video(b"\0\0\0\x18ftypisom\0\0\0\0", None));
        assert!(looks_like_video(b"\0\0\0\x08wide\0\0\0\0", None));
        assert!(!looks_like_video(b"\xFF\xD8\xFF\xE0", Some("video/mp4")));
        assert!(looks_like_video(b"????????", Some("video/mp4")));
        assert!(!looks_like_video(b"????????", None));
    }
}
