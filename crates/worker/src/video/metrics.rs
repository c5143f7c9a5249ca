//! Prometheus metrics of the video pipeline, in the process-wide default
//! registry (so they appear on the worker's `/metrics`, and on the API's when
//! it runs the worker in-process).

use prometheus::{register_histogram_vec, HistogramVec};
use std::sync::OnceLock;

/// The video pipeline's metrics.
pub struct VideoMetrics {
    /// Wall-clock time of one remux or transcode, by path (`remux`, `transcode`).
    pub duration: HistogramVec,
    /// Media seconds written per wall second, by path.
    pub speed: HistogramVec,
}

impl VideoMetrics {
    fn register() -> prometheus::Result<Self> {
        Ok(VideoMetrics {
            duration: register_histogram_vec!(
                "thumbfarm_worker_transcode_duration_seconds",
                "Wall-clock time of one video remux or transcode, by path",
                &["path"],
                vec![
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                    3600.0
                ]
            )?,
            speed: register_histogram_vec!(
                "thumbfarm_worker_transcode_speed",
                "Encoded media seconds per wall-clock second of one video job, by path",
                &["path"],
                vec![0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
            )?,
        })
    }

    /// The process-wide metrics, registered on first use.
    pub fn get() -> &'static VideoMetrics {
        static METRICS: OnceLock<VideoMetrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            // Registration only fails on a duplicate name, which cannot happen
            // behind the OnceLock.
            VideoMetrics::register().unwrap_or_else(|e| panic!("video metrics: {e}"))
        })
    }
}
