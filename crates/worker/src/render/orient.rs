//! EXIF orientation (values 1..=8) on RGB8 buffers, and the mapping of a
//! rectangle from displayed (oriented) coordinates into stored ones, so that
//! the pipeline can resize first and rotate only the small result.

use thumbfarm_shared::sizes::CropRect;

/// Whether the orientation swaps width and height (5..=8).
pub fn transposes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// The displayed size of a stored `w`×`h` image.
pub fn oriented_dims(w: u32, h: u32, orientation: u8) -> (u32, u32) {
    if transposes(orientation) {
        (h, w)
    } else {
        (w, h)
    }
}

/// Maps a rectangle in displayed coordinates to the stored image's
/// coordinates; `(w, h)` is the stored size.
pub fn rect_to_stored(r: CropRect, orientation: u8, w: u32, h: u32) -> CropRect {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (x0, x1, y0, y1) = (r.x, r.x + r.width, r.y, r.y + r.height);
    // (stored x range, stored y range)
    let ((sx0, sx1), (sy0, sy1)) = match orientation {
        2 => ((wf - x1, wf - x0), (y0, y1)),
        3 => ((wf - x1, wf - x0), (hf - y1, hf - y0)),
        4 => ((x0, x1), (hf - y1, hf - y0)),
        5 => ((y0, y1), (x0, x1)),
        6 => ((y0, y1), (hf - x1, hf - x0)),
        7 => ((wf - y1, wf - y0), (hf - x1, hf - x0)),
        8 => ((wf - y1, wf - y0), (x0, x1)),
        _ => ((x0, x1), (y0, y1)),
    };
    CropRect {
        x: sx0.max(0.0),
        y: sy0.max(0.0),
        width: (sx1 - sx0).min(wf),
        height: (sy1 - sy0).min(hf),
    }
}

/// Applies the orientation to a stored RGB8 image of `w`×`h` pixels and
/// returns the displayed image and its size.
pub fn apply(pixels: Vec<u8>, w: u32, h: u32, orientation: u8) -> (Vec<u8>, u32, u32) {
    if !(2..=8).contains(&orientation) {
        return (pixels, w, h);
    }
    let (ow, oh) = oriented_dims(w, h, orientation);
    let (wu, hu, owu, ohu) = (w as usize, h as usize, ow as usize, oh as usize);
    let mut out = vec![0u8; pixels.len()];
    for oy in 0..ohu {
        let row = &mut out[oy * owu * 3..(oy + 1) * owu * 3];
        for (ox, px) in row.chunks_exact_mut(3).enumerate() {
            // Displayed (ox, oy) -> stored (sx, sy), see `rect_to_stored`.
            let (sx, sy) = match orientation {
                2 => (wu - 1 - ox, oy),
                3 => (wu - 1 - ox, hu - 1 - oy),
                4 => (ox, hu - 1 - oy),
                5 => (oy, ox),
                6 => (oy, hu - 1 - ox),
                7 => (wu - 1 - oy, hu - 1 - ox),
                _ => (wu - 1 - oy, ox),
            };
            let i = (sy * wu + sx) * 3;
            px.copy_from_slice(&pixels[i..i + 3]);
        }
    }
    (out, ow, oh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 stored image whose pixels are numbered 0..6 (in all channels).
    fn stored() -> Vec<u8> {
        (0u8..6).flat_map(|v| [v, v, v]).collect()
    }

    fn grey(px: &[u8]) -> Vec<u8> {
        px.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn all_eight() {
        // Stored:  0 1 2
        //          3 4 5
        let cases: [(u8, (u32, u32), Vec<u8>); 8] = [
            (1, (3, 2), vec![0, 1, 2, 3, 4, 5]),
            (2, (3, 2), vec![2, 1, 0, 5, 4, 3]),
            (3, (3, 2), vec![5, 4, 3, 2, 1, 0]),
            (4, (3, 2), vec![3, 4, 5, 0, 1, 2]),
            (5, (2, 3), vec![0, 3, 1, 4, 2, 5]),
            (6, (2, 3), vec![3, 0, 4, 1, 5, 2]),
            (7, (2, 3), vec![5, 2, 4, 1, 3, 0]),
            (8, (2, 3), vec![2, 5, 1, 4, 0, 3]),
        ];
        for (o, dims, want) in cases {
            let (px, w, h) = apply(stored(), 3, 2, o);
            assert_eq!((w, h), dims, "orientation {o}");
            assert_eq!(grey(&px), want, "orientation {o}");
        }
    }

    #[test]
    fn rect_mapping_matches_pixels() {
        // The displayed pixel (1, 0) as a 1x1 rect maps onto the stored pixel
        // that `apply` puts there.
        for o in 1..=8u8 {
            let (px, ow, _) = apply(stored(), 3, 2, o);
            let _ = ow;
            let r = rect_to_stored(
                CropRect {
                    x: 1.0,
                    y: 0.0,
                    width: 1.0,
                    height: 1.0,
                },
                o,
                3,
                2,
            );
            let stored_value = (r.y as usize * 3 + r.x as usize) as u8;
            assert_eq!(px[3], stored_value, "orientation {o}: {r:?}");
        }
    }
}
