//! What a worker does: the queues it consumes, how many jobs at once, and
//! the options of its pipelines.

use crate::render::RenderOptions;
use crate::video::VideoOptions;
use std::time::Duration;
use thumbfarm_shared::{KeyLayout, SizeLimits};

/// A kind of job queue a worker can consume (`--queues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobKind {
    /// `thumbfarm.render.ondemand` and `thumbfarm.render.bulk`.
    Render,
    /// `thumbfarm.transcode`.
    Transcode,
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The job queues consumed (render, transcode or both).
    pub queues: Vec<JobKind>,
    /// Jobs rendered at once (defaults to the number of cores).
    pub concurrency: usize,
    /// Unsettled deliveries per queue (raised to `concurrency` when lower).
    pub prefetch: u16,
    /// Encoder settings and input limits.
    pub render: RenderOptions,
    /// Video transcode settings and limits.
    pub video: VideoOptions,
    /// Storage key layout.
    pub layout: KeyLayout,
    /// Size limits.
    pub limits: SizeLimits,
    /// Seconds to finish jobs in hand after a stop signal.
    pub grace_seconds: u64,
    /// How long a job retries an unavailable store or broker in place.
    pub transient_retry: Duration,
    /// Times a message may be given back before the broker dead-letters it
    /// (`--delivery-limit`): a job that fails on its last delivery records why.
    pub delivery_limit: u32,
    /// Renders, posters and transcodes run in supervised child processes
    /// (`--isolate-decoders`); `None`: in this process.
    pub isolation: Option<std::sync::Arc<crate::isolation::DecoderChildren>>,
    /// How long a render holds its asset's cluster-wide claim at most (a
    /// duplicate job waits that long for the first render): the render
    /// time limit and a margin for the store.
    pub render_lease: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queues: vec![JobKind::Render, JobKind::Transcode],
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 2,
            render: RenderOptions::default(),
            video: VideoOptions::default(),
            layout: KeyLayout::default(),
            limits: SizeLimits::default(),
            grace_seconds: 60,
            transient_retry: Duration::from_secs(300),
            delivery_limit: 5,
            isolation: None,
            render_lease: Duration::from_secs(150),
        }
    }
}
