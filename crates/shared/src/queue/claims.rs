//! The claims this process holds ([`super::Claim`]): the whole claim for the
//! in-process queue, and the in-process half for AMQP (a broker's exclusive
//! queue excludes other connections only, not this process's own tasks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Names claimed in this process, each with its holder's ticket and expiry.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalClaims {
    held: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl LocalClaims {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        // Every operation is one insert or remove: a poisoned map is consistent.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `name` for `lease` unless a live holder has it; the ticket to
    /// give it back with.
    pub(crate) fn take(&self, name: &str, lease: Duration) -> Option<u64> {
        let now = Instant::now();
        let mut held = self.lock();
        if held.get(name).is_some_and(|(_, until)| *until > now) {
            return None;
        }
        let ticket = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        held.insert(name.to_string(), (ticket, now + lease));
        if held.len() > 4096 {
            held.retain(|_, (_, until)| *until > now);
        }
        Some(ticket)
    }

    /// Gives `name` back, if `ticket` still holds it (not once its lease ran
    /// out and another holder took it).
    pub(crate) fn give_back(&self, name: &str, ticket: u64) {
        let mut held = self.lock();
        if held.get(name).is_some_and(|(t, _)| *t == ticket) {
            held.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_until_given_back_or_expired() {
        let claims = LocalClaims::default();
        let a = claims.take("x", Duration::from_secs(60)).expect("free");
        assert!(claims.take("x", Duration::from_secs(60)).is_none());
        assert!(claims.take("y", Duration::from_secs(60)).is_some());
        claims.give_back("x", a + 100);
        assert!(
            claims.take("x", Duration::from_secs(60)).is_none(),
            "not its ticket"
        );
        claims.give_back("x", a);
        let b = claims
            .take("x", Duration::from_millis(1))
            .expect("given back");
        std::thread::sleep(Duration::from_millis(5));
        let c = claims.take("x", Duration::from_secs(60)).expect("expired");
        claims.give_back("x", b);
        assert!(
            claims.take("x", Duration::from_secs(60)).is_none(),
            "c holds it"
        );
        claims.give_back("x", c);
    }
}
