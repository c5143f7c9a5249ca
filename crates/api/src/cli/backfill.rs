//! `thumbfarm-api backfill` from the command line.

use crate::background::backfill::{self, BackfillReport};
use crate::config::BackfillArgs;

/// `thumbfarm-api backfill`: opens the store and the queue and runs.
pub async fn run(args: &BackfillArgs) -> anyhow::Result<BackfillReport> {
    let opts = args.options()?;
    let store = args.store.open().await?;
    let queue = args.queue.open().await?;
    if !args.queue.uses_amqp() && !opts.dry_run {
        tracing::warn!("no --amqp-url: jobs go to an in-process queue that ends with this command; did you mean to set THUMBFARM_AMQP_URL?");
    }
    tracing::info!(
        store = %store.describe(),
        queue = %queue.describe(),
        sizes = ?opts.sizes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        dry_run = opts.dry_run,
        rate = opts.rate,
        "backfill starting"
    );
    Ok(backfill::run(store.as_ref(), queue.as_ref(), &opts).await?)
}
