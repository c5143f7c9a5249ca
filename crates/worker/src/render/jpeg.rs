//! JPEG decoding with libjpeg-turbo 3 (the `turbojpeg` crate, built from
//! source because Debian 12 ships TurboJPEG 2.1), using its DCT-domain
//! scaling: a 12 MP photo whose largest output is 1600x1200 is decoded at
//! 1/2 scale, which skips most of the IDCT, colour conversion and memory
//! traffic (see the report/bench: ~4x faster than a full decode at 1/4).

use super::color::cmyk_to_rgb;
use super::error::RenderError;
use super::pixels::{Decoded, Need};
use super::probe::JpegMarkers;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

fn tj_err(e: turbojpeg::Error) -> RenderError {
    RenderError::Decode(format!("JPEG: {e}"))
}

/// libjpeg warnings that still leave a usable picture (damaged entropy data
/// in camera files, motion-photo trailers); a missing end of file is not one
/// of them: that file is truncated.
fn tolerable_warning(msg: &str) -> bool {
    let m = msg.trim_start_matches("TurboJPEG error: ");
    (m.starts_with("Corrupt JPEG data") && !m.contains("Premature end of JPEG file"))
        || m.starts_with("Warning:")
        || m.starts_with("Invalid SOS parameters for sequential JPEG")
        || m.starts_with("Inconsistent progression sequence")
}

/// The smallest DCT scale (1/8, 1/4, 1/2 or 1) at which every needed crop,
/// scaled with the image, still has at least the output's pixels in both
/// dimensions.
pub fn choose_scale(width: u32, height: u32, needs: &[Need]) -> ScalingFactor {
    for denom in [8, 4, 2] {
        let sf = ScalingFactor::new(1, denom);
        let sx = sf.scale(width as usize) as f64 / f64::from(width);
        let sy = sf.scale(height as usize) as f64 / f64::from(height);
        let enough = needs.iter().all(|n| {
            n.crop.width * sx + 1e-6 >= f64::from(n.width)
                && n.crop.height * sy + 1e-6 >= f64::from(n.height)
        });
        if enough {
            return sf;
        }
    }
    ScalingFactor::ONE
}

/// Decodes at the smallest sufficient DCT scale into RGB8 (stored
/// orientation; CMYK/YCCK converted through the embedded profile).
pub fn decode(data: &[u8], markers: &JpegMarkers, needs: &[Need]) -> Result<Decoded, RenderError> {
    if markers.precision != 8 {
        return Err(RenderError::Unsupported(format!(
            "{}-bit JPEG",
            markers.precision
        )));
    }
    let mut dec = Decompressor::new().map_err(tj_err)?;
    let header = dec.read_header(data).map_err(tj_err)?;
    let (fw, fh) = (markers.width, markers.height);
    let scale = if header.is_lossless {
        ScalingFactor::ONE
    } else {
        choose_scale(fw, fh, needs)
    };
    dec.set_scaling_factor(scale).map_err(tj_err)?;
    let scaled = header.scaled(scale);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let pitch = scaled.width * format.size();
    let mut pixels = vec![0u8; pitch * scaled.height];
    let image = Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    match dec.decompress(data, image) {
        Ok(()) => {}
        Err(turbojpeg::Error::TurboJpegError(msg)) if tolerable_warning(&msg) => {
            tracing::debug!(warning = %msg, "JPEG decoded with a warning");
        }
        Err(e) => return Err(tj_err(e)),
    }
    let (width, height) = (
        u32::try_from(scaled.width).map_err(|_| RenderError::Decode("JPEG width".into()))?,
        u32::try_from(scaled.height).map_err(|_| RenderError::Decode("JPEG height".into()))?,
    );
    let (pixels, icc) = if cmyk {
        (
            cmyk_to_rgb(&pixels, markers.icc.as_deref(), markers.adobe),
            None,
        )
    } else {
        (pixels, markers.icc.clone())
    };
    Ok(Decoded {
        pixels,
        width,
        height,
        full_width: fw,
        full_height: fh,
        icc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::sizes::CropRect;

    fn need(cw: f64, ch: f64, w: u32, h: u32) -> Need {
        Need {
            crop: CropRect {
                x: 0.0,
                y: 0.0,
                width: cw,
                height: ch,
            },
            width: w,
            height: h,
        }
    }

    #[test]
    fn scale_covers_the_largest_output() {
        // 4032x3024 -> fit_1920 is 1600x1200: 1/2 (2016x1512) is the smallest cover.
        let s = choose_scale(4032, 3024, &[need(4032.0, 3024.0, 1600, 1200)]);
        assert_eq!((s.num(), s.denom()), (1, 2));
        // Only fit_720 (720x540): 1/4 gives 1008x756.
        let s = choose_scale(4032, 3024, &[need(4032.0, 3024.0, 720, 540)]);
        assert_eq!((s.num(), s.denom()), (1, 4));
        // A small crop needs the full resolution.
        let s = choose_scale(4032, 3024, &[need(500.0, 500.0, 500, 500)]);
        assert_eq!((s.num(), s.denom()), (1, 1));
    }

    #[test]
    fn warnings() {
        assert!(tolerable_warning(
            "TurboJPEG error: Corrupt JPEG data: premature end of data segment"
        ));
        assert!(!tolerable_warning("Premature end of JPEG file"));
        assert!(!tolerable_warning("Unsupported JPEG data precision 12"));
    }
}
