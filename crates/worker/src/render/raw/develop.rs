//! The full develop through `rawler` (feature `raw-develop`).

use super::model::*;
use super::probe::probe_raw;
use super::read::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

// ---------------------------------------------------------------------------
// Full develop
// ---------------------------------------------------------------------------

/// Decodes and develops the RAW (black/white levels, demosaic, white
/// balance as shot, camera matrix to linear sRGB, default crop), then
/// brightens like dcraw/LibRaw (the 99th percentile of each channel goes to
/// white) and applies the sRGB curve. Returns 16-bit RGB in stored
/// orientation. Limits are checked from the header before the decoder
/// allocates anything; decoder panics become [`RawError::Decoder`].
pub fn decode_raw(data: &[u8], limits: &RawLimits) -> Result<Developed, RawError> {
    let started = Instant::now();
    if data.len() as u64 > limits.max_file_size {
        return Err(RawError::TooLarge(format!(
            "file is {} bytes, the limit is {}",
            data.len(),
            limits.max_file_size
        )));
    }
    let info = probe_raw(data)?;
    if info.kind == RawKind::Gpr {
        return Err(RawError::Unsupported(
            "GoPro GPR (VC-5 compressed DNG) has no decoder here".into(),
        ));
    }
    match &info.raw_data {
        RawData::Present => {}
        RawData::Truncated { needed, have } => {
            return Err(RawError::Truncated(format!(
                "{}: the raw data ends at byte {needed}, the file has {have}",
                info.kind.name()
            )))
        }
        RawData::Unknown(why) => {
            return Err(RawError::Unsupported(format!(
                "{}: {why}",
                info.kind.name()
            )))
        }
    }
    let (w, h) = (
        info.sensor_width.max(info.stored_width),
        info.sensor_height.max(info.stored_height),
    );
    check_size(w, h, limits)?;

    guarded(|| {
        use rawler::decoders::RawDecodeParams;
        use rawler::imgop::develop::{Intermediate, ProcessingStep, RawDevelop};
        let src = rawler::rawsource::RawSource::new_from_slice(data);
        let decoder = rawler::get_decoder(&src).map_err(rawler_err)?;
        let raw = decoder
            .raw_image(&src, &RawDecodeParams::default(), false)
            .map_err(rawler_err)?;
        // Second line of defence: what the decoder actually allocated.
        check_size(
            u32::try_from(raw.width).unwrap_or(u32::MAX),
            u32::try_from(raw.height).unwrap_or(u32::MAX),
            limits,
        )?;
        check_time(started, limits, "after the raw decode")?;
        let mut raw = raw;
        // Black/white scaling to 0..1 (rawler's own Rescale step), then the
        // DNG OpcodeList2 maps (lossy DNGs store 8-bit data through a cubic
        // MapPolynomial; without it the picture is washed out).
        raw.apply_scaling().map_err(rawler_err)?;
        if let Some((pos, len)) = info.opcode_list2 {
            let ops = parse_opcode_list(data.get(pos..pos.saturating_add(len)).unwrap_or(&[]));
            apply_map_ops(&mut raw, &ops);
        }
        let white_balance = [raw.wb_coeffs[0], raw.wb_coeffs[1], raw.wb_coeffs[2]];
        let develop = RawDevelop::new_with(&[
            ProcessingStep::Demosaic,
            ProcessingStep::FujiRotate,
            ProcessingStep::CropActiveArea,
            ProcessingStep::WhiteBalance,
            ProcessingStep::Calibrate,
            ProcessingStep::CropDefault,
        ]);
        let linear = develop.develop_intermediate(&raw).map_err(rawler_err)?;
        drop(raw);
        check_time(started, limits, "after demosaic")?;
        let (width, height, rgb) = match linear {
            Intermediate::ThreeColor(px) => {
                let (w, h) = (px.width, px.height);
                (w, h, px.flatten())
            }
            Intermediate::Monochrome(px) => {
                let (w, h) = (px.width, px.height);
                (w, h, px.data.iter().flat_map(|&v| [v, v, v]).collect())
            }
            Intermediate::FourColor(_) => {
                return Err(RawError::Decoder(
                    "four-colour output after calibration".into(),
                ))
            }
        };
        let (width, height) = (
            u32::try_from(width).map_err(|_| RawError::Decoder("width".into()))?,
            u32::try_from(height).map_err(|_| RawError::Decoder("height".into()))?,
        );
        if rgb.len() != width as usize * height as usize * 3 || width == 0 || height == 0 {
            return Err(RawError::Decoder(format!(
                "decoder returned {} samples for {width}x{height}",
                rgb.len()
            )));
        }
        Ok(Developed {
            width,
            height,
            pixels: to_display(&rgb),
            white_balance,
        })
    })
}

/// One DNG mapping opcode (the only OpcodeList2 kinds applied here).
#[derive(Debug, Clone)]
enum MapOp {
    /// MapTable (id 7): a 16-bit LUT.
    Table { area: OpArea, table: Vec<u16> },
    /// MapPolynomial (id 8): coefficients c0..cN.
    Poly { area: OpArea, coef: Vec<f64> },
}

/// The area, planes and pitch an opcode applies to.
#[derive(Debug, Clone, Copy)]
struct OpArea {
    top: u32,
    left: u32,
    bottom: u32,
    right: u32,
    plane: u32,
    planes: u32,
    row_pitch: u32,
    col_pitch: u32,
}

/// Parses a DNG opcode list (big-endian); opcodes other than MapTable and
/// MapPolynomial (GainMap, WarpRectilinear, FixBadPixels...) are skipped.
fn parse_opcode_list(d: &[u8]) -> Vec<MapOp> {
    let mut ops = Vec::new();
    let Some(count) = be_u32(d, 0) else {
        return ops;
    };
    let mut pos = 4usize;
    for _ in 0..count.min(256) {
        let (Some(id), Some(size)) = (be_u32(d, pos), be_u32(d, pos + 12)) else {
            break;
        };
        let body = pos + 16;
        let area = || -> Option<OpArea> {
            let f = |i: usize| be_u32(d, body + 4 * i);
            Some(OpArea {
                top: f(0)?,
                left: f(1)?,
                bottom: f(2)?,
                right: f(3)?,
                plane: f(4)?,
                planes: f(5)?,
                row_pitch: f(6)?.max(1),
                col_pitch: f(7)?.max(1),
            })
        };
        match id {
            7 => {
                if let (Some(area), Some(n)) = (area(), be_u32(d, body + 32)) {
                    let table: Option<Vec<u16>> = (0..n.min(65536) as usize)
                        .map(|i| be_u16(d, body + 36 + 2 * i))
                        .collect();
                    if let Some(table) = table.filter(|t| !t.is_empty()) {
                        ops.push(MapOp::Table { area, table });
                    }
                }
            }
            8 => {
                if let (Some(area), Some(degree)) = (area(), be_u32(d, body + 32)) {
                    let coef: Option<Vec<f64>> = (0..=degree.min(8) as usize)
                        .map(|i| be_u64(d, body + 36 + 8 * i).map(f64::from_bits))
                        .collect();
                    if let Some(coef) = coef.filter(|c| c.iter().all(|v| v.is_finite())) {
                        ops.push(MapOp::Poly { area, coef });
                    }
                }
            }
            _ => {}
        }
        pos = body.saturating_add(size as usize);
    }
    ops
}

/// Applies MapTable/MapPolynomial to scaled (0..1) raw data. Areas count
/// from the active area's origin (the DNG stage-2 image).
fn apply_map_ops(raw: &mut rawler::RawImage, ops: &[MapOp]) {
    let (w, h, cpp) = (raw.width, raw.height, raw.cpp.max(1));
    let (ox, oy) = raw.active_area.map_or((0, 0), |a| (a.p.x, a.p.y));
    let rawler::RawImageData::Float(px) = &mut raw.data else {
        return;
    };
    if px.len() < w * h * cpp {
        return;
    }
    for op in ops {
        let (area, f): (&OpArea, Box<dyn Fn(f32) -> f32>) = match op {
            MapOp::Poly { area, coef } => (
                area,
                Box::new(move |x: f32| {
                    let x = f64::from(x);
                    let mut y = 0.0;
                    for c in coef.iter().rev() {
                        y = y * x + c;
                    }
                    y.clamp(0.0, 1.0) as f32
                }),
            ),
            MapOp::Table { area, table } => (
                area,
                Box::new(move |x: f32| {
                    let i = (x.clamp(0.0, 1.0) * 65535.0).round() as usize;
                    let v = table.get(i).or(table.last()).copied().unwrap_or(0);
                    f32::from(v) / 65535.0
                }),
            ),
        };
        let rows = (oy + area.top as usize)..(oy + area.bottom as usize).min(h);
        let cols = (ox + area.left as usize)..(ox + area.right as usize).min(w);
        let planes =
            (area.plane as usize)..(area.plane.saturating_add(area.planes) as usize).min(cpp);
        for y in rows.step_by(area.row_pitch as usize) {
            for x in cols.clone().step_by(area.col_pitch as usize) {
                for p in planes.clone() {
                    let i = (y * w + x) * cpp + p;
                    if let Some(v) = px.get_mut(i) {
                        *v = f(*v);
                    }
                }
            }
        }
    }
}

fn check_size(w: u32, h: u32, limits: &RawLimits) -> Result<(), RawError> {
    if w == 0 || h == 0 {
        return Err(RawError::Corrupt(format!("header declares {w}x{h} pixels")));
    }
    if w > limits.max_dimension || h > limits.max_dimension {
        return Err(RawError::TooLarge(format!(
            "{w}x{h} exceeds the maximum side of {} px",
            limits.max_dimension
        )));
    }
    let px = u64::from(w) * u64::from(h);
    if px > limits.max_pixels {
        return Err(RawError::TooLarge(format!(
            "{w}x{h} ({px} px) exceeds the limit of {} px",
            limits.max_pixels
        )));
    }
    Ok(())
}

fn check_time(started: Instant, limits: &RawLimits, stage: &str) -> Result<(), RawError> {
    match limits.max_time {
        Some(max) if started.elapsed() > max => Err(RawError::Timeout(format!(
            "{:.1} s {stage}, the limit is {:.1} s",
            started.elapsed().as_secs_f64(),
            max.as_secs_f64()
        ))),
        _ => Ok(()),
    }
}

fn rawler_err(e: rawler::RawlerError) -> RawError {
    match e {
        rawler::RawlerError::Unsupported { .. } => RawError::Unsupported(e.to_string()),
        rawler::RawlerError::DecoderFailed(msg) => RawError::Decoder(msg),
    }
}

/// Runs `f`, turning a panic into [`RawError::Decoder`].
fn guarded<T>(f: impl FnOnce() -> Result<T, RawError>) -> Result<T, RawError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(RawError::Decoder(format!("decoder panicked: {msg}")))
        }
    }
}

/// Linear sRGB (0..1) to display-referred 16-bit sRGB: dcraw's
/// auto-brightening (the white point is the largest per-channel 99th
/// percentile, so that 1 % of the pixels clip; gain at most 256x as in
/// dcraw) and the sRGB transfer curve.
fn to_display(rgb: &[f32]) -> Vec<u16> {
    const BINS: usize = 0x2000;
    let mut hist = vec![[0u32; 3]; BINS];
    for px in rgb.chunks_exact(3) {
        for c in 0..3 {
            let v = px[c];
            let bin = if v.is_finite() {
                (v.clamp(0.0, 1.0) * (BINS - 1) as f32) as usize
            } else {
                0
            };
            hist[bin.min(BINS - 1)][c] += 1;
        }
    }
    let perc = (rgb.len() / 3) as f64 * 0.01;
    // The bin below which all but `perc` of a channel's samples lie.
    let channel_white = |c: usize| {
        let mut total = 0f64;
        let mut val = BINS;
        while val > 33 {
            val -= 1;
            total += f64::from(hist[val][c]);
            if total > perc {
                break;
            }
        }
        val
    };
    let white = (0..3).map(channel_white).fold(32usize, usize::max);
    let gain = (BINS - 1) as f32 / white as f32;
    // LUT over 16-bit linear input after the gain.
    let lut: Vec<u16> = (0..=65535u32)
        .map(|i| {
            let x = i as f64 / 65535.0;
            let y = if x <= 0.003_130_8 {
                12.92 * x
            } else {
                1.055 * x.powf(1.0 / 2.4) - 0.055
            };
            (y * 65535.0).round().clamp(0.0, 65535.0) as u16
        })
        .collect();
    rgb.iter()
        .map(|&v| {
            let x = if v.is_finite() {
                (v * gain).clamp(0.0, 1.0)
            } else {
                0.0
            };
            lut[(x * 65535.0).round() as usize]
        })
        .collect()
}
