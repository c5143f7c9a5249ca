//! [`AppState`]: everything a request handler needs (store, queue, token
//! policy, limits, options, metrics and the services behind the routes).

use crate::config::ApiOptions;
use crate::metrics::Metrics;
use crate::planning::jobs::Pregeneration;
use crate::services::hot_cache::HotCache;
use crate::services::ondemand::Coordinator;
use crate::services::status_board::StatusBoard;
use std::sync::Arc;
use thumbfarm_shared::queue::Queue;
use thumbfarm_shared::sizes::SizeLimits;
use thumbfarm_shared::store::Store;
use thumbfarm_shared::tokens::TokenPolicy;
use thumbfarm_shared::KeyLayout;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    tokens: TokenPolicy,
    limits: SizeLimits,
    pregen: Pregeneration,
    layout: KeyLayout,
    options: ApiOptions,
    metrics: Arc<Metrics>,
    coordinator: Coordinator,
    cache: HotCache,
    status: StatusBoard,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .field("queue", &self.queue.describe())
            .field("token_mode", &self.tokens.mode())
            .field("limits", &self.limits)
            .field("layout", &self.layout)
            .field("options", &self.options)
            .finish()
    }
}

impl AppState {
    /// The state of one API replica over any store and queue.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        tokens: TokenPolicy,
        limits: SizeLimits,
        layout: KeyLayout,
        options: ApiOptions,
    ) -> Self {
        // The metric names are literals checked by the unit tests, so
        // registering them cannot fail at run time.
        let metrics = Arc::new(Metrics::new().expect("static metric definitions are valid"));
        let pregen = Pregeneration::new(limits, &options.pregenerate_formats);
        let coordinator = Coordinator::new(
            Arc::clone(&queue),
            pregen.clone(),
            options.wait_timeout,
            Arc::clone(&metrics),
        );
        let cache = HotCache::new(options.cache_bytes, options.cache_ttl);
        let status = StatusBoard::new(Arc::clone(&queue), Arc::clone(&metrics));
        AppState {
            inner: Arc::new(Inner {
                store,
                queue,
                tokens,
                limits,
                pregen,
                layout,
                options,
                metrics,
                coordinator,
                cache,
                status,
            }),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.inner.queue
    }

    /// The token policy.
    pub fn tokens(&self) -> &TokenPolicy {
        &self.inner.tokens
    }

    /// The size limits.
    pub fn limits(&self) -> &SizeLimits {
        &self.inner.limits
    }

    /// What ingest pre-generates (sizes and formats).
    pub fn pregeneration(&self) -> &Pregeneration {
        &self.inner.pregen
    }

    /// The key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.inner.layout
    }

    /// The API options.
    pub fn options(&self) -> &ApiOptions {
        &self.inner.options
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The on-demand coordinator.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    /// The in-memory cache of hot thumbnails and manifests.
    pub fn cache(&self) -> &HotCache {
        &self.inner.cache
    }

    /// The status page's recent events and rates.
    pub fn status(&self) -> &StatusBoard {
        &self.inner.status
    }
}
