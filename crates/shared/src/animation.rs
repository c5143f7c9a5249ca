//! Whether a PNG or WebP is animated (APNG `acTL`, WebP `VP8X` animation
//! flag), from its bytes: a bounded chunk walk, no decoding. GIFs are not
//! told apart here: every GIF is offered as a clip (a still one is one frame).

/// Whether `data` is an animated PNG (an `acTL` chunk before the first `IDAT`)
/// or an animated WebP (the `VP8X` animation flag).
pub fn is_animated_image(data: &[u8]) -> bool {
    is_apng(data) || is_animated_webp(data)
}

/// An `acTL` chunk before the first `IDAT`.
pub fn is_apng(data: &[u8]) -> bool {
    if !data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return false;
    }
    let mut at = 8usize;
    // At most 1,000 chunks before IDAT: anything longer is not worth a look.
    for _ in 0..1000 {
        let Some(head) = data.get(at..at.saturating_add(8)) else {
            return false;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"acTL" => return true,
            b"IDAT" | b"IEND" => return false,
            _ => {}
        }
        let Some(next) = at.checked_add(12).and_then(|a| a.checked_add(len)) else {
            return false;
        };
        at = next;
    }
    false
}

/// A WebP whose `VP8X` header sets the animation flag.
pub fn is_animated_webp(data: &[u8]) -> bool {
    data.len() >= 21
        && &data[..4] == b"RIFF"
        && &data[8..12] == b"WEBP"
        && &data[12..16] == b"VP8X"
        && data[20] & 0x02 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apng_and_animated_webp_are_recognised() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0; 13 + 4]);
        let mut apng = png.clone();
        apng.extend_from_slice(&8u32.to_be_bytes());
        apng.extend_from_slice(b"acTL");
        apng.extend_from_slice(&[0; 8 + 4]);
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        assert!(is_apng(&apng) && is_animated_image(&apng));
        assert!(!is_apng(&png));
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02".to_vec();
        assert!(is_animated_webp(&webp));
        webp[20] = 0x10;
        assert!(!is_animated_webp(&webp));
        // Truncated and lying chunk lengths.
        for cut in 0..apng.len() {
            let _ = is_animated_image(&apng[..cut]);
        }
        let mut liar = b"\x89PNG\r\n\x1a\n".to_vec();
        liar.extend_from_slice(&u32::MAX.to_be_bytes());
        liar.extend_from_slice(b"tEXt");
        assert!(!is_apng(&liar));
        assert!(!is_animated_image(b""));
    }
}
