//! The worker's readiness: not ready while its store refuses it because of
//! its configuration (access denied, no such bucket), with the cause on
//! `/readyz` and in the log once, not once per job.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one configuration error keeps the worker unready.
pub const CONFIG_ERROR_HOLD: Duration = Duration::from_secs(60);

/// The process-wide readiness state.
#[derive(Debug, Default)]
pub struct Health {
    config_error: Mutex<Option<(String, Instant)>>,
}

impl Health {
    /// The process-wide state.
    pub fn get() -> &'static Health {
        static HEALTH: OnceLock<Health> = OnceLock::new();
        HEALTH.get_or_init(Health::default)
    }

    /// Records a configuration error; logs it when it is new (not already
    /// reported within [`CONFIG_ERROR_HOLD`]).
    pub fn config_error(&self, cause: &str) {
        let mut guard = self.config_error.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = guard
            .as_ref()
            .is_some_and(|(old, at)| old == cause && at.elapsed() < CONFIG_ERROR_HOLD);
        if !fresh {
            tracing::error!(%cause, "the store refuses this worker's configuration; jobs wait until it is fixed");
        }
        *guard = Some((cause.to_string(), Instant::now()));
    }

    /// Forgets the configuration error (a job went through).
    pub fn ok(&self) {
        let mut guard = self.config_error.lock().unwrap_or_else(|p| p.into_inner());
        if guard.take().is_some() {
            tracing::info!("the store accepts this worker again");
        }
    }

    /// `Err(cause)` while a configuration error is recent.
    pub fn readiness(&self) -> Result<(), String> {
        let guard = self.config_error.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some((cause, at)) if at.elapsed() < CONFIG_ERROR_HOLD => Err(cause.clone()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_make_the_worker_unready_until_a_job_goes_through() {
        let h = Health::default();
        assert!(h.readiness().is_ok());
        h.config_error("S3 bucket b does not exist");
        assert_eq!(h.readiness().unwrap_err(), "S3 bucket b does not exist");
        h.ok();
        assert!(h.readiness().is_ok());
    }
}
