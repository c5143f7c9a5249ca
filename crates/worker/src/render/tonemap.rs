//! HDR (PQ / HLG) to SDR sRGB for thumbnails.
//!
//! Input: interleaved RGB, 16 bits per sample (10/12-bit decodes are widened
//! by bit replication), full range, non-linear (PQ or HLG signal) in the
//! source primaries (BT.2020, Display P3 or BT.709). Output: RGB8 sRGB.
//!
//! Steps per pixel:
//! 1. signal -> linear light, relative to HDR reference white (BT.2408:
//!    203 cd/m² = 1.0): PQ EOTF, or HLG inverse OETF + OOTF (Lw = 1000,
//!    gamma 1.2), through 65536-entry tables;
//! 2. source primaries -> BT.709 (3x3 in linear light); out-of-gamut colours
//!    are desaturated towards their own luminance until no channel is
//!    negative (hue kept, no hard clip);
//! 3. tone curve on max(R,G,B) (hue and saturation kept, never above 1.0):
//!    the BT.2390 EETF (Hermite knee in the PQ domain) mapping
//!    [0, peak] onto [0, reference white]; below the knee the curve is the
//!    identity, so mid-tones and skin keep their SDR brightness (not washed
//!    out), highlights roll off smoothly (not clipped);
//! 4. sRGB OETF, round to 8 bits.
//!
//! `peak` is the brightest content (cd/m²); pass CLLI MaxCLL when present,
//! otherwise [`measure_peak`] on the (already resized) image.

/// How to turn the 16-bit samples into an SDR sRGB-ish RGB8 image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Not HDR: round to 8 bits (the ICC/nclx conversion to sRGB follows as for RGB8).
    Sdr,
    /// SMPTE ST 2084: tone map with the BT.2390 EETF.
    Pq {
        /// The source primaries.
        primaries: Primaries,
        /// The content light level (MaxCLL) in cd/m², when the file gives it.
        max_cll: Option<u16>,
    },
    /// HLG: OOTF at 1000 cd/m², then the same tone map.
    Hlg {
        /// The source primaries.
        primaries: Primaries,
    },
}

impl Signal {
    /// RGB16 (already resized) -> RGB8 sRGB.
    pub fn to_rgb8(self, rgb16: &[u16]) -> Vec<u8> {
        let (transfer, primaries, peak) = match self {
            Signal::Sdr => return narrow_to_8(rgb16),
            Signal::Pq { primaries, max_cll } => (
                Transfer::Pq,
                primaries,
                max_cll
                    .map(f32::from)
                    .unwrap_or_else(|| measure_peak(rgb16, Transfer::Pq)),
            ),
            Signal::Hlg { primaries } => {
                (Transfer::Hlg, primaries, measure_peak(rgb16, Transfer::Hlg))
            }
        };
        ToneMapper::new(transfer, primaries, peak).map(rgb16)
    }

    /// Whether the pixels are HDR-encoded (the ICC/nclx -> sRGB step must then be skipped:
    /// [`Signal::to_rgb8`] already outputs sRGB).
    pub fn is_hdr(&self) -> bool {
        !matches!(self, Signal::Sdr)
    }
}

/// HDR reference white (ITU-R BT.2408), cd/m².
pub const REFERENCE_WHITE: f32 = 203.0;

/// An HDR transfer function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// SMPTE ST 2084 (CICP transfer 16).
    Pq,
    /// ARIB STD-B67 / BT.2100 HLG (CICP transfer 18).
    Hlg,
}

/// The colour primaries of HDR pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primaries {
    /// CICP 1 (BT.709 / sRGB).
    Bt709,
    /// CICP 12 (SMPTE EG 432-1, Display P3, D65).
    DisplayP3,
    /// CICP 9 (BT.2020 / BT.2100).
    Bt2020,
}

impl Primaries {
    /// From a CICP colour_primaries value; unknown values are treated as
    /// BT.2020 (what PQ/HLG content almost always uses).
    pub fn from_cicp(v: u16) -> Primaries {
        match v {
            1 => Primaries::Bt709,
            12 => Primaries::DisplayP3,
            _ => Primaries::Bt2020,
        }
    }

    /// Linear-light matrix to BT.709 (rows: R, G, B of the output).
    fn to_bt709(self) -> [[f32; 3]; 3] {
        match self {
            Primaries::Bt709 => [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            // ITU-R BT.2087 / BT.2407.
            Primaries::Bt2020 => [
                [1.660491, -0.587641, -0.072850],
                [-0.124550, 1.1329, -0.008349],
                [-0.018151, -0.100579, 1.11873],
            ],
            Primaries::DisplayP3 => [
                [1.22494, -0.224940, 0.0],
                [-0.042057, 1.042057, 0.0],
                [-0.019638, -0.078636, 1.098274],
            ],
        }
    }

    /// Luminance weights (Y row of RGB->XYZ) of the primaries.
    fn luma(self) -> [f32; 3] {
        match self {
            Primaries::Bt709 => [0.2126, 0.7152, 0.0722],
            Primaries::Bt2020 => [0.2627, 0.6780, 0.0593],
            Primaries::DisplayP3 => [0.228975, 0.691739, 0.079287],
        }
    }
}

// SMPTE ST 2084 constants.
const M1: f64 = 2610.0 / 16384.0;
const M2: f64 = 2523.0 / 4096.0 * 128.0;
const C1: f64 = 3424.0 / 4096.0;
const C2: f64 = 2413.0 / 4096.0 * 32.0;
const C3: f64 = 2392.0 / 4096.0 * 32.0;

/// PQ signal [0,1] -> cd/m².
pub fn pq_eotf(e: f64) -> f64 {
    let p = e.clamp(0.0, 1.0).powf(1.0 / M2);
    let num = (p - C1).max(0.0);
    10000.0 * (num / (C2 - C3 * p)).powf(1.0 / M1)
}

/// cd/m² -> PQ signal [0,1].
pub fn pq_inverse_eotf(nits: f64) -> f64 {
    let y = (nits / 10000.0).clamp(0.0, 1.0).powf(M1);
    ((C1 + C2 * y) / (1.0 + C3 * y)).powf(M2)
}

/// HLG signal [0,1] -> scene linear [0,1] (BT.2100 inverse OETF).
pub fn hlg_inverse_oetf(e: f64) -> f64 {
    const A: f64 = 0.178_832_77;
    const B: f64 = 0.284_668_92; // 1 - 4a
    const C: f64 = 0.559_910_73; // 0.5 - a ln(4a)
    let e = e.clamp(0.0, 1.0);
    if e <= 0.5 {
        e * e / 3.0
    } else {
        (((e - C) / A).exp() + B) / 12.0
    }
}

/// The BT.2390-4 EETF: maps source luminance `nits` (content peak
/// `src_peak`) onto [0, `dst_peak`] in cd/m², identity below the knee.
pub fn bt2390_eetf(nits: f64, src_peak: f64, dst_peak: f64) -> f64 {
    if src_peak <= dst_peak {
        return nits.min(dst_peak);
    }
    let src_max_pq = pq_inverse_eotf(src_peak);
    let e1 = pq_inverse_eotf(nits) / src_max_pq; // normalised, black = 0
    let max_lum = pq_inverse_eotf(dst_peak) / src_max_pq;
    let ks = 1.5 * max_lum - 0.5;
    let e2 = if e1 < ks {
        e1
    } else {
        let t = ((e1 - ks) / (1.0 - ks)).min(1.0);
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * ks
            + (t3 - 2.0 * t2 + t) * (1.0 - ks)
            + (-2.0 * t3 + 3.0 * t2) * max_lum
    };
    pq_eotf(e2 * src_max_pq)
}

/// Prepared tables for one (transfer, primaries, peak) combination.
pub struct ToneMapper {
    transfer: Transfer,
    /// 16-bit code -> linear: PQ: relative to reference white; HLG: scene linear.
    to_linear: Vec<f32>,
    matrix: [[f32; 3]; 3],
    src_luma: [f32; 3],
    /// HLG only: Ys -> Lw * Ys^(gamma-1) / 203.
    hlg_ootf: Vec<f32>,
    /// Tone curve on max(R,G,B) (relative units), sampled on [0, curve_max].
    curve: Vec<f32>,
    curve_max: f32,
    /// Linear [0,1] -> sRGB 8-bit, 4096 + 1 entries.
    oetf: Vec<u8>,
}

const CURVE_STEPS: usize = 4096;
const OETF_STEPS: usize = 4096;
/// HLG nominal peak display luminance and its system gamma (BT.2100).
const HLG_LW: f32 = 1000.0;
const HLG_GAMMA: f32 = 1.2;

impl ToneMapper {
    /// `peak_nits`: the content's brightest pixel (CLLI MaxCLL, or measured).
    pub fn new(transfer: Transfer, primaries: Primaries, peak_nits: f32) -> ToneMapper {
        let to_linear: Vec<f32> = (0..=u16::MAX)
            .map(|c| {
                let e = f64::from(c) / 65535.0;
                match transfer {
                    Transfer::Pq => (pq_eotf(e) / f64::from(REFERENCE_WHITE)) as f32,
                    Transfer::Hlg => hlg_inverse_oetf(e) as f32,
                }
            })
            .collect();
        let hlg_ootf = if transfer == Transfer::Hlg {
            (0..=u16::MAX)
                .map(|i| {
                    let ys = f64::from(i) / 65535.0;
                    if ys > 0.0 {
                        (f64::from(HLG_LW) * ys.powf(f64::from(HLG_GAMMA) - 1.0)
                            / f64::from(REFERENCE_WHITE)) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let src_peak = f64::from(peak_nits.clamp(REFERENCE_WHITE, 10000.0));
        let curve_max = (src_peak / f64::from(REFERENCE_WHITE)) as f32;
        let curve = (0..=CURVE_STEPS)
            .map(|i| {
                let rel = f64::from(curve_max) * i as f64 / CURVE_STEPS as f64;
                let nits = rel * f64::from(REFERENCE_WHITE);
                (bt2390_eetf(nits, src_peak, f64::from(REFERENCE_WHITE))
                    / f64::from(REFERENCE_WHITE)) as f32
            })
            .collect();
        let oetf = (0..=OETF_STEPS)
            .map(|i| {
                let l = i as f64 / OETF_STEPS as f64;
                let v = if l <= 0.003_130_8 {
                    12.92 * l
                } else {
                    1.055 * l.powf(1.0 / 2.4) - 0.055
                };
                (v * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect();
        ToneMapper {
            transfer,
            to_linear,
            matrix: primaries.to_bt709(),
            src_luma: primaries.luma(),
            hlg_ootf,
            curve,
            curve_max,
            oetf,
        }
    }

    /// Linear light relative to reference white, in source primaries.
    #[inline]
    fn linear(&self, px: &[u16]) -> [f32; 3] {
        let (r, g, b) = (
            self.to_linear[px[0] as usize],
            self.to_linear[px[1] as usize],
            self.to_linear[px[2] as usize],
        );
        match self.transfer {
            Transfer::Pq => [r, g, b],
            Transfer::Hlg => {
                // OOTF: Fd = Lw * Ys^(gamma-1) * Es, then relative to 203 cd/m²
                // (the factor comes from a 65536-entry table over Ys in [0,1]).
                let ys = self.src_luma[0] * r + self.src_luma[1] * g + self.src_luma[2] * b;
                let k = self.hlg_ootf[(ys.clamp(0.0, 1.0) * 65535.0 + 0.5) as usize];
                [r * k, g * k, b * k]
            }
        }
    }

    #[inline]
    fn curve_at(&self, m: f32) -> f32 {
        if m >= self.curve_max {
            return self.curve[CURVE_STEPS];
        }
        let x = m / self.curve_max * CURVE_STEPS as f32;
        let i = x as usize;
        let f = x - i as f32;
        self.curve[i] * (1.0 - f) + self.curve[i + 1] * f
    }

    /// Maps one pixel (16-bit signal) to sRGB 8-bit.
    #[inline]
    pub fn map_pixel(&self, px: &[u16], out: &mut [u8]) {
        let l = self.linear(px);
        let m = &self.matrix;
        let mut c = [
            m[0][0] * l[0] + m[0][1] * l[1] + m[0][2] * l[2],
            m[1][0] * l[0] + m[1][1] * l[1] + m[1][2] * l[2],
            m[2][0] * l[0] + m[2][1] * l[1] + m[2][2] * l[2],
        ];
        // Gamut: pull negative channels up by desaturating towards Y (BT.709).
        let min = c[0].min(c[1]).min(c[2]);
        if min < 0.0 {
            let y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
            if y <= 0.0 {
                c = [0.0; 3];
            } else {
                let t = y / (y - min);
                for v in &mut c {
                    *v = y + t * (*v - y);
                }
            }
        }
        // Tone curve on max(R,G,B): the ratio keeps hue and saturation.
        let mx = c[0].max(c[1]).max(c[2]);
        let scale = if mx > 1e-6 {
            self.curve_at(mx) / mx
        } else {
            0.0
        };
        for (o, v) in out.iter_mut().zip(c) {
            let v = (v * scale).clamp(0.0, 1.0);
            *o = self.oetf[(v * OETF_STEPS as f32 + 0.5) as usize];
        }
    }

    /// Maps an interleaved RGB16 buffer to RGB8.
    pub fn map(&self, rgb16: &[u16]) -> Vec<u8> {
        let mut out = vec![0u8; rgb16.len()];
        for (src, dst) in rgb16.chunks_exact(3).zip(out.chunks_exact_mut(3)) {
            self.map_pixel(src, dst);
        }
        out
    }
}

/// The content peak in cd/m² of an RGB16 HDR image: the 99.9th percentile of
/// max(R,G,B) luminance-ish (robust to a few hot pixels), at least 203.
pub fn measure_peak(rgb16: &[u16], transfer: Transfer) -> f32 {
    let mut hist = vec![0u32; 1024];
    let mut n = 0u32;
    for px in rgb16.chunks_exact(3) {
        let m = px[0].max(px[1]).max(px[2]);
        hist[(m >> 6) as usize] += 1;
        n += 1;
    }
    let mut left = n / 1000;
    let mut code = 0u32;
    for (i, &h) in hist.iter().enumerate().rev() {
        if h > left {
            code = (i as u32) << 6 | 63;
            break;
        }
        left -= h;
    }
    let e = f64::from(code) / 65535.0;
    let nits = match transfer {
        Transfer::Pq => pq_eotf(e),
        // HLG: signal 1.0 = nominal peak Lw (an achromatic pixel).
        Transfer::Hlg => f64::from(HLG_LW) * hlg_inverse_oetf(e).powf(f64::from(HLG_GAMMA)),
    };
    (nits as f32).max(REFERENCE_WHITE)
}

/// Widens `bits`-bit samples (10 or 12) to 16 bits by bit replication, so
/// that full scale stays full scale (1023 -> 65535).
pub fn widen_to_16(v: u16, bits: u8) -> u16 {
    let s = 16 - u32::from(bits);
    (v << s) | (v >> (u32::from(bits) - s))
}

/// RGB16 SDR (no tone map) -> RGB8, rounding.
pub fn narrow_to_8(rgb16: &[u16]) -> Vec<u8> {
    rgb16
        .iter()
        .map(|&v| ((u32::from(v) * 255 + 32767) / 65535) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pq_round_trip() {
        for nits in [0.1, 1.0, 100.0, 203.0, 1000.0, 4000.0, 10000.0] {
            let back = pq_eotf(pq_inverse_eotf(nits));
            assert!((back - nits).abs() / nits < 1e-6, "{nits} -> {back}");
        }
        assert!((pq_inverse_eotf(203.0) - 0.5807).abs() < 1e-3);
    }

    #[test]
    fn hlg_reference_white() {
        // BT.2408: HLG 75% signal is reference white, ~203 cd/m² at Lw 1000.
        let ys = hlg_inverse_oetf(0.75);
        let fd = 1000.0 * ys.powf(1.2);
        assert!((fd - 203.0).abs() < 3.0, "{fd}");
    }

    #[test]
    fn eetf_identity_below_knee_and_monotone() {
        let (src, dst) = (1000.0, 203.0);
        assert!((bt2390_eetf(50.0, src, dst) - 50.0).abs() < 0.01);
        assert!((bt2390_eetf(1000.0, src, dst) - dst).abs() < 0.5);
        let mut prev = 0.0;
        for i in 0..=1000 {
            let v = bt2390_eetf(i as f64, src, dst);
            assert!(v >= prev - 1e-9 && v <= dst + 1e-6);
            prev = v;
        }
    }

    #[test]
    fn peak_to_white_reference_white_in_shoulder_shadows_unchanged() {
        let tm = ToneMapper::new(Transfer::Pq, Primaries::Bt2020, 1000.0);
        let code = |nits: f64| (pq_inverse_eotf(nits) * 65535.0).round() as u16;
        let mut out = [0u8; 3];
        tm.map_pixel(&[code(1000.0); 3], &mut out);
        assert_eq!(out, [255, 255, 255]);
        tm.map_pixel(&[code(203.0); 3], &mut out);
        // Reference white sits in the EETF's shoulder for a 1000 cd/m² peak:
        // 0.78 linear = sRGB 229 (highlights above it keep 26 code values).
        assert!((225..=235).contains(&out[0]), "{out:?}");
        tm.map_pixel(&[code(20.0); 3], &mut out);
        // 20 cd/m² = 9.9% of reference white -> sRGB ~ 0.35 (identity region)
        assert!((85..=95).contains(&out[0]), "{out:?}");
    }

    #[test]
    fn widen() {
        assert_eq!(widen_to_16(1023, 10), 65535);
        assert_eq!(widen_to_16(0, 10), 0);
        assert_eq!(widen_to_16(4095, 12), 65535);
        assert_eq!(widen_to_16(512, 10), 32800);
    }
}
