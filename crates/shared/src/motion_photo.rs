//! Motion photos: where the MP4 inside a JPEG or HEIC still is.
//!
//! Layouts read (every offset is checked against the buffer; garbage gives
//! an error, never a panic):
//! - **Google / Pixel, Motion Photo v1** (JPEG and HEIC): XMP
//!   `Container:Directory` with an item `Item:Semantic="MotionPhoto"` and
//!   `Item:Length`: the video is the last `Length` bytes of the file;
//! - **Google, older "MicroVideo"**: XMP `GCamera:MicroVideoOffset`: the
//!   video starts that many bytes before the end of the file;
//! - **Samsung HEIC**: a top-level `mpvd` box holds the MP4;
//! - **Samsung JPEG**: a `MotionPhoto_Data` marker in the SEF trailer,
//!   directly followed by the MP4, which ends where the trailer's `SEFH`
//!   directory begins (`…SEFH…<u32 size>SEFT` at the end of the file).
//!
//! A candidate counts only when an ISO BMFF `ftyp` box starts there. A file
//! that says it is a motion photo (XMP `MotionPhoto="1"`, `MicroVideo="1"`,
//! the Samsung marker or an `mpvd` box) but has no valid candidate is a
//! [`MotionPhotoError`]; a file without any of these is `Ok(None)`.

/// The MP4 found inside a still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedVideo {
    /// Where the MP4 starts, in bytes from the start of the file.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u64,
    /// Which layout located it.
    pub layout: MotionPhotoLayout,
}

impl EmbeddedVideo {
    /// The MP4's bytes within `data` (the buffer it was found in).
    pub fn slice<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::try_from(self.length).ok()?)?;
        data.get(start..end)
    }
}

/// Which motion-photo layout located the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotionPhotoLayout {
    /// XMP `Container:Directory` (Motion Photo v1).
    GoogleContainer,
    /// XMP `MicroVideoOffset` (older Google camera).
    GoogleMicroVideo,
    /// Samsung's top-level `mpvd` box (HEIC).
    SamsungMpvd,
    /// Samsung's `MotionPhoto_Data` trailer (JPEG).
    SamsungTrailer,
}

/// A still that says it carries a video, but where the video cannot be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MotionPhotoError {
    /// The declared length or offset reaches past the end of the file.
    #[error(
        "motion photo: the {what} ({value} bytes) reaches past the end of the {len}-byte file"
    )]
    PastEnd {
        /// Which declaration.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The file's length.
        len: u64,
    },
    /// The file is marked as a motion photo but no MP4 is where it should be.
    #[error("motion photo: marked by {marker}, but no MP4 (ftyp box) where it says")]
    NoVideo {
        /// What marked it.
        marker: &'static str,
    },
}

const MP4_MIN: usize = 16;

/// Finds the MP4 inside a motion photo (see the module docs): `Ok(None)` for
/// a plain still.
pub fn find_embedded_video(data: &[u8]) -> Result<Option<EmbeddedVideo>, MotionPhotoError> {
    let xmp = xmp_packet(data);
    let mut marker: Option<&'static str> = None;
    let mut past_end: Option<MotionPhotoError> = None;

    if let Some(xmp) = xmp {
        if let Some(length) = container_video_length(xmp) {
            marker = Some("XMP Container:Directory");
            match check_tail(data, length, "XMP Item:Length") {
                Ok(Some(v)) => return Ok(Some(v.with(MotionPhotoLayout::GoogleContainer))),
                Ok(None) => {}
                Err(e) => past_end = Some(e),
            }
        }
        if let Some(offset) = attribute_u64(xmp, "MicroVideoOffset") {
            marker = Some("XMP MicroVideoOffset");
            match check_tail(data, offset, "XMP MicroVideoOffset") {
                Ok(Some(v)) => return Ok(Some(v.with(MotionPhotoLayout::GoogleMicroVideo))),
                Ok(None) => {}
                Err(e) => past_end = past_end.or(Some(e)),
            }
        }
        if marker.is_none()
            && (attribute_value(xmp, "MotionPhoto") == Some("1")
                || attribute_value(xmp, "MicroVideo") == Some("1"))
        {
            marker = Some("XMP MotionPhoto");
        }
    }

    if let Some((start, end)) = top_level_box(data, b"mpvd") {
        marker = marker.or(Some("an mpvd box"));
        // The payload is the MP4, sometimes after a few bytes of padding.
        let payload = data.get(start..end).unwrap_or_default();
        if let Some(at) = find_ftyp(payload, 64) {
            let offset = (start + at) as u64;
            return Ok(Some(EmbeddedVideo {
                offset,
                length: (end - start - at) as u64,
                layout: MotionPhotoLayout::SamsungMpvd,
            }));
        }
    }

    const SAMSUNG: &[u8] = b"MotionPhoto_Data";
    let mut from = 0usize;
    while let Some(pos) = find(data.get(from..).unwrap_or_default(), SAMSUNG) {
        marker = marker.or(Some("the Samsung MotionPhoto_Data marker"));
        let start = from + pos + SAMSUNG.len();
        if is_ftyp_at(data, start) {
            let end = sef_directory_start(data)
                .filter(|e| *e > start)
                .unwrap_or(data.len());
            return Ok(Some(EmbeddedVideo {
                offset: start as u64,
                length: (end - start) as u64,
                layout: MotionPhotoLayout::SamsungTrailer,
            }));
        }
        from = start;
    }

    match (past_end, marker) {
        (Some(e), _) => Err(e),
        (None, Some(marker)) => Err(MotionPhotoError::NoVideo { marker }),
        (None, None) => Ok(None),
    }
}

impl EmbeddedVideo {
    fn with(mut self, layout: MotionPhotoLayout) -> Self {
        self.layout = layout;
        self
    }
}

/// The video that fills the last `length` bytes of `data`, if an MP4 starts there.
fn check_tail(
    data: &[u8],
    length: u64,
    what: &'static str,
) -> Result<Option<EmbeddedVideo>, MotionPhotoError> {
    let len = data.len() as u64;
    if length > len || length < MP4_MIN as u64 {
        return Err(MotionPhotoError::PastEnd {
            what,
            value: length,
            len,
        });
    }
    let offset = len - length;
    let Ok(at) = usize::try_from(offset) else {
        return Ok(None);
    };
    Ok(is_ftyp_at(data, at).then_some(EmbeddedVideo {
        offset,
        length,
        layout: MotionPhotoLayout::GoogleContainer,
    }))
}

/// Whether an ISO BMFF `ftyp` box starts at `at`.
fn is_ftyp_at(data: &[u8], at: usize) -> bool {
    data.get(at..at.saturating_add(MP4_MIN))
        .is_some_and(|b| &b[4..8] == b"ftyp" && u32::from_be_bytes([b[0], b[1], b[2], b[3]]) >= 8)
}

/// The first position within `limit` bytes of `data` where an `ftyp` box starts.
fn find_ftyp(data: &[u8], limit: usize) -> Option<usize> {
    (0..limit.min(data.len())).find(|&i| is_ftyp_at(data, i))
}

/// The payload range of the first top-level ISO BMFF box of type `kind`
/// (only when the file is ISO BMFF: it starts with `ftyp`).
fn top_level_box(data: &[u8], kind: &[u8; 4]) -> Option<(usize, usize)> {
    if !is_ftyp_at(data, 0) {
        return None;
    }
    let mut at = 0usize;
    // A bounded walk: a box tree of more than 10,000 top-level boxes is garbage.
    for _ in 0..10_000 {
        let head = data.get(at..at.checked_add(8)?)?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (header, size) = match size32 {
            0 => (8usize, (data.len() - at) as u64),
            1 => {
                let large = data.get(at + 8..at + 16)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                (16usize, u64::from_be_bytes(b))
            }
            n => (8usize, u64::from(n)),
        };
        let size = usize::try_from(size).ok()?;
        if size < header {
            return None;
        }
        let end = at.checked_add(size)?;
        if &head[4..8] == kind {
            return Some((at + header, end.min(data.len())));
        }
        if end >= data.len() {
            return None;
        }
        at = end;
    }
    None
}

/// Where the Samsung SEF directory (`SEFH`) starts, from the `SEFT` trailer.
fn sef_directory_start(data: &[u8]) -> Option<usize> {
    let n = data.len();
    if n < 8 || data.get(n - 4..)? != b"SEFT" {
        return None;
    }
    let size = data.get(n - 8..n - 4)?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    let start = (n - 8).checked_sub(size)?;
    (data.get(start..start + 4)? == b"SEFH").then_some(start)
}

/// The first XMP packet (`<x:xmpmeta` … `</x:xmpmeta>`) as text.
fn xmp_packet(data: &[u8]) -> Option<&str> {
    let start = find(data, b"<x:xmpmeta")?;
    let rest = data.get(start..)?;
    let end = find(rest, b"</x:xmpmeta>")?;
    std::str::from_utf8(rest.get(..end)?).ok()
}

/// The `Item:Length` of the `Item:Semantic="MotionPhoto"` container item.
fn container_video_length(xmp: &str) -> Option<u64> {
    xmp.split("<Container:Item").skip(1).find_map(|item| {
        let item = item.split("/>").next().unwrap_or(item);
        (attribute_value(item, "Semantic") == Some("MotionPhoto"))
            .then(|| attribute_u64(item, "Length"))
            .flatten()
    })
}

/// The value of the first attribute `<prefix>:<name>="…"` (any prefix,
/// either quote).
fn attribute_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(":{name}=");
    let mut from = 0;
    while let Some(pos) = text.get(from..)?.find(&needle) {
        let after = from + pos + needle.len();
        let rest = text.get(after..)?;
        let quote = rest.chars().next()?;
        if quote == '"' || quote == '\'' {
            let body = rest.get(1..)?;
            let end = body.find(quote)?;
            return body.get(..end);
        }
        from = after;
    }
    None
}

fn attribute_u64(text: &str, name: &str) -> Option<u64> {
    attribute_value(text, name)?.trim().parse().ok()
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4(len: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 24];
        v.extend_from_slice(b"ftypmp42");
        v.resize(len, 7);
        v
    }

    fn google_jpeg(video_len_declared: u64, video: &[u8]) -> Vec<u8> {
        let xmp = format!(
            "<x:xmpmeta><Container:Directory><rdf:Seq>\
             <rdf:li><Container:Item Item:Mime=\"image/jpeg\" Item:Semantic=\"Primary\" Item:Length=\"0\"/></rdf:li>\
             <rdf:li><Container:Item Item:Mime=\"video/mp4\" Item:Semantic=\"MotionPhoto\" Item:Length=\"{video_len_declared}\"/></rdf:li>\
             </rdf:Seq></Container:Directory></x:xmpmeta>"
        );
        let mut data = b"\xFF\xD8\xFF\xE1".to_vec();
        data.extend_from_slice(xmp.as_bytes());
        data.extend_from_slice(b"\xFF\xD9");
        data.extend_from_slice(video);
        data
    }

    #[test]
    fn google_container_directory() {
        let video = mp4(100);
        let data = google_jpeg(100, &video);
        let found = find_embedded_video(&data).unwrap().unwrap();
        assert_eq!(found.layout, MotionPhotoLayout::GoogleContainer);
        assert_eq!(found.slice(&data), Some(&video[..]));
    }

    #[test]
    fn micro_video_offset() {
        let video = mp4(64);
        let mut data = b"\xFF\xD8<x:xmpmeta GCamera:MicroVideo=\"1\" GCamera:MicroVideoOffset='64'></x:xmpmeta>\xFF\xD9".to_vec();
        data.extend_from_slice(&video);
        let found = find_embedded_video(&data).unwrap().unwrap();
        assert_eq!(found.layout, MotionPhotoLayout::GoogleMicroVideo);
        assert_eq!(found.offset, (data.len() - 64) as u64);
    }

    #[test]
    fn declared_length_past_the_end_is_an_error() {
        let data = google_jpeg(1_000_000, &mp4(100));
        let err = find_embedded_video(&data).unwrap_err();
        assert!(
            matches!(
                err,
                MotionPhotoError::PastEnd {
                    value: 1_000_000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("past the end"));
    }

    #[test]
    fn garbage_where_the_video_should_be_is_an_error() {
        let data = google_jpeg(100, &[0xAB; 100]);
        assert_eq!(
            find_embedded_video(&data).unwrap_err(),
            MotionPhotoError::NoVideo {
                marker: "XMP Container:Directory"
            }
        );
        // Marked, with no directory at all.
        let data = b"\xFF\xD8<x:xmpmeta Camera:MotionPhoto=\"1\"></x:xmpmeta>".to_vec();
        assert!(find_embedded_video(&data).is_err());
    }

    #[test]
    fn samsung_trailer_ends_at_the_sef_directory() {
        let video = mp4(80);
        let mut data = b"\xFF\xD8 jpeg \xFF\xD9".to_vec();
        data.extend_from_slice(b"\0\0\x30\x0a\x10\0\0\0MotionPhoto_Data");
        data.extend_from_slice(&video);
        let sefh = data.len();
        data.extend_from_slice(b"SEFH\x6b\0\0\0\x01\0\0\0");
        let size = (data.len() - sefh) as u32;
        data.extend_from_slice(&size.to_le_bytes());
        data.extend_from_slice(b"SEFT");
        let found = find_embedded_video(&data).unwrap().unwrap();
        assert_eq!(found.layout, MotionPhotoLayout::SamsungTrailer);
        assert_eq!(found.slice(&data), Some(&video[..]));
        // The marker followed by garbage.
        let mut bad = b"\xFF\xD8 jpeg \xFF\xD9MotionPhoto_Data".to_vec();
        bad.extend_from_slice(&[1u8; 40]);
        assert!(find_embedded_video(&bad).is_err());
    }

    #[test]
    fn samsung_mpvd_box() {
        let video = mp4(50);
        let mut data = mp4(24);
        data.extend_from_slice(&((video.len() + 8) as u32).to_be_bytes());
        data.extend_from_slice(b"mpvd");
        data.extend_from_slice(&video);
        let found = find_embedded_video(&data).unwrap().unwrap();
        assert_eq!(found.layout, MotionPhotoLayout::SamsungMpvd);
        assert_eq!(found.slice(&data), Some(&video[..]));
    }

    #[test]
    fn truncated_and_garbage_inputs_never_panic() {
        let good = google_jpeg(100, &mp4(100));
        for cut in 0..good.len() {
            let _ = find_embedded_video(&good[..cut]);
        }
        // Box sizes that lie.
        let mut boxes = mp4(24);
        boxes.extend_from_slice(&[0, 0, 0, 1]);
        boxes.extend_from_slice(b"mpvd");
        boxes.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(find_embedded_video(&boxes).is_ok());
        let _ = find_embedded_video(b"SEFT");
        let _ = find_embedded_video(b"\xff\xff\xff\xffSEFHSEFT");
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let n = (seed % 300) as usize;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(seed as u8);
            }
            let _ = find_embedded_video(&v);
        }
        assert_eq!(find_embedded_video(b"plain bytes"), Ok(None));
        assert_eq!(find_embedded_video(b""), Ok(None));
    }
}
