//! HDR video: which sources are HDR (PQ/HDR10, HLG, Dolby Vision), how they
//! are tone-mapped to SDR BT.709, and which cannot be.
//!
//! Detection reads the stream headers only: the transfer characteristic
//! (`color_trc` = `smpte2084` or `arib-std-b67`, from the container's `colr`
//! box or the bitstream's VUI, as FFmpeg's stream probing fills it in), the
//! Dolby Vision configuration record (`dvcC`/`dvvC`, FFmpeg's `DOVI_CONF`
//! stream side data) and the Dolby Vision sample-entry codec tags (`dvh1`,
//! `dvhe`, `dav1`, `dva1`, `dvav`).
//!
//! Tone mapping (FFmpeg's `zscale` + `tonemap`, see [`tonemap_chain`]):
//! linearise at 100 nits nominal peak, convert BT.2020 to BT.709 primaries in
//! linear light, compress the highlights, re-encode BT.709 limited range.
//! PQ uses `hable` (a filmic curve that rolls 1,000–4,000-nit highlights off
//! smoothly while keeping contrast); HLG uses `mobius` (linear up to its knee,
//! so the mid-tones stay as bright as HLG's own backward-compatible SDR
//! rendering). `docs/formats.md` has the measurements behind the choice.
//!
//! Dolby Vision: profiles with an HDR10, SDR or HLG compatible base layer
//! (7, 8.1, 8.2, 8.4, 9, 10.1/2/4) are handled through that base layer.
//! Profile 5 (and 10.0) code IPTPQc2 with no compatible base: without the
//! RPU reshaping (which only libplacebo implements, not this FFmpeg's
//! `zscale`) any rendering has wrong colours (green/purple), so these fail
//! permanently with [`VideoError::Unsupported`].

use super::error::VideoError;
use ffmpeg::color;
use ffmpeg_next as ffmpeg;
use thumbfarm_shared::manifest::{self as m, DolbyVision};

/// An HDR transfer function of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoTransfer {
    /// SMPTE ST 2084 (PQ, HDR10).
    Pq,
    /// ARIB STD-B67 (HLG).
    Hlg,
}

impl VideoTransfer {
    /// The `zscale` name of the transfer.
    fn zscale_name(self) -> &'static str {
        match self {
            VideoTransfer::Pq => "smpte2084",
            VideoTransfer::Hlg => "arib-std-b67",
        }
    }

    /// The `tonemap` curve used for the transfer (see the module docs).
    pub fn curve(self) -> &'static str {
        match self {
            VideoTransfer::Pq => "hable",
            VideoTransfer::Hlg => "mobius",
        }
    }
}

/// What the stream headers say about an HDR video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHdr {
    /// The transfer characteristic of the stream, when it is PQ or HLG.
    pub transfer: Option<VideoTransfer>,
    /// The Dolby Vision configuration record, when present.
    pub dolby_vision: Option<DolbyVision>,
    /// A Dolby Vision codec tag (`dvh1`, …) without a configuration record.
    pub dolby_vision_tag: bool,
    /// Bits per sample of the coded pictures.
    pub bit_depth: u8,
    /// `zscale` name of the source primaries (BT.2020 unless the stream says otherwise).
    pub primaries: &'static str,
    /// `zscale` name of the source matrix (BT.2020 NCL unless the stream says otherwise).
    pub matrix: &'static str,
    /// Whether the source is full range.
    pub full_range: bool,
}

/// The stream facts [`VideoHdr::detect`] works from.
#[derive(Debug, Clone, Copy)]
pub struct StreamColour<'a> {
    /// Transfer characteristic.
    pub transfer: color::TransferCharacteristic,
    /// Colour primaries.
    pub primaries: color::Primaries,
    /// Matrix coefficients.
    pub matrix: color::Space,
    /// Range.
    pub range: color::Range,
    /// The sample entry's codec tag (little-endian FourCC).
    pub codec_tag: u32,
    /// The `DOVI_CONF` stream side data, if any.
    pub dovi_record: Option<&'a [u8]>,
    /// Bits per sample.
    pub bit_depth: u8,
}

/// Dolby Vision sample-entry FourCCs.
const DOLBY_VISION_TAGS: [&[u8; 4]; 5] = [b"dvh1", b"dvhe", b"dav1", b"dva1", b"dvav"];

/// Parses FFmpeg's `AVDOVIDecoderConfigurationRecord` (8 bytes: version
/// major, minor, profile, level, rpu, el, bl present flags, base-layer
/// compatibility id). `None` when it is too short.
pub fn parse_dovi_record(data: &[u8]) -> Option<DolbyVision> {
    let record = data.get(..8)?;
    Some(DolbyVision {
        profile: record[2],
        level: record[3],
        compatibility: record[7],
    })
}

impl VideoHdr {
    /// The HDR facts of a stream, or `None` for SDR.
    pub fn detect(colour: &StreamColour<'_>) -> Option<VideoHdr> {
        let transfer = match colour.transfer {
            color::TransferCharacteristic::SMPTE2084 => Some(VideoTransfer::Pq),
            color::TransferCharacteristic::ARIB_STD_B67 => Some(VideoTransfer::Hlg),
            _ => None,
        };
        let dolby_vision = colour.dovi_record.and_then(parse_dovi_record);
        let tag = colour.codec_tag.to_le_bytes();
        let dolby_vision_tag = DOLBY_VISION_TAGS.iter().any(|t| **t == tag);
        if transfer.is_none() && dolby_vision.is_none() && !dolby_vision_tag {
            return None;
        }
        Some(VideoHdr {
            transfer,
            dolby_vision,
            dolby_vision_tag,
            bit_depth: colour.bit_depth,
            primaries: match colour.primaries {
                color::Primaries::BT709 => "709",
                color::Primaries::SMPTE432 => "smpte432",
                _ => "2020",
            },
            matrix: match colour.matrix {
                color::Space::BT709 => "709",
                _ => "2020_ncl",
            },
            full_range: colour.range == color::Range::JPEG,
        })
    }

    /// The curve to tone-map from: `Ok(None)` when the decodable base layer
    /// already is SDR (Dolby Vision 8.2/9), an error when no correct SDR
    /// rendering is possible (Dolby Vision profile 5).
    pub fn route(&self) -> Result<Option<VideoTransfer>, VideoError> {
        if let Some(dv) = self.dolby_vision {
            match dv.compatibility {
                0 => {
                    return Err(VideoError::Unsupported(format!(
                        "Dolby Vision profile {} has no backward-compatible base layer \
                         (IPTPQc2 colour); it cannot be tone-mapped without Dolby Vision \
                         reshaping, which this FFmpeg build lacks",
                        dv.profile
                    )))
                }
                1 | 6 => return Ok(Some(self.transfer.unwrap_or(VideoTransfer::Pq))),
                4 => return Ok(Some(self.transfer.unwrap_or(VideoTransfer::Hlg))),
                2 => return Ok(self.transfer),
                _ => {}
            }
        }
        match self.transfer {
            Some(t) => Ok(Some(t)),
            None => Err(VideoError::Unsupported(
                "Dolby Vision stream without a configuration record or HDR10/HLG signalling \
                 cannot be tone-mapped"
                    .into(),
            )),
        }
    }

    /// What the manifest records.
    pub fn to_manifest(&self) -> m::HdrInfo {
        m::HdrInfo {
            transfer: self.transfer.map(|t| match t {
                VideoTransfer::Pq => m::HdrTransfer::Pq,
                VideoTransfer::Hlg => m::HdrTransfer::Hlg,
            }),
            gain_maps: Vec::new(),
            bit_depth: self.bit_depth,
            dolby_vision: self.dolby_vision,
        }
    }
}

/// The tone map of one HDR source, as the filter graphs need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToneMap {
    /// The source transfer.
    pub transfer: VideoTransfer,
    /// `zscale` name of the source primaries.
    pub primaries: &'static str,
    /// `zscale` name of the source matrix.
    pub matrix: &'static str,
    /// Whether the source is full range.
    pub full_range: bool,
}

impl ToneMap {
    /// The tone map of `hdr` (`Ok(None)`: none needed; an error: impossible).
    pub fn for_source(hdr: Option<&VideoHdr>) -> Result<Option<ToneMap>, VideoError> {
        let Some(hdr) = hdr else { return Ok(None) };
        Ok(hdr.route()?.map(|transfer| ToneMap {
            transfer,
            primaries: hdr.primaries,
            matrix: hdr.matrix,
            full_range: hdr.full_range,
        }))
    }
}

/// The `zscale` + `tonemap` filters that turn an HDR picture into SDR
/// BT.709 limited-range `yuv420p` of `width`×`height`, followed by a comma.
pub fn tonemap_chain(map: &ToneMap, width: u32, height: u32) -> String {
    let rin = if map.full_range { "full" } else { "limited" };
    format!(
        "zscale=w={width}:h={height}:f=bicubic:tin={tin}:pin={pin}:min={min}:rin={rin}\
         :t=linear:npl=100,format=gbrpf32le,zscale=p=709,tonemap={curve}:desat=0,\
         zscale=t=709:m=709:r=limited,format=yuv420p,",
        tin = map.transfer.zscale_name(),
        pin = map.primaries,
        min = map.matrix,
        curve = map.transfer.curve(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(transfer: color::TransferCharacteristic) -> StreamColour<'static> {
        StreamColour {
            transfer,
            primaries: color::Primaries::BT2020,
            matrix: color::Space::BT2020NCL,
            range: color::Range::MPEG,
            codec_tag: u32::from_le_bytes(*b"hvc1"),
            dovi_record: None,
            bit_depth: 10,
        }
    }

    #[test]
    fn sdr_is_not_hdr() {
        assert_eq!(
            VideoHdr::detect(&colour(color::TransferCharacteristic::BT709)),
            None
        );
    }

    #[test]
    fn pq_and_hlg_pick_their_curves() {
        let pq = VideoHdr::detect(&colour(color::TransferCharacteristic::SMPTE2084)).unwrap();
        assert_eq!(pq.route().unwrap(), Some(VideoTransfer::Pq));
        let hlg = VideoHdr::detect(&colour(color::TransferCharacteristic::ARIB_STD_B67)).unwrap();
        let map = ToneMap::for_source(Some(&hlg)).unwrap().unwrap();
        let chain = tonemap_chain(&map, 640, 360);
        assert!(chain.contains("tin=arib-std-b67") && chain.contains("tonemap=mobius"));
        assert!(
            chain.contains("pin=2020:min=2020_ncl:rin=limited"),
            "{chain}"
        );
        assert_eq!(hlg.to_manifest().transfer, Some(m::HdrTransfer::Hlg));
    }

    #[test]
    fn dolby_vision_profiles_route_by_their_base_layer() {
        let record = |profile: u8, compat: u8| [1, 0, profile, 6, 1, 0, 1, compat];
        let with = |rec: &[u8; 8], trc| {
            let mut c = colour(trc);
            c.codec_tag = u32::from_le_bytes(*b"dvh1");
            let rec: &[u8] = rec;
            VideoHdr::detect(&StreamColour {
                dovi_record: Some(rec),
                ..c
            })
            .unwrap()
        };
        let unspecified = color::TransferCharacteristic::Unspecified;
        // 8.1: HDR10 base.
        let p81 = with(&record(8, 1), unspecified);
        assert_eq!(p81.route().unwrap(), Some(VideoTransfer::Pq));
        assert_eq!(p81.to_manifest().dolby_vision.unwrap().profile, 8);
        // 8.4 (iPhone): HLG base.
        let p84 = with(&record(8, 4), color::TransferCharacteristic::ARIB_STD_B67);
        assert_eq!(p84.route().unwrap(), Some(VideoTransfer::Hlg));
        // 8.2: SDR base, nothing to map.
        assert_eq!(
            with(&record(8, 2), color::TransferCharacteristic::BT709)
                .route()
                .unwrap(),
            None
        );
        // 5: no compatible base.
        let err = with(&record(5, 0), unspecified).route().unwrap_err();
        assert!(err.is_permanent());
        assert!(err.to_string().contains("profile 5"), "{err}");
        // A DV tag with nothing else: cannot be mapped.
        let mut c = colour(unspecified);
        c.codec_tag = u32::from_le_bytes(*b"dvhe");
        assert!(VideoHdr::detect(&c).unwrap().route().is_err());
    }

    #[test]
    fn short_dovi_records_are_ignored() {
        assert_eq!(parse_dovi_record(&[1, 0, 5]), None);
        assert_eq!(parse_dovi_record(&[]), None);
    }
}
