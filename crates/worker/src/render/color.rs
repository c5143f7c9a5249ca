//! Embedded ICC profiles converted to sRGB with Little CMS 2.

use lcms2::{ColorSpaceSignature, InfoType, Intent, Locale, PixelFormat, Profile, Transform};

/// A prepared profile → sRGB conversion of RGB8 pixels.
pub struct ToSrgb {
    transform: Transform<u8, u8>,
}

impl std::fmt::Debug for ToSrgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToSrgb")
    }
}

/// Whether a profile is (a variant of) sRGB, so converting would change nothing.
fn is_srgb(profile: &Profile) -> bool {
    profile
        .info(InfoType::Description, Locale::none())
        .is_some_and(|d| {
            let d = d.to_ascii_lowercase();
            d.contains("srgb") || d.contains("iec61966-2")
        })
}

impl ToSrgb {
    /// A conversion for RGB8 pixels tagged with `icc`, or `None` where the
    /// profile is missing, unusable, not RGB, or already sRGB (the pixels are
    /// then taken as sRGB, as browsers do).
    pub fn for_rgb(icc: &[u8]) -> Option<ToSrgb> {
        let profile = Profile::new_icc(icc).ok()?;
        if profile.color_space() != ColorSpaceSignature::RgbData || is_srgb(&profile) {
            return None;
        }
        let srgb = Profile::new_srgb();
        let transform = Transform::new(
            &profile,
            PixelFormat::RGB_8,
            &srgb,
            PixelFormat::RGB_8,
            Intent::Perceptual,
        )
        .ok()?;
        Some(ToSrgb { transform })
    }

    /// Converts RGB8 pixels in place.
    pub fn apply(&self, rgb: &mut [u8]) {
        let whole = rgb.len() - rgb.len() % 3;
        self.transform.transform_in_place(&mut rgb[..whole]);
    }
}

/// Converts CMYK8 pixels (4 bytes each) to RGB8: through the embedded profile
/// when there is a usable CMYK one, else naively. `inverted` is set for
/// Adobe JPEGs, which store CMYK inverted (0 = full ink).
pub fn cmyk_to_rgb(cmyk: &[u8], icc: Option<&[u8]>, inverted: bool) -> Vec<u8> {
    let n = cmyk.len() / 4;
    let mut rgb = vec![0u8; n * 3];
    let profile = icc
        .and_then(|p| Profile::new_icc(p).ok())
        .filter(|p| p.color_space() == ColorSpaceSignature::CmykData);
    if let Some(profile) = profile {
        let format = if inverted {
            PixelFormat::CMYK_8_REV
        } else {
            PixelFormat::CMYK_8
        };
        let srgb = Profile::new_srgb();
        if let Ok(t) = Transform::<u8, u8>::new(
            &profile,
            format,
            &srgb,
            PixelFormat::RGB_8,
            Intent::Perceptual,
        ) {
            t.transform_pixels(&cmyk[..n * 4], &mut rgb);
            return rgb;
        }
    }
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let ink = |v: u8| if inverted { 255 - v } else { v };
        let k = 255 - u32::from(ink(src[3]));
        for c in 0..3 {
            let v = (255 - u32::from(ink(src[c]))) * k / 255;
            dst[c] = v as u8;
        }
    }
    rgb
}
