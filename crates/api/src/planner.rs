//! The planner: which sizes a job should render, and the jobs an ingest or
//! a miss publishes.

use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::messages::{RenderJob, TranscodeJob, V1};
use thumbfarm_shared::queue::topology::routing;
use thumbfarm_shared::queue::{publish_json, Exchange, Queue, QueueError};
use thumbfarm_shared::sizes::{self, Size, SizeLimits};
use thumbfarm_shared::AssetHash;

/// The only video format there is.
pub const VIDEO_FORMAT: &str = "avc";

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

/// Whether the manifest lists an output for `size`.
fn has_output(manifest: &Manifest, size: Size) -> bool {
    manifest.outputs.contains_key(size.name())
}

/// The sizes an on-demand job renders for a miss of `target` (already
/// resolved for the original when its dimensions are known): the target plus
/// the pre-generated sizes the manifest does not list yet, so one decode
/// serves them all. Sizes that do not exist for the original are dropped, and
/// larger fit sizes are resolved to the one that is actually stored.
pub fn ondemand_sizes(limits: &SizeLimits, manifest: &Manifest, target: Size) -> Vec<Size> {
    let mut wanted: Vec<Size> = limits
        .pregenerated()
        .into_iter()
        .filter(|s| !has_output(manifest, *s))
        .collect();
    if manifest.has_dimensions() {
        wanted = sizes::render_set(&wanted, manifest.width, manifest.height)
            .into_iter()
            .filter(|s| !has_output(manifest, *s))
            .collect();
    }
    wanted.push(target);
    wanted.sort();
    wanted.dedup();
    wanted
}

/// A render job of `sizes` of the asset the manifest describes.
pub fn render_job(manifest: &Manifest, sizes: Vec<Size>) -> RenderJob {
    RenderJob {
        v: V1,
        hash: Some(manifest.hash),
        source: manifest.original.clone(),
        sizes,
        force: false,
        media_type: Some(manifest.media_type.clone()).filter(|m| !m.is_empty()),
    }
}

/// The on-demand job for a miss of `target`.
pub fn ondemand_job(limits: &SizeLimits, manifest: &Manifest, target: Size) -> PlannedJob {
    PlannedJob::Render(
        routing::RENDER_ONDEMAND,
        render_job(manifest, ondemand_sizes(limits, manifest, target)),
    )
}

/// The jobs that pre-generate a newly ingested asset: the pre-generated
/// sizes on `render.bulk` (for a video, its poster frame), and for a video
/// also an AVC transcode.
pub fn ingest_jobs(limits: &SizeLimits, manifest: &Manifest) -> Vec<PlannedJob> {
    let mut jobs = vec![PlannedJob::Render(
        routing::RENDER_BULK,
        render_job(manifest, limits.pregenerated()),
    )];
    if manifest.is_video() {
        jobs.push(PlannedJob::Transcode(transcode_job(
            &manifest.hash,
            manifest,
        )));
    }
    jobs
}

/// An AVC transcode of the asset.
pub fn transcode_job(hash: &AssetHash, manifest: &Manifest) -> TranscodeJob {
    TranscodeJob {
        v: V1,
        hash: Some(*hash),
        source: manifest.original.clone(),
        format: VIDEO_FORMAT.to_string(),
        force: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use thumbfarm_shared::manifest::OutputInfo;
    use thumbfarm_shared::messages::SourceRef;

    fn manifest(w: u32, h: u32, media_type: &str) -> Manifest {
        Manifest {
            v: V1,
            hash: AssetHash::of_bytes(b"x"),
            original: SourceRef {
                bucket: None,
                key: "originals/x.jpg".into(),
            },
            media_type: media_type.into(),
            bytes: 1,
            width: w,
            height: h,
            duration_ms: None,
            outputs: BTreeMap::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn a_miss_renders_the_missing_pregenerated_sizes_too() {
        let limits = SizeLimits::default();
        let mut m = manifest(4000, 3000, "image/jpeg");
        let all = ondemand_sizes(&limits, &m, Size::Fit4096);
        assert_eq!(
            all,
            vec![
                Size::Colors,
                Size::Tile50,
                Size::Tile100,
                Size::Tile224,
                Size::Fit720,
                Size::Tile500,
                Size::Fit1280,
                Size::Fit1920,
                Size::Fit4096
            ]
        );
        for s in limits.pregenerated() {
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
            ondemand_sizes(&limits, &m, Size::Left224),
            vec![Size::Left224]
        );
    }

    #[test]
    fn small_originals_resolve_the_pregenerated_set() {
        let m = manifest(1000, 800, "image/jpeg");
        let s = ondemand_sizes(&SizeLimits::default(), &m, Size::Fit1280);
        assert!(!s.contains(&Size::Fit1920), "{s:?}");
        // Unknown dimensions: the worker resolves.
        let m = manifest(0, 0, "image/jpeg");
        assert!(ondemand_sizes(&SizeLimits::default(), &m, Size::Fit7680).contains(&Size::Fit1920));
    }

    #[test]
    fn ingest_of_a_video_also_transcodes() {
        let limits = SizeLimits::default();
        let jobs = ingest_jobs(&limits, &manifest(0, 0, "video/mp4"));
        let keys: Vec<_> = jobs.iter().map(PlannedJob::routing_key).collect();
        assert_eq!(keys, vec!["render.bulk", "transcode"]);
        let jobs = ingest_jobs(&limits, &manifest(0, 0, "image/png"));
        assert_eq!(jobs.len(), 1);
        match &jobs[0] {
            PlannedJob::Render(_, job) => {
                assert_eq!(job.sizes, limits.pregenerated());
                assert!(!job.force);
                assert_eq!(job.media_type.as_deref(), Some("image/png"));
            }
            other => panic!("{other:?}"),
        }
    }
}
