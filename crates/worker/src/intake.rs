//! The intake loop: takes deliveries from the job queues (on-demand ahead
//! of transcodes ahead of bulk), runs at most `concurrency` at once, and on
//! a stop signal finishes the jobs in hand (up to the grace period). What a
//! delivery becomes is [`settle::handle`]'s business.

use crate::metrics::WorkerMetrics;
use crate::options::{JobKind, WorkerOptions};
use crate::settle::{self, Services};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use thumbfarm_shared::queue::{Delivery, Queue, QueueError, QueueName};
use thumbfarm_shared::store::Store;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

/// Consumes jobs until `shutdown` resolves, then finishes the jobs in hand
/// (up to the grace period) and returns. Unsettled messages are redelivered
/// by the broker.
pub async fn run(
    opts: WorkerOptions,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let concurrency = opts.concurrency.max(1);
    // A job in progress stays unsettled until it is done, so a queue's
    // credit below the job slots would leave slots idle while that queue
    // has work (a backfill on 2 of 4 slots).
    let prefetch = opts
        .prefetch
        .max(u16::try_from(concurrency).unwrap_or(u16::MAX))
        .max(1);
    let grace = Duration::from_secs(opts.grace_seconds);
    let ctx = Arc::new(Services {
        opts,
        store,
        queue: queue.clone(),
        metrics: WorkerMetrics::get(),
    });

    // One forwarding task per queue; the select below prefers on-demand work.
    let renders = ctx.opts.queues.contains(&JobKind::Render);
    if let (Some(children), true) = (ctx.opts.isolation.clone(), renders) {
        // Decoder children start now, not in the first jobs' time.
        tokio::task::spawn_blocking(move || {
            if let Err(e) = children.warm_up(concurrency) {
                warn!(error = %e, "decoder children not started ahead (each job starts one)");
            }
        });
    }
    let transcodes = ctx.opts.queues.contains(&JobKind::Transcode);
    let mut ondemand = forward_if(renders, &queue, QueueName::RenderOnDemand, prefetch).await?;
    let mut bulk = forward_if(renders, &queue, QueueName::RenderBulk, prefetch).await?;
    let mut transcode = forward_if(transcodes, &queue, QueueName::Transcode, prefetch).await?;
    info!(
        concurrency,
        prefetch,
        queues = ?ctx.opts.queues,
        store = %ctx.store.describe(),
        queue = %queue.describe(),
        "worker consuming jobs"
    );

    let slots = Arc::new(Semaphore::new(concurrency));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit?,
        };
        let delivery = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(d) = ondemand.recv() => d,
            Some(d) = transcode.recv() => d,
            Some(d) = bulk.recv() => d,
            else => {
                warn!("all consumers ended");
                break;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ctx.metrics.in_flight.inc();
            settle::handle(&ctx, delivery).await;
            ctx.metrics.in_flight.dec();
            drop(permit);
        });
    }

    info!(
        grace_seconds = grace.as_secs(),
        "stopping: finishing jobs in hand"
    );
    // Stop the forwarders; anything they hold unsettled goes back to the broker.
    ondemand.close();
    bulk.close();
    transcode.close();
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, slots.acquire_many(all)).await {
        Ok(_) => info!("all jobs finished"),
        Err(_) => warn!("grace period over with jobs in hand; the broker will redeliver them"),
    }
    Ok(())
}

/// [`forward`] for a queue this worker consumes; for one it does not, a
/// channel that is already closed (its `select!` branch never fires).
async fn forward_if(
    consumed: bool,
    queue: &Arc<dyn Queue>,
    name: QueueName,
    prefetch: u16,
) -> Result<mpsc::Receiver<Delivery>, QueueError> {
    if consumed {
        forward(Arc::clone(queue), name, prefetch).await
    } else {
        Ok(mpsc::channel(1).1)
    }
}

/// Moves deliveries of one queue into a small channel, so the main loop can
/// choose between queues without cancelling a consumer mid-receive.
async fn forward(
    queue: Arc<dyn Queue>,
    name: QueueName,
    prefetch: u16,
) -> Result<mpsc::Receiver<Delivery>, QueueError> {
    let mut consumer = queue.consume(name, prefetch).await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            if let Err(mpsc::error::SendError(unsent)) = tx.send(delivery).await {
                // Shutting down: hand it straight back.
                let _ = unsent.retry().await;
                break;
            }
        }
        debug!(queue = %name, "consumer ended");
    });
    Ok(rx)
}
