//! One render of an asset at a time across every worker: a render job takes
//! the asset's cluster-wide claim ([`Queue::claim`]) before it looks at what
//! is missing, and a job that finds the claim held (a duplicate published by
//! another API replica, a redelivery, an ingest racing an on-demand miss)
//! waits for it to be given back, then finds the outputs stored and skips.

use super::context::JobContext;
use std::time::{Duration, Instant};
use thumbfarm_shared::queue::{Claim, Queue};
use thumbfarm_shared::AssetHash;

/// How often a waiting job asks for the claim again, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_millis(500);

/// The claim name of renders of `hash`.
pub fn claim_name(hash: &AssetHash) -> String {
    format!("render.{hash}")
}

/// Takes the render claim of `hash`, waiting while another job holds it,
/// for up to the render lease. `None` when the job has no queue (tools,
/// tests), the broker does not answer, or the wait ran out: the job then
/// renders anyway (a duplicate render is wasted work, never wrong output).
pub async fn hold(ctx: &JobContext<'_>, hash: &AssetHash) -> Option<Claim> {
    let queue: &dyn Queue = ctx.queue?;
    let lease = ctx.opts.render_lease;
    let name = claim_name(hash);
    let started = Instant::now();
    let mut poll = POLL_FIRST;
    let mut counted = false;
    loop {
        match queue.claim(&name, lease).await {
            Ok(Some(claim)) => {
                if counted {
                    ctx.metrics
                        .claim_wait_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                return Some(claim);
            }
            Ok(None) if started.elapsed() < lease => {
                if !counted {
                    counted = true;
                    ctx.metrics.claim_waits.inc();
                    tracing::debug!(%hash, "asset being rendered by another job; waiting for it");
                }
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(POLL_MAX);
            }
            Ok(None) => {
                tracing::warn!(%hash, waited_s = started.elapsed().as_secs(), "render claim still held after its lease; rendering anyway");
                return None;
            }
            Err(e) => {
                tracing::warn!(%hash, error = %e, "render claim unavailable; rendering without it");
                return None;
            }
        }
    }
}
