//! The `Queue` trait, deliveries and the types every implementation shares.

use super::topology::{Exchange, QueueName};
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;

/// The header carrying the reason a message was dead-lettered.
pub const REASON_HEADER: &str = "x-thumbfarm-reason";
/// The header naming the queue a dead-lettered message came from.
pub const ORIGIN_HEADER: &str = "x-thumbfarm-origin-queue";

/// Errors from a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker could not be reached, or the connection broke; retrying helps.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker did not confirm a publish.
    #[error("publish not confirmed: {0}")]
    NotConfirmed(String),
    /// The consumer was closed (shutdown).
    #[error("consumer closed")]
    Closed,
    /// The message could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A message taken from a queue. It must be settled exactly once with
/// [`Delivery::ack`], [`Delivery::retry`] or [`Delivery::dead_letter`]; one
/// dropped unsettled is redelivered when its consumer or connection closes.
pub struct Delivery {
    /// The message body.
    pub body: Vec<u8>,
    /// The routing key it was published with.
    pub routing_key: String,
    /// The queue it came from.
    pub queue: QueueName,
    /// How many times it was delivered before (0 on first delivery).
    pub delivery_count: u32,
    /// Whether the broker marks it as redelivered.
    pub redelivered: bool,
    pub(crate) acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("routing_key", &self.routing_key)
            .field("delivery_count", &self.delivery_count)
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl Delivery {
    /// Done: remove the message from the queue.
    pub async fn ack(self) -> Result<(), QueueError> {
        self.acker.ack().await
    }

    /// Give it back to the queue for another try (counts against the queue's
    /// delivery limit; past it the broker dead-letters it).
    pub async fn retry(self) -> Result<(), QueueError> {
        self.acker.nack_requeue().await
    }

    /// Move it to `thumbfarm.dead` at once, with `reason` in the
    /// [`REASON_HEADER`] header, then remove it from its queue.
    pub async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        let Delivery {
            body,
            routing_key,
            queue,
            acker,
            ..
        } = self;
        acker.dead_letter(body, routing_key, queue, reason).await
    }
}

/// Settles one delivery; implemented by each queue backend.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
    async fn nack_requeue(self: Box<Self>) -> Result<(), QueueError>;
    async fn dead_letter(
        self: Box<Self>,
        body: Vec<u8>,
        routing_key: String,
        queue: QueueName,
        reason: &str,
    ) -> Result<(), QueueError>;
}

/// A stream of deliveries from one queue.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; waits while the queue is empty. `None` when the
    /// consumer was cancelled for good. Backends that reconnect hide broker
    /// outages here (the call waits until the broker is back).
    async fn next(&mut self) -> Option<Delivery>;
}

/// A message received on an event subscription (no settling needed).
#[derive(Debug, Clone)]
pub struct EventMessage {
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// A stream of events from `thumbfarm.events`.
#[async_trait]
pub trait EventStream: Send {
    /// The next event; `None` when the subscription ended for good.
    async fn next(&mut self) -> Option<EventMessage>;
}

/// Depth of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    pub queue: String,
    /// Messages ready for delivery.
    pub ready: u64,
    /// Messages delivered and not yet settled.
    pub unacked: u64,
    /// Consumers attached.
    pub consumers: u32,
}

/// A cluster-wide claim on a name, held by this process until it is
/// released, dropped, or its lease runs out: while it is held, every other
/// [`Queue::claim`] of the same name, in this process or any other on the
/// same broker, answers `None`. The idempotency key of on-demand jobs (one
/// job per miss across API replicas) and of renders (one render of an asset
/// at a time across workers). A holder that dies loses its claims with its
/// broker connection.
pub struct Claim {
    name: String,
    release: Option<Box<dyn ReleaseClaim>>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("name", &self.name).finish()
    }
}

impl Claim {
    pub(crate) fn new(name: &str, release: Box<dyn ReleaseClaim>) -> Self {
        Claim {
            name: name.to_string(),
            release: Some(release),
        }
    }

    /// The claimed name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gives the claim up now (dropping it does the same in the background).
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            release.release().await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            // Outside a runtime the lease ends it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(release.release());
            }
        }
    }
}

/// Gives a claim up; implemented by each queue backend.
#[async_trait]
pub(crate) trait ReleaseClaim: Send + Sync {
    async fn release(self: Box<Self>);
}

/// The messaging side of thumbfarm.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Publishes a JSON body, persistent, and waits for the broker's confirm.
    async fn publish(
        &self,
        exchange: Exchange,
        routing_key: &str,
        body: &[u8],
    ) -> Result<(), QueueError>;

    /// Starts consuming a queue with manual acks and at most `prefetch`
    /// unsettled deliveries.
    async fn consume(
        &self,
        queue: QueueName,
        prefetch: u16,
    ) -> Result<Box<dyn Consumer>, QueueError>;

    /// Subscribes to `thumbfarm.events` with a binding key (`rendered.*`,
    /// `#`): an exclusive, auto-delete queue private to this subscriber.
    async fn subscribe(&self, binding_key: &str) -> Result<Box<dyn EventStream>, QueueError>;

    /// Takes the cluster-wide claim `name` (letters, digits, `._-:`) for
    /// at most `lease`; `Ok(None)` while someone else holds it. A name is
    /// always claimed with the same lease.
    async fn claim(&self, name: &str, lease: Duration) -> Result<Option<Claim>, QueueError>;

    /// Depths of every thumbfarm queue (including `thumbfarm.dead`).
    async fn stats(&self) -> Result<Vec<QueueStats>, QueueError>;

    /// Checks the broker is reachable (for readiness probes).
    async fn ping(&self) -> Result<(), QueueError>;

    /// A short description for logs.
    fn describe(&self) -> String;
}

/// Serializes `msg` as JSON and publishes it.
pub async fn publish_json<T: Serialize + Sync>(
    queue: &dyn Queue,
    exchange: Exchange,
    routing_key: &str,
    msg: &T,
) -> Result<(), QueueError> {
    let body = serde_json::to_vec(msg)?;
    queue.publish(exchange, routing_key, &body).await
}
