//! ThumbHash placeholders (<https://evanw.github.io/thumbhash/>): a ~25-byte
//! description of an image's colours and shape that a client turns into a
//! blurred preview before any thumbnail arrives. Computed from a result the
//! job already holds (never a second decode), scaled to fit 100×100 as the
//! algorithm expects.

use super::error::RenderError;
use super::pixels::Rgb;
use super::resize;
use fast_image_resize::Resizer;
use thumbfarm_shared::sizes::{fit_dimensions, CropRect};

/// The longest side ThumbHash is computed from.
const MAX_SIDE: u32 = 100;

/// The ThumbHash of `image` (an upright sRGB result of this job).
pub fn thumbhash(resizer: &mut Resizer, image: &Rgb) -> Result<Vec<u8>, RenderError> {
    let (w, h) = fit_dimensions(image.width, image.height, MAX_SIDE, MAX_SIDE);
    let (w, h) = (w.clamp(1, MAX_SIDE), h.clamp(1, MAX_SIDE));
    let crop = CropRect {
        x: 0.0,
        y: 0.0,
        width: f64::from(image.width),
        height: f64::from(image.height),
    };
    let small = resize::resize(
        resizer,
        &image.pixels,
        image.width,
        image.height,
        crop,
        w,
        h,
    )?;
    let rgba: Vec<u8> = small
        .pixels
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    if rgba.len() != (w * h * 4) as usize {
        return Err(RenderError::Encode("ThumbHash: bad pixel buffer".into()));
    }
    Ok(thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &rgba))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_back_to_the_shape_and_colour() {
        // A 640x360 orange image.
        let image = Rgb {
            pixels: [230u8, 120, 30].repeat(640 * 360),
            width: 640,
            height: 360,
        };
        let hash = thumbhash(&mut Resizer::new(), &image).unwrap();
        assert!(hash.len() <= 25, "{}", hash.len());
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        assert!((ratio - 16.0 / 9.0).abs() < 0.15, "{ratio}");
        let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&hash).unwrap();
        for (got, want) in [(r, 230.0), (g, 120.0), (b, 30.0)] {
            assert!((got * 255.0 - want).abs() < 12.0, "{r} {g} {b}");
        }
    }
}
