//! Every job thumbfarm publishes is built here: the on-demand job of a
//! miss, the pre-generation jobs of an ingest (upload or ingest event), the
//! jobs of a backfill, the transcode of a video request. The routing key
//! ("lane") goes with the job: `render.ondemand`, `render.bulk`, `transcode`.

use thumbfarm_shared::keys::AVC;
use thumbfarm_shared::manifest::{Manifest, VideoKind};
use thumbfarm_shared::messages::{RenderJob, SourceRef, TranscodeJob, V1};
use thumbfarm_shared::queue::topology::routing;
use thumbfarm_shared::queue::{publish_json, Exchange, Queue, QueueError};
use thumbfarm_shared::renditions::{self, resolve_renditions, OutputFormat, Rendition};
use thumbfarm_shared::sizes::SizeLimits;
use thumbfarm_shared::AssetHash;

/// A job the API publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedJob {
    /// A render job and its routing key (`render.ondemand` or `render.bulk`).
    Render(&'static str, RenderJob),
    /// A transcode job (routing key `transcode`).
    Transcode(TranscodeJob),
}

impl PlannedJob {
    /// The routing key on `thumbfarm.jobs`.
    pub fn routing_key(&self) -> &'static str {
        match self {
            PlannedJob::Render(key, _) => key,
            PlannedJob::Transcode(_) => routing::TRANSCODE,
        }
    }

    /// The renditions a render job asks for (none for a transcode).
    pub fn sizes(&self) -> &[Rendition] {
        match self {
            PlannedJob::Render(_, job) => &job.sizes,
            PlannedJob::Transcode(_) => &[],
        }
    }

    /// Publishes the job on `thumbfarm.jobs`.
    pub async fn publish(&self, queue: &dyn Queue) -> Result<(), QueueError> {
        match self {
            PlannedJob::Render(key, job) => publish_json(queue, Exchange::Jobs, key, job).await,
            PlannedJob::Transcode(job) => {
                publish_json(queue, Exchange::Jobs, routing::TRANSCODE, job).await
            }
        }
    }
}

/// An original as a planner knows it: from its manifest, or from an ingest
/// event (whose hash may be unknown until a worker reads the bytes).
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// The asset, when known.
    pub hash: Option<AssetHash>,
    /// Where the original is.
    pub source: &'a SourceRef,
    /// Its media type (empty or `application/octet-stream` when unknown).
    pub media_type: &'a str,
    /// The video a still carries, when known (a motion photo found at upload).
    pub still_video: Option<VideoKind>,
}

impl<'a> From<&'a Manifest> for Original<'a> {
    fn from(m: &'a Manifest) -> Self {
        Original {
            hash: Some(m.hash),
            source: &m.original,
            media_type: &m.media_type,
            still_video: m.video.as_ref().map(|v| v.kind),
        }
    }
}

impl Original<'_> {
    fn is_video(&self) -> bool {
        self.media_type.starts_with("video/")
    }

    /// Whether the original's own bytes hold a video to transcode: a video,
    /// or a motion photo (a Live Photo's video is its MOV, another asset).
    pub fn holds_video(&self) -> bool {
        self.is_video() || self.still_video == Some(VideoKind::MotionPhoto)
    }

    /// The media type as a hint for the worker (none when unknown).
    fn media_type_hint(&self) -> Option<String> {
        Some(self.media_type.to_string())
            .filter(|m| !m.is_empty() && m != "application/octet-stream")
    }
}

/// A render job of `sizes` (renditions) on `lane`.
fn render(lane: &'static str, original: Original<'_>, sizes: Vec<Rendition>) -> PlannedJob {
    PlannedJob::Render(
        lane,
        RenderJob {
            v: V1,
            hash: original.hash,
            source: original.source.clone(),
            sizes,
            force: false,
            media_type: original.media_type_hint(),
        },
    )
}

/// The AVC transcode of a video.
pub fn transcode(original: Original<'_>) -> PlannedJob {
    PlannedJob::Transcode(TranscodeJob {
        v: V1,
        hash: original.hash,
        source: original.source.clone(),
        format: AVC.to_string(),
        force: false,
    })
}

/// Whether the manifest lists an output for `rendition`.
fn has_output(manifest: &Manifest, rendition: Rendition) -> bool {
    manifest.outputs.contains_key(&rendition.name())
}

/// What ingest pre-generates: the pre-generated sizes (`limits`) in the
/// pre-generated formats (`formats`, `--pregenerate-formats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pregeneration {
    /// The size limits.
    pub limits: SizeLimits,
    /// The formats ingest renders (always with JPEG).
    pub formats: Vec<OutputFormat>,
}

impl Default for Pregeneration {
    fn default() -> Self {
        Pregeneration::new(SizeLimits::default(), &[OutputFormat::Jpeg])
    }
}

impl Pregeneration {
    /// `limits` in `formats` (JPEG is always among them: the classic URLs
    /// must answer without a render).
    pub fn new(limits: SizeLimits, formats: &[OutputFormat]) -> Self {
        let mut formats = formats.to_vec();
        if !formats.contains(&OutputFormat::Jpeg) {
            formats.insert(0, OutputFormat::Jpeg);
        }
        Pregeneration { limits, formats }
    }

    /// The pre-generated renditions.
    pub fn renditions(&self) -> Vec<Rendition> {
        renditions::pregenerated(&self.limits, &self.formats)
    }
}

/// The renditions an on-demand job renders for a miss of `target` (already
/// resolved for the original when its dimensions are known): the target plus
/// the pre-generated renditions the manifest does not list yet, so one
/// decode serves them all. Sizes that do not exist for the original are
/// dropped, and larger fit sizes are resolved to the one that is actually
/// stored.
pub fn ondemand_sizes(
    pregen: &Pregeneration,
    manifest: &Manifest,
    target: Rendition,
) -> Vec<Rendition> {
    let mut wanted: Vec<Rendition> = pregen
        .renditions()
        .into_iter()
        .filter(|r| !has_output(manifest, *r))
        .collect();
    if manifest.has_dimensions() {
        wanted = resolve_renditions(&wanted, manifest.width, manifest.height)
            .into_iter()
            .filter(|r| !has_output(manifest, *r))
            .collect();
    }
    wanted.push(target);
    wanted.sort();
    wanted.dedup();
    wanted
}

/// The on-demand job for a miss of `target`.
pub fn ondemand_job(pregen: &Pregeneration, manifest: &Manifest, target: Rendition) -> PlannedJob {
    render(
        routing::RENDER_ONDEMAND,
        manifest.into(),
        ondemand_sizes(pregen, manifest, target),
    )
}

/// The on-demand job for one more rendition of an asset whose job is in
/// flight.
pub fn extra_size_job(manifest: &Manifest, target: Rendition) -> PlannedJob {
    render(routing::RENDER_ONDEMAND, manifest.into(), vec![target])
}

/// The jobs that pre-generate a new original: the pre-generated renditions
/// on `render.bulk` (for a video, of its poster frame), and for a video or a
/// motion photo also its AVC transcode.
pub fn pregeneration_jobs(pregen: &Pregeneration, original: Original<'_>) -> Vec<PlannedJob> {
    let mut jobs = vec![render(routing::RENDER_BULK, original, pregen.renditions())];
    if original.holds_video() {
        jobs.push(transcode(original));
    }
    jobs
}

/// The jobs that complete an asset a backfill found incomplete: the
/// `missing` renditions on `render.bulk`, and the transcode when it is missing.
pub fn backfill_jobs(
    manifest: &Manifest,
    missing: Vec<Rendition>,
    transcode_missing: bool,
) -> Vec<PlannedJob> {
    let mut jobs = Vec::new();
    if !missing.is_empty() {
        jobs.push(render(routing::RENDER_BULK, manifest.into(), missing));
    }
    if transcode_missing {
        jobs.push(transcode(manifest.into()));
    }
    jobs
}

/// The jobs that try again the outputs of `manifest` whose failures were
/// just cleared (`failed`: `image`, a rendition name, `avc`): the
/// pre-generated renditions it does not list on `render.bulk` when an image
/// output had failed, and the transcode when `avc` had.
pub fn retry_jobs(
    pregen: &Pregeneration,
    manifest: &Manifest,
    failed: &[String],
) -> Vec<PlannedJob> {
    let mut jobs = Vec::new();
    if failed.iter().any(|o| o != AVC) {
        let mut missing: Vec<Rendition> = pregen
            .renditions()
            .into_iter()
            .filter(|r| !has_output(manifest, *r))
            .collect();
        if manifest.has_dimensions() {
            missing = resolve_renditions(&missing, manifest.width, manifest.height);
        }
        // Renditions asked for on demand that failed are tried again too.
        missing.extend(failed.iter().filter_map(|o| o.parse::<Rendition>().ok()));
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            jobs.push(render(routing::RENDER_BULK, manifest.into(), missing));
        }
    }
    if failed.iter().any(|o| o == AVC) {
        jobs.push(transcode(manifest.into()));
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbfarm_shared::sizes::{self, Size};

    fn r(sizes: &[Size]) -> Vec<Rendition> {
        sizes.iter().map(|s| Rendition::from(*s)).collect()
    }
    use thumbfarm_shared::manifest::OutputInfo;

    fn manifest(w: u32, h: u32, media_type: &str) -> Manifest {
        let source = SourceRef {
            bucket: None,
            key: "originals/x.jpg".into(),
        };
        let mut m = Manifest::new(AssetHash::of_bytes(b"x"), source, media_type, 1);
        m.width = w;
        m.height = h;
        m
    }

    #[test]
    fn a_miss_renders_the_missing_pregenerated_sizes_too() {
        let limits = Pregeneration::default();
        let mut m = manifest(4000, 3000, "image/jpeg");
        let all = ondemand_sizes(&limits, &m, Size::Fit4096.into());
        assert_eq!(
            all,
            r(&[
                Size::Colors,
                Size::Tile50,
                Size::Tile100,
                Size::Tile224,
                Size::Fit720,
                Size::Tile500,
                Size::Fit1280,
                Size::Fit1920,
                Size::Fit4096
            ])
        );
        for s in limits.limits.pregenerated() {
            m.outputs.insert(
                s.name().into(),
                OutputInfo {
                    key: String::new(),
                    width: 1,
                    height: 1,
                    bytes: 1,
                },
            );
        }
        assert_eq!(
            ondemand_sizes(&limits, &m, Size::Left224.into()),
            r(&[Size::Left224])
        );
    }

    #[test]
    fn small_originals_resolve_the_pregenerated_set() {
        let m = manifest(1000, 800, "image/jpeg");
        let s = ondemand_sizes(&Pregeneration::default(), &m, Size::Fit1280.into());
        assert!(!s.contains(&Size::Fit1920.into()), "{s:?}");
        // Unknown dimensions: the worker resolves.
        let m = manifest(0, 0, "image/jpeg");
        assert!(
            ondemand_sizes(&Pregeneration::default(), &m, Size::Fit7680.into())
                .contains(&Size::Fit1920.into())
        );
    }

    #[test]
    fn ingest_of_a_video_also_transcodes() {
        let limits = Pregeneration::default();
        let m = manifest(0, 0, "video/mp4");
        let jobs = pregeneration_jobs(&limits, (&m).into());
        let keys: Vec<_> = jobs.iter().map(PlannedJob::routing_key).collect();
        assert_eq!(keys, vec!["render.bulk", "transcode"]);
        let m = manifest(0, 0, "image/png");
        let jobs = pregeneration_jobs(&limits, (&m).into());
        assert_eq!(jobs.len(), 1);
        match &jobs[0] {
            PlannedJob::Render(_, job) => {
                assert_eq!(job.sizes, limits.renditions());
                assert!(!job.force);
                assert_eq!(job.media_type.as_deref(), Some("image/png"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ingest_of_a_motion_photo_also_transcodes() {
        use thumbfarm_shared::manifest::StillVideo;
        let limits = Pregeneration::default();
        let mut m = manifest(0, 0, "image/jpeg");
        m.video = Some(StillVideo::new(VideoKind::MotionPhoto));
        let keys: Vec<_> = pregeneration_jobs(&limits, (&m).into())
            .iter()
            .map(PlannedJob::routing_key)
            .collect();
        assert_eq!(keys, vec!["render.bulk", "transcode"]);
        // A Live Photo's video is its MOV's own transcode.
        m.video = Some(StillVideo::new(VideoKind::LivePhoto));
        assert_eq!(pregeneration_jobs(&limits, (&m).into()).len(), 1);
    }

    #[test]
    fn unknown_media_types_are_no_hint() {
        let m = manifest(0, 0, "application/octet-stream");
        match &pregeneration_jobs(&Pregeneration::default(), (&m).into())[0] {
            PlannedJob::Render(_, job) => assert_eq!(job.media_type, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backfill_jobs_name_only_what_is_missing() {
        let m = manifest(4000, 3000, "video/mp4");
        let jobs = backfill_jobs(&m, r(&[Size::Tile100]), true);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].sizes(), r(&[Size::Tile100]).as_slice());
        assert!(backfill_jobs(&m, Vec::new(), false).is_empty());
    }

    #[test]
    fn a_retry_plans_exactly_the_outputs_that_had_failed() {
        let limits = Pregeneration::default();
        let image = manifest(4000, 3000, "image/jpeg");
        let jobs = retry_jobs(&limits, &image, &["image".to_string()]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].routing_key(), routing::RENDER_BULK);
        assert_eq!(
            jobs[0].sizes(),
            r(&sizes::render_set(
                &limits.limits.pregenerated(),
                4000,
                3000
            ))
            .as_slice()
        );
        let video = manifest(640, 360, "video/mp4");
        let jobs = retry_jobs(&limits, &video, &[AVC.to_string()]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].routing_key(), routing::TRANSCODE);
        let jobs = retry_jobs(&limits, &image, &["fit_7680".to_string()]);
        assert!(
            jobs[0].sizes().contains(&Size::Fit7680.into()),
            "an on-demand size too"
        );
        assert!(retry_jobs(&limits, &image, &[]).is_empty());
    }

    #[test]
    fn other_formats_ride_along_with_the_jpeg_set() {
        let pregen = Pregeneration::new(SizeLimits::default(), &[OutputFormat::Webp]);
        assert_eq!(pregen.formats, vec![OutputFormat::Jpeg, OutputFormat::Webp]);
        let m = manifest(4000, 3000, "image/jpeg");
        let webp = Rendition::new(Size::Tile500, OutputFormat::Webp).unwrap();
        let avif = Rendition::new(Size::Fit1280, OutputFormat::Avif).unwrap();
        let wanted = ondemand_sizes(&pregen, &m, avif);
        assert!(wanted.contains(&webp) && wanted.contains(&avif));
        assert!(wanted.contains(&Size::Colors.into()));
        assert!(!wanted
            .iter()
            .any(|r| r.size == Size::Colors && !r.is_classic()));
        let avif_7680 = Rendition::new(Size::Fit7680, OutputFormat::Avif).unwrap();
        let resolved = resolve_renditions(&[avif_7680], 4000, 3000);
        assert_eq!(
            resolved,
            vec![Rendition::new(Size::Fit4096, OutputFormat::Avif).unwrap()]
        );
        let jobs = retry_jobs(&pregen, &m, &["tile_500.avif".to_string()]);
        assert!(jobs[0]
            .sizes()
            .contains(&Rendition::new(Size::Tile500, OutputFormat::Avif).unwrap()));
    }
}
