//! Turns per key for the tasks of one process: a task that holds a key's
//! turn is the only one in this process working on that key.
//!
//! [`update_manifest`](crate::manifest::update_manifest) takes a turn so that
//! the jobs of one worker (or the API's writers) that change one manifest at
//! once queue up instead of colliding at the store. Across processes the
//! store's conditional write still decides; within one process no write can
//! be lost even on a store whose condition check is apart from its write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// The turn on one key; the next task's turn starts when this is dropped.
pub(crate) type Turn = OwnedMutexGuard<()>;

/// Keys with a task holding or waiting for their turn. A key is forgotten
/// once nobody holds or waits for it.
#[derive(Default)]
pub(crate) struct KeyTurns {
    keys: Mutex<HashMap<String, Weak<TurnLock<()>>>>,
}

impl KeyTurns {
    /// Waits for `key`'s turn (first come, first served).
    pub(crate) async fn take(&self, key: &str) -> Turn {
        let lock = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.retain(|_, lock| lock.strong_count() > 0);
            match keys.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(TurnLock::new(()));
                    keys.insert(key.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// How many keys are held or waited for.
    #[cfg(test)]
    fn busy(&self) -> usize {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.values().filter(|lock| lock.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_task_at_a_time_per_key_and_keys_apart() {
        let turns = Arc::new(KeyTurns::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (turns, inside, most) = (turns.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = turns.take("meta/a.json").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Another key is not held up by the first.
        let other = tokio::time::timeout(Duration::from_millis(500), turns.take("meta/b.json"))
            .await
            .expect("another key's turn comes at once");
        drop(other);
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two tasks held one key");
        assert_eq!(turns.busy(), 0, "keys are forgotten once free");
    }
}
