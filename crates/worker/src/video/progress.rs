//! Progress of a long transcode, in 10 % steps.

/// Sources shorter than this publish no progress events.
const PROGRESS_MIN_SECONDS: f64 = 10.0;

/// Whether a source of `duration` seconds gets progress events.
pub fn publishes_progress(duration: f64) -> bool {
    duration >= PROGRESS_MIN_SECONDS
}

/// Calls `progress` for every 10 % step reached by `done` of `total` seconds.
pub(crate) struct Progress {
    next: u8,
    total: f64,
}

impl Progress {
    pub(crate) fn new(total: f64) -> Self {
        Progress { next: 10, total }
    }

    pub(crate) fn update(&mut self, done: f64, cb: &mut dyn FnMut(u8)) {
        if self.total <= 0.0 {
            return;
        }
        let percent = (done / self.total * 100.0).clamp(0.0, 100.0);
        while self.next < 100 && percent >= f64::from(self.next) {
            cb(self.next);
            self.next += 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_steps() {
        let mut seen = Vec::new();
        let mut p = Progress::new(10.0);
        p.update(0.5, &mut |x| seen.push(x));
        p.update(3.5, &mut |x| seen.push(x));
        p.update(10.0, &mut |x| seen.push(x));
        assert_eq!(seen, vec![10, 20, 30, 40, 50, 60, 70, 80, 90]);
        assert!(publishes_progress(10.0) && !publishes_progress(9.9));
    }
}
