//! Apple Live Photos: the ContentIdentifier that ties a still (HEIC/JPEG)
//! to its MOV.
//!
//! - The still: the Apple MakerNote (`Apple iOS\0`, version, `MM`, then a
//!   big-endian IFD whose offsets count from the start of the maker note),
//!   tag `0x0011` (ExifTool's `ContentIdentifier` / `MediaGroupUUID`), an
//!   ASCII UUID; else an XMP attribute `…:ContentIdentifier="…"`.
//! - The MOV: the QuickTime metadata key
//!   `com.apple.quicktime.content.identifier`.
//!
//! Everything is bounds-checked; garbage gives `None`.

use std::path::Path;

/// Which half of a Live Photo pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Half {
    /// The HEIC/JPEG still.
    Photo,
    /// The MOV.
    Video,
}

/// The Apple MakerNote tag of the Live Photo ContentIdentifier.
const CONTENT_IDENTIFIER_TAG: u16 = 0x0011;

/// The ContentIdentifier of a Live Photo's still, from its bytes.
pub fn photo_content_id(data: &[u8]) -> Option<String> {
    maker_note_content_id(data).or_else(|| xmp_content_id(data))
}

/// The ContentIdentifier of a Live Photo's MOV (FFmpeg reads its metadata).
pub fn video_content_id(path: &Path) -> Option<String> {
    ffmpeg_next::init().ok()?;
    let ictx = ffmpeg_next::format::input(&path).ok()?;
    let metadata = ictx.metadata();
    let id = metadata.get("com.apple.quicktime.content.identifier")?;
    clean(id.as_bytes())
}

/// Tag 0x0011 of the Apple MakerNote.
fn maker_note_content_id(data: &[u8]) -> Option<String> {
    const HEADER: &[u8] = b"Apple iOS\0";
    let start = find(data, HEADER)?;
    let note = data.get(start..)?;
    // Header (10), version (2), byte order "MM" (2), then the IFD.
    if note.get(12..14)? != b"MM" {
        return None;
    }
    let u16_at = |at: usize| -> Option<u16> {
        let b = note.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = note.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let count = usize::from(u16_at(14)?).min(512);
    for i in 0..count {
        let entry = 16 + i * 12;
        if u16_at(entry)? != CONTENT_IDENTIFIER_TAG {
            continue;
        }
        // Type 2 (ASCII); longer than 4 bytes, so the value is at an offset.
        if u16_at(entry + 2)? != 2 {
            return None;
        }
        let len = usize::try_from(u32_at(entry + 4)?).ok()?;
        let value = if len <= 4 {
            note.get(entry + 8..entry + 8 + len)?
        } else {
            let offset = usize::try_from(u32_at(entry + 8)?).ok()?;
            note.get(offset..offset.checked_add(len)?)?
        };
        return clean(value);
    }
    None
}

/// An XMP `…:ContentIdentifier="…"` attribute.
fn xmp_content_id(data: &[u8]) -> Option<String> {
    const KEY: &[u8] = b":ContentIdentifier=\"";
    let at = find(data, KEY)? + KEY.len();
    let rest = data.get(at..at + 80.min(data.len() - at))?;
    let end = rest.iter().position(|b| *b == b'"')?;
    clean(rest.get(..end)?)
}

/// The identifier without NULs and padding, when it looks like one (1..=64
/// ASCII letters, digits and hyphens).
fn clean(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let id = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let ok =
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| id.to_ascii_uppercase())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A maker note with one entry: tag 0x0011, ASCII `id`.
    fn maker_note(id: &str) -> Vec<u8> {
        let mut v = b"JUNK\xFF\xE1Apple iOS\0\x00\x01MM".to_vec();
        let base = 4 + 2; // where "Apple iOS" starts
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&0x0011u16.to_be_bytes());
        v.extend_from_slice(&2u16.to_be_bytes());
        v.extend_from_slice(&((id.len() + 1) as u32).to_be_bytes());
        let offset = (v.len() + 4 + 4 - base) as u32;
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(id.as_bytes());
        v.push(0);
        v
    }

    #[test]
    fn maker_note_identifier() {
        let data = maker_note("e905e6c6-c747-4805-942f-9904a0281f02");
        assert_eq!(
            photo_content_id(&data).as_deref(),
            Some("E905E6C6-C747-4805-942F-9904A0281F02")
        );
    }

    #[test]
    fn xmp_identifier() {
        let data = b"<x:xmpmeta apple-fi:ContentIdentifier=\"ABC-123\"/>";
        assert_eq!(photo_content_id(data).as_deref(), Some("ABC-123"));
    }

    #[test]
    fn truncated_and_hostile_maker_notes_give_none() {
        let good = maker_note("E905E6C6-C747-4805-942F-9904A0281F02");
        for cut in 0..good.len() {
            let _ = photo_content_id(&good[..cut]);
        }
        // The value's offset (maker note start 6 + IFD entry value at 24) past the end.
        let mut bad = good.clone();
        bad[30..34].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(photo_content_id(&bad), None);
        // An entry count far beyond the data.
        let mut bad = good.clone();
        bad[20..22].copy_from_slice(&u16::MAX.to_be_bytes());
        let _ = photo_content_id(&bad);
        assert_eq!(photo_content_id(&maker_note("../../meta/x")), None);
        assert_eq!(photo_content_id(b"Apple iOS\0"), None);
        assert_eq!(photo_content_id(b""), None);
    }
}
