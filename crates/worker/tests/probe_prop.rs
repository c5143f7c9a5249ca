//! The image probe reads headers of arbitrary uploads: thousands of random
//! and near-valid inputs (real magic numbers followed by garbage), and it
//! must answer every one with a result or a clear error, never a panic.

use proptest::prelude::*;
use thumbfarm_worker::render::{probe_bytes, RenderOptions};

const MAGICS: [&[u8]; 9] = [
    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00",
    b"\xFF\xD8\xFF\xE1\x00\x20Exif\x00\x00MM\x00\x2A",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0DIHDR",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    b"II*\x00\x08\x00\x00\x00",
    b"BM",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_probe_answers_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = probe_bytes(&bytes, &RenderOptions::default());
    }

    #[test]
    fn the_probe_answers_real_magic_numbers_with_garbage(
        magic in 0..MAGICS.len(),
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut data = MAGICS[magic].to_vec();
        data.extend(tail);
        if let Err(e) = probe_bytes(&data, &RenderOptions::default()) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }
}
