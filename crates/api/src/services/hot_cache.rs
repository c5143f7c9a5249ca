//! An in-memory cache of hot thumbnails and manifests, so that a cached
//! thumbnail is answered without touching the store.
//!
//! Thumbnails live under content-addressed keys and are written whole, so an
//! entry can only go stale when a job re-renders with `force`; entries expire
//! after a time-to-live to bound that. Only manifests whose pixel size is
//! known are cached (nothing the thumbnail route reads from them changes
//! after that). Eviction is first-in first-out by bytes.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thumbfarm_shared::manifest::Manifest;
use thumbfarm_shared::store::ObjectMeta;
use thumbfarm_shared::AssetHash;

/// Largest thumbnail body kept in memory.
pub const MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// Rough size charged per cached manifest.
const MANIFEST_WEIGHT: u64 = 2048;

/// A thumbnail held in memory.
#[derive(Clone, Debug)]
pub struct CachedThumb {
    /// Its store metadata (ETag, size, modification time).
    pub meta: Arc<ObjectMeta>,
    /// The whole body.
    pub body: Bytes,
}

struct Entry<V> {
    value: V,
    weight: u64,
    expires: Instant,
}

/// A bounded map with first-in first-out eviction by weight and a TTL.
struct Bounded<K, V> {
    map: HashMap<K, Entry<V>>,
    order: VecDeque<K>,
    weight: u64,
    capacity: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: u64) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            capacity,
        }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        match self.map.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(old) = self.map.remove(key) {
            self.weight -= old.weight;
        }
    }

    fn insert(&mut self, key: K, value: V, weight: u64, expires: Instant) {
        if weight > self.capacity {
            return;
        }
        self.remove(&key);
        while self.weight + weight > self.capacity {
            match self.order.pop_front() {
                Some(old) => self.remove(&old),
                None => break,
            }
        }
        // Keys removed early stay in `order` until they reach the front;
        // drop such leftovers when the queue grows well past the map.
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
        self.order.push_back(key.clone());
        self.weight += weight;
        self.map.insert(
            key,
            Entry {
                value,
                weight,
                expires,
            },
        );
    }
}

/// The API's hot cache (thumbnails by store key, manifests by hash).
pub struct HotCache {
    thumbs: Mutex<Bounded<String, CachedThumb>>,
    manifests: Mutex<Bounded<AssetHash, Arc<Manifest>>>,
    ttl: Duration,
    enabled: bool,
}

impl std::fmt::Debug for HotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCache")
            .field("enabled", &self.enabled)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl HotCache {
    /// A cache of at most `bytes` of thumbnails (and a sixteenth of that for
    /// manifests); 0 disables it.
    pub fn new(bytes: u64, ttl: Duration) -> Self {
        HotCache {
            thumbs: Mutex::new(Bounded::new(bytes)),
            manifests: Mutex::new(Bounded::new(bytes / 16)),
            ttl,
            enabled: bytes > 0 && !ttl.is_zero(),
        }
    }

    /// A cached thumbnail.
    pub fn thumb(&self, key: &str) -> Option<CachedThumb> {
        if !self.enabled {
            return None;
        }
        let mut thumbs = self.thumbs.lock().unwrap_or_else(|e| e.into_inner());
        thumbs.get(&key.to_string(), Instant::now())
    }

    /// Keeps a thumbnail (ignored when over [`MAX_ENTRY_BYTES`]).
    pub fn put_thumb(&self, key: &str, thumb: CachedThumb) {
        let weight = thumb.body.len() as u64 + key.len() as u64 + 256;
        if !self.enabled || thumb.body.len() as u64 > MAX_ENTRY_BYTES {
            return;
        }
        let expires = Instant::now() + self.ttl;
        let mut thumbs = self.thumbs.lock().unwrap_or_else(|e| e.into_inner());
        thumbs.insert(key.to_string(), thumb, weight, expires);
    }

    /// A cached manifest.
    pub fn manifest(&self, hash: &AssetHash) -> Option<Arc<Manifest>> {
        if !self.enabled {
            return None;
        }
        let mut manifests = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        manifests.get(hash, Instant::now())
    }

    /// Drops the cached manifest of `hash` (it changed: a failure was
    /// recorded or cleared).
    pub fn forget_manifest(&self, hash: &AssetHash) {
        let mut manifests = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        manifests.remove(hash);
    }

    /// Keeps a manifest whose pixel size is known.
    pub fn put_manifest(&self, manifest: Arc<Manifest>) {
        if !self.enabled || !manifest.has_dimensions() {
            return;
        }
        let expires = Instant::now() + self.ttl;
        let mut manifests = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        manifests.insert(manifest.hash, manifest, MANIFEST_WEIGHT, expires);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(n: usize) -> CachedThumb {
        CachedThumb {
            meta: Arc::new(ObjectMeta {
                key: "k".into(),
                size: n as u64,
                etag: "e".into(),
                last_modified: None,
                content_type: None,
            }),
            body: Bytes::from(vec![0u8; n]),
        }
    }

    #[test]
    fn evicts_oldest_first_by_bytes() {
        let c = HotCache::new(3 * 1300, Duration::from_secs(60));
        for i in 0..4 {
            c.put_thumb(&format!("k{i}"), thumb(1000));
        }
        assert!(c.thumb("k0").is_none(), "oldest evicted");
        assert!(c.thumb("k3").is_some());
        assert!(c.thumb("k1").is_some());
    }

    #[test]
    fn expires_and_skips_large_or_disabled() {
        let c = HotCache::new(10 << 20, Duration::from_millis(1));
        c.put_thumb("a", thumb(10));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.thumb("a").is_none(), "expired");
        let c = HotCache::new(10 << 20, Duration::from_secs(60));
        c.put_thumb("big", thumb(MAX_ENTRY_BYTES as usize + 1));
        assert!(c.thumb("big").is_none());
        let off = HotCache::new(0, Duration::from_secs(60));
        off.put_thumb("a", thumb(10));
        assert!(off.thumb("a").is_none());
    }
}
