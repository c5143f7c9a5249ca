//! Transient or permanent: the one split every piece of work makes (a
//! worker's job, a planner's ingest event, a backfill step), and retrying
//! the transient side with backoff.

use crate::queue::QueueError;
use crate::store::StoreError;
use std::future::Future;
use std::time::{Duration, Instant};

/// Why a piece of work did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Retrying cannot help (malformed message, undecodable or over-limit
    /// original): the message goes to the dead-letter queue.
    #[error("{0}")]
    Permanent(String),
    /// The store or the broker is unavailable: the message goes back to its
    /// queue.
    #[error("{0}")]
    Transient(String),
    /// The store refuses because of thumbfarm's configuration (access
    /// denied, no such bucket): no job can succeed until an operator fixes
    /// it, so the job is neither retried in a loop nor dead-lettered.
    #[error("{0}")]
    Config(String),
}

impl WorkError {
    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            WorkError::Permanent(r) | WorkError::Transient(r) | WorkError::Config(r) => r,
        }
    }
}

impl From<StoreError> for WorkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(_) => WorkError::Config(e.to_string()),
            // A conditional write that lost: trying again reads the new state.
            StoreError::Conflict(_) => WorkError::Transient(e.to_string()),
            e if e.is_transient() => WorkError::Transient(e.to_string()),
            e => WorkError::Permanent(e.to_string()),
        }
    }
}

impl From<QueueError> for WorkError {
    fn from(e: QueueError) -> Self {
        WorkError::Transient(e.to_string())
    }
}

/// Errors that may go away when the same call is made again later.
pub trait Retryable: std::fmt::Display {
    /// Whether retrying may succeed.
    fn is_transient(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}

impl Retryable for QueueError {
    fn is_transient(&self) -> bool {
        matches!(
            self,
            QueueError::Unavailable(_) | QueueError::NotConfirmed(_)
        )
    }
}

impl Retryable for WorkError {
    fn is_transient(&self) -> bool {
        matches!(self, WorkError::Transient(_))
    }
}

/// How long and how often a transient error is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retry while the next attempt would start within this budget.
    pub budget: Duration,
    /// The first delay; it doubles after every attempt.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Retries for up to `budget`, from 250 ms doubling up to 10 s.
    pub fn within(budget: Duration) -> Self {
        Backoff {
            budget,
            first: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

/// Runs `op` until it succeeds, fails for good, or the backoff budget is
/// spent; logs every retry with `what`.
pub async fn with_backoff<T, E, F, Fut>(backoff: Backoff, what: &str, mut op: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + backoff.budget;
    let mut delay = backoff.first;
    loop {
        match op().await {
            Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "unavailable, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn transient_errors_are_retried_within_the_budget() {
        let calls = AtomicU32::new(0);
        let backoff = Backoff {
            budget: Duration::from_secs(5),
            first: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let r: Result<u32, WorkError> = with_backoff(backoff, "test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                Err(WorkError::Transient("down".into()))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r, Ok(3));
        let r: Result<u32, WorkError> = with_backoff(backoff, "test", || async {
            Err(WorkError::Permanent("bad".into()))
        })
        .await;
        assert_eq!(r, Err(WorkError::Permanent("bad".into())));
        let none = Backoff {
            budget: Duration::ZERO,
            ..backoff
        };
        let r: Result<u32, WorkError> = with_backoff(none, "test", || async {
            Err(WorkError::Transient("down".into()))
        })
        .await;
        assert!(r.is_err());
    }

    #[test]
    fn store_and_queue_errors_split() {
        assert!(WorkError::from(StoreError::Unavailable("x".into())).is_transient());
        assert!(!WorkError::from(StoreError::InvalidKey("x".into())).is_transient());
        assert!(WorkError::from(QueueError::Closed).is_transient());
        assert!(matches!(
            WorkError::from(StoreError::Config("denied".into())),
            WorkError::Config(_)
        ));
        let corrupt = StoreError::Corrupt {
            key: "meta/x.json".into(),
            message: "not valid JSON".into(),
        };
        assert!(matches!(WorkError::from(corrupt), WorkError::Permanent(_)));
    }
}
