//! RabbitMQ through `lapin`: the topology of docs/contracts.md §5, publisher
//! confirms, quorum-queue redelivery counts, dead-lettering with a reason
//! header, and reconnection with backoff that consumers and event streams
//! ride through.
//!
//! One connection is shared by everything the adapter does. It is kept
//! behind a lock with a generation number; whoever finds it broken reconnects
//! (exponential backoff 100 ms → 5 s, forever), re-declares the topology and
//! swaps it in. Publishing uses one confirm-mode channel on it; every
//! consumer and event stream has a channel of its own, reopened on the
//! current connection when its stream breaks.

use super::claims::LocalClaims;
use super::interface::*;
use super::topology::{Exchange, QueueName};
use async_trait::async_trait;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, RwLock};

/// How long a publish (or `consume`, `subscribe`, `stats`) waits for the
/// broker to come back before giving up with [`QueueError::Unavailable`].
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`AmqpQueue::connect`] keeps trying before giving up.
const INITIAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Queue::ping`] waits for a connection.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// One TCP + AMQP handshake attempt.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// One ack, nack or confirm.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Longest dead-letter reason header, in bytes.
const MAX_REASON_BYTES: usize = 1000;
/// How long a claim waits for a connection before giving up.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(5);
/// Claims are exclusive queues named with this prefix.
const CLAIM_QUEUE_PREFIX: &str = "thumbfarm.claim.";
/// The quorum-queue header counting earlier deliveries.
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// `amqp://user:pass@host:5672/vhost`.
    pub url: String,
    /// Deliveries of one message before the broker dead-letters it
    /// (`x-delivery-limit` of the work queues; fixed when they are declared).
    pub delivery_limit: u32,
}

/// RabbitMQ through lapin, reconnecting with backoff.
pub struct AmqpQueue {
    shared: Arc<Shared>,
}

/// One live connection and its publisher channel.
struct Live {
    connection: Arc<Connection>,
    publisher: Channel,
    generation: u64,
}

impl Live {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// What every handle of the adapter shares.
struct Shared {
    settings: AmqpSettings,
    connection_name: String,
    live: RwLock<Option<Arc<Live>>>,
    /// Serializes reconnects so one outage makes one new connection.
    reconnecting: Mutex<()>,
    generation: AtomicU64,
    last_error: std::sync::Mutex<String>,
    /// Claims held by this process (the broker does not keep one
    /// connection's users apart).
    claims: LocalClaims,
}

impl AmqpQueue {
    /// Connects and declares the topology (idempotently). Retries for a few
    /// seconds, then fails with [`QueueError::Unavailable`].
    pub async fn connect(settings: AmqpSettings) -> Result<Self, QueueError> {
        let connection_name = format!(
            "thumbfarm-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let shared = Arc::new(Shared {
            settings,
            connection_name,
            live: RwLock::new(None),
            reconnecting: Mutex::new(()),
            generation: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(String::new()),
            claims: LocalClaims::default(),
        });
        shared.live_within(INITIAL_CONNECT_TIMEOUT).await?;
        Ok(AmqpQueue { shared })
    }

    /// The `connection_name` client property of this adapter's connection,
    /// as `rabbitmqctl list_connections client_properties` shows it.
    pub fn connection_name(&self) -> &str {
        &self.shared.connection_name
    }
}

impl Shared {
    fn note_error(&self, error: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error.to_string();
        }
    }

    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    fn unavailable(&self, what: &str) -> QueueError {
        let last = self.last_error();
        if last.is_empty() {
            QueueError::Unavailable(format!("{what}: broker not reachable"))
        } else {
            QueueError::Unavailable(format!("{what}: {last}"))
        }
    }

    async fn current(&self) -> Option<Arc<Live>> {
        self.live
            .read()
            .await
            .as_ref()
            .filter(|l| l.healthy())
            .cloned()
    }

    /// The live connection, reconnecting (forever) if there is none.
    async fn live(&self) -> Arc<Live> {
        if let Some(live) = self.current().await {
            return live;
        }
        let _turn = self.reconnecting.lock().await;
        if let Some(live) = self.current().await {
            return live;
        }
        // The connection may be fine with only the publisher channel broken
        // (a channel-level error): then a new channel is enough.
        let stale = self.live.read().await.clone();
        let had_connection = stale.is_some();
        if let Some(stale) = stale.filter(|l| l.connection.status().connected()) {
            match open_publisher(&stale.connection).await {
                Ok(publisher) => {
                    let live = Arc::new(Live {
                        connection: stale.connection.clone(),
                        publisher,
                        generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
                    });
                    *self.live.write().await = Some(live.clone());
                    return live;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "amqp: reopening the publisher channel failed; reconnecting");
                }
            }
        }
        let mut delay = BACKOFF_MIN;
        let mut failures = 0u32;
        loop {
            match self.open().await {
                Ok(live) => {
                    if failures > 0 || had_connection {
                        tracing::info!(
                            connection = %self.connection_name,
                            generation = live.generation,
                            "amqp: connected again"
                        );
                    }
                    *self.live.write().await = Some(live.clone());
                    return live;
                }
                Err(e) => {
                    failures += 1;
                    self.note_error(&e);
                    tracing::warn!(
                        error = %e,
                        retry_in_ms = delay.as_millis() as u64,
                        attempt = failures,
                        "amqp: broker unreachable; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// [`Shared::live`] with a time limit.
    async fn live_within(&self, limit: Duration) -> Result<Arc<Live>, QueueError> {
        match tokio::time::timeout(limit, self.live()).await {
            Ok(live) => Ok(live),
            Err(_) => Err(self.unavailable(&format!("no connection within {limit:?}"))),
        }
    }

    /// Drops the connection of `generation` (found broken) so the next user
    /// reconnects. Its channels keep it alive until they are gone.
    async fn invalidate(&self, generation: u64) {
        let mut live = self.live.write().await;
        if live.as_ref().is_some_and(|l| l.generation == generation) {
            *live = None;
        }
    }

    /// One connection attempt: handshake, topology, publisher channel.
    async fn open(&self) -> Result<Arc<Live>, String> {
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
            .with_connection_name(LongString::from(self.connection_name.clone()));
        let connection = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            Connection::connect(&self.settings.url, properties),
        )
        .await
        .map_err(|_| format!("connecting timed out after {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("connecting: {e}"))?;
        let name = self.connection_name.clone();
        connection.on_error(move |e| {
            tracing::warn!(connection = %name, error = %e, "amqp: connection error");
        });
        let setup = async {
            let channel = connection.create_channel().await?;
            declare_topology(&channel, self.settings.delivery_limit).await?;
            let _ = channel.close(200, "topology declared").await;
            open_publisher(&connection).await
        };
        match setup.await {
            Ok(publisher) => Ok(Arc::new(Live {
                connection: Arc::new(connection),
                publisher,
                generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
            })),
            Err(e) => {
                let _ = connection.close(200, "setup failed").await;
                Err(format!("declaring the topology: {e}"))
            }
        }
    }

    /// Publishes with confirms, reconnecting while the broker is away, up to
    /// [`OPERATION_TIMEOUT`].
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: Option<FieldTable>,
    ) -> Result<(), QueueError> {
        let attempt = async {
            loop {
                let live = self.live().await;
                match publish_confirmed(
                    &live.publisher,
                    exchange,
                    routing_key,
                    body,
                    headers.clone(),
                )
                .await
                {
                    Ok(()) => return Ok(()),
                    Err(PublishError::Nack) => {
                        return Err(QueueError::NotConfirmed(format!(
                            "broker nacked the publish to {exchange} ({routing_key})"
                        )))
                    }
                    Err(PublishError::Broken(e)) => {
                        self.note_error(&e);
                        tracing::warn!(
                            exchange,
                            routing_key,
                            error = %e,
                            "amqp: publish failed; retrying on a fresh channel"
                        );
                        self.invalidate(live.generation).await;
                        tokio::time::sleep(BACKOFF_MIN).await;
                    }
                }
            }
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.unavailable(&format!("publish to {exchange} timed out"))),
        }
    }
}

enum PublishError {
    Nack,
    Broken(String),
}

async fn open_publisher(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: Option<FieldTable>,
) -> Result<(), PublishError> {
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"));
    if let Some(headers) = headers {
        properties = properties.with_headers(headers);
    }
    let confirm = async {
        channel
            .basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await
    };
    match tokio::time::timeout(SETTLE_TIMEOUT, confirm).await {
        Err(_) => Err(PublishError::Broken(format!(
            "no confirm within {SETTLE_TIMEOUT:?}"
        ))),
        Ok(Err(e)) => Err(PublishError::Broken(e.to_string())),
        Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nack),
        Ok(Ok(Confirmation::Ack(_))) => Ok(()),
        // The channel is always in confirm mode; treat this as broken.
        Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::Broken(
            "channel not in confirm mode".to_string(),
        )),
    }
}

/// The arguments a work queue (or the dead queue) is declared with.
fn queue_arguments(queue: QueueName, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if queue.has_dead_letter() {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(Exchange::DeadLetter.name().into()),
        );
    }
    args
}

fn exchange_kind(exchange: Exchange) -> ExchangeKind {
    match exchange {
        Exchange::Jobs => ExchangeKind::Direct,
        Exchange::Events | Exchange::Ingest => ExchangeKind::Topic,
        Exchange::DeadLetter => ExchangeKind::Fanout,
    }
}

/// Declares docs/contracts.md §5's exchanges, queues and bindings (idempotent).
async fn declare_topology(channel: &Channel, delivery_limit: u32) -> Result<(), lapin::Error> {
    for exchange in Exchange::ALL {
        channel
            .exchange_declare(
                exchange.name(),
                exchange_kind(exchange),
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    for queue in QueueName::ALL {
        channel
            .queue_declare(
                queue.name(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                queue_arguments(queue, delivery_limit),
            )
            .await?;
        let (exchange, key) = queue.binding();
        channel
            .queue_bind(
                queue.name(),
                exchange.name(),
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// `x-delivery-count` of a quorum-queue delivery (absent: first delivery).
fn delivery_count(properties: &BasicProperties) -> u32 {
    let Some(headers) = properties.headers() else {
        return 0;
    };
    let count: i64 = match headers.inner().get(DELIVERY_COUNT_HEADER) {
        Some(AMQPValue::ShortShortInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortShortUInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortUInt(v)) => i64::from(*v),
        Some(AMQPValue::LongInt(v)) => i64::from(*v),
        Some(AMQPValue::LongUInt(v)) => i64::from(*v),
        Some(AMQPValue::LongLongInt(v)) => *v,
        _ => 0,
    };
    u32::try_from(count.max(0)).unwrap_or(u32::MAX)
}

/// `reason` cut to at most [`MAX_REASON_BYTES`] on a character boundary.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

fn lapin_unavailable(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("{what}: {e}"))
}

/// A consumer channel and its lapin consumer.
struct Subscription {
    channel: Channel,
    consumer: lapin::Consumer,
}

async fn open_consumer(
    live: &Live,
    queue: QueueName,
    prefetch: u16,
) -> Result<Subscription, lapin::Error> {
    let channel = live.connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!(
        "thumbfarm-{}-{}",
        queue.name(),
        uuid::Uuid::new_v4().simple()
    );
    let consumer = channel
        .basic_consume(
            queue.name(),
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(Subscription { channel, consumer })
}

async fn open_events(live: &Live, binding_key: &str) -> Result<Subscription, lapin::Error> {
    let channel = live.connection.create_channel().await?;
    let mut args = FieldTable::default();
    // A private, transient queue: classic even where the default type is quorum.
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await?;
    channel
        .queue_bind(
            queue.name().as_str(),
            Exchange::Events.name(),
            binding_key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            queue.name().as_str(),
            &format!("thumbfarm-events-{}", uuid::Uuid::new_v4().simple()),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(Subscription { channel, consumer })
}

/// What a consumer (work queue or event stream) subscribes to.
#[derive(Clone)]
enum Target {
    Queue { queue: QueueName, prefetch: u16 },
    Events { binding_key: String },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Queue { queue, .. } => queue.name().to_string(),
            Target::Events { binding_key } => format!("events {binding_key}"),
        }
    }

    async fn open(&self, live: &Live) -> Result<Subscription, lapin::Error> {
        match self {
            Target::Queue { queue, prefetch } => open_consumer(live, *queue, *prefetch).await,
            Target::Events { binding_key } => open_events(live, binding_key).await,
        }
    }
}

/// A subscription that reopens itself on the current connection when its
/// stream breaks.
struct Resubscribing {
    shared: Arc<Shared>,
    target: Target,
    current: Option<Subscription>,
}

impl Resubscribing {
    /// Opens the first subscription, waiting at most [`OPERATION_TIMEOUT`].
    async fn start(shared: Arc<Shared>, target: Target) -> Result<Self, QueueError> {
        let open = async {
            loop {
                let live = shared.live().await;
                match target.open(&live).await {
                    Ok(sub) => return sub,
                    Err(e) => {
                        shared.note_error(&e.to_string());
                        tracing::warn!(target = %target.describe(), error = %e, "amqp: subscribing failed; retrying");
                        shared.invalidate(live.generation).await;
                        tokio::time::sleep(BACKOFF_MIN).await;
                    }
                }
            }
        };
        let current = match tokio::time::timeout(OPERATION_TIMEOUT, open).await {
            Ok(sub) => sub,
            Err(_) => {
                return Err(shared.unavailable(&format!("subscribing to {}", target.describe())))
            }
        };
        Ok(Resubscribing {
            shared,
            target,
            current: Some(current),
        })
    }

    /// The next message, resubscribing (with backoff, forever) across outages.
    async fn next(&mut self) -> (Channel, lapin::message::Delivery) {
        let mut delay = BACKOFF_MIN;
        loop {
            let sub = match self.current.as_mut() {
                Some(sub) => sub,
                None => {
                    let live = self.shared.live().await;
                    match self.target.open(&live).await {
                        Ok(sub) => {
                            tracing::info!(target = %self.target.describe(), "amqp: consuming again");
                            delay = BACKOFF_MIN;
                            self.current.insert(sub)
                        }
                        Err(e) => {
                            self.shared.note_error(&e.to_string());
                            tracing::warn!(
                                target = %self.target.describe(),
                                error = %e,
                                retry_in_ms = delay.as_millis() as u64,
                                "amqp: resubscribing failed; retrying"
                            );
                            self.shared.invalidate(live.generation).await;
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(BACKOFF_MAX);
                            continue;
                        }
                    }
                }
            };
            match sub.consumer.next().await {
                Some(Ok(delivery)) => return (sub.channel.clone(), delivery),
                Some(Err(e)) => {
                    tracing::warn!(target = %self.target.describe(), error = %e, "amqp: consumer lost; resubscribing");
                    self.current = None;
                }
                None => {
                    tracing::warn!(target = %self.target.describe(), "amqp: consumer cancelled by the broker; resubscribing");
                    self.current = None;
                }
            }
        }
    }
}

/// A work-queue consumer (see [`Consumer`]).
struct AmqpConsumer {
    queue: QueueName,
    inner: Resubscribing,
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        let (channel, delivery) = self.inner.next().await;
        Some(Delivery {
            delivery_count: delivery_count(&delivery.properties),
            redelivered: delivery.redelivered,
            routing_key: delivery.routing_key.as_str().to_string(),
            queue: self.queue,
            acker: Box::new(AmqpAcker {
                shared: self.inner.shared.clone(),
                channel,
                acker: delivery.acker,
            }),
            body: delivery.data,
        })
    }
}

/// An event stream (see [`EventStream`]).
struct AmqpEvents {
    inner: Resubscribing,
}

#[async_trait]
impl EventStream for AmqpEvents {
    async fn next(&mut self) -> Option<EventMessage> {
        let (_channel, delivery) = self.inner.next().await;
        Some(EventMessage {
            routing_key: delivery.routing_key.as_str().to_string(),
            body: delivery.data,
        })
    }
}

/// Settles one delivery on the channel it came on. Holding the channel
/// keeps it open until the delivery is settled (or dropped: then the
/// channel closes and the broker redelivers).
struct AmqpAcker {
    shared: Arc<Shared>,
    channel: Channel,
    acker: lapin::acker::Acker,
}

impl AmqpAcker {
    fn check_open(&self) -> Result<(), QueueError> {
        if self.channel.status().connected() {
            Ok(())
        } else {
            Err(QueueError::Unavailable(
                "the delivery's channel is closed (the broker will redeliver it)".to_string(),
            ))
        }
    }

    async fn settle<F>(&self, what: &str, op: F) -> Result<(), QueueError>
    where
        F: std::future::Future<Output = Result<(), lapin::Error>> + Send,
    {
        self.check_open()?;
        match tokio::time::timeout(SETTLE_TIMEOUT, op).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(lapin_unavailable(what, e)),
            Err(_) => Err(QueueError::Unavailable(format!(
                "{what}: timed out after {SETTLE_TIMEOUT:?}"
            ))),
        }
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        self.settle("ack", self.acker.ack(BasicAckOptions::default()))
            .await
    }

    async fn nack_requeue(self: Box<Self>) -> Result<(), QueueError> {
        self.settle(
            "nack",
            self.acker.nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            }),
        )
        .await
    }

    async fn dead_letter(
        self: Box<Self>,
        body: Vec<u8>,
        routing_key: String,
        queue: QueueName,
        reason: &str,
    ) -> Result<(), QueueError> {
        // On a dead channel the broker redelivers the original anyway; do not
        // add a copy to the dead queue.
        self.check_open()?;
        let mut headers = FieldTable::default();
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(truncate_reason(reason).into()),
        );
        headers.insert(
            ORIGIN_HEADER.into(),
            AMQPValue::LongString(queue.name().into()),
        );
        self.shared
            .publish(
                Exchange::DeadLetter.name(),
                &routing_key,
                &body,
                Some(headers),
            )
            .await?;
        tracing::info!(queue = %queue, routing_key, reason = truncate_reason(reason), "amqp: dead-lettered");
        self.settle(
            "ack after dead-lettering",
            self.acker.ack(BasicAckOptions::default()),
        )
        .await
    }
}

#[async_trait]
impl Queue for AmqpQueue {
    async fn publish(
        &self,
        exchange: Exchange,
        routing_key: &str,
        body: &[u8],
    ) -> Result<(), QueueError> {
        self.shared
            .publish(exchange.name(), routing_key, body, None)
            .await
    }

    async fn consume(
        &self,
        queue: QueueName,
        prefetch: u16,
    ) -> Result<Box<dyn Consumer>, QueueError> {
        let inner = Resubscribing::start(
            self.shared.clone(),
            Target::Queue {
                queue,
                prefetch: prefetch.max(1),
            },
        )
        .await?;
        Ok(Box::new(AmqpConsumer { queue, inner }))
    }

    async fn subscribe(&self, binding_key: &str) -> Result<Box<dyn EventStream>, QueueError> {
        let inner = Resubscribing::start(
            self.shared.clone(),
            Target::Events {
                binding_key: binding_key.to_string(),
            },
        )
        .await?;
        Ok(Box::new(AmqpEvents { inner }))
    }

    async fn claim(&self, name: &str, lease: Duration) -> Result<Option<Claim>, QueueError> {
        let Some(ticket) = self.shared.claims.take(name, lease) else {
            return Ok(None);
        };
        let queue = claim_queue(name);
        match self.shared.declare_claim(&queue, lease).await {
            Ok(Some(owner)) => {
                let release = AmqpRelease {
                    shared: self.shared.clone(),
                    name: name.to_string(),
                    queue,
                    ticket,
                    owner,
                };
                Ok(Some(Claim::new(name, Box::new(release))))
            }
            Ok(None) => {
                self.shared.claims.give_back(name, ticket);
                Ok(None)
            }
            Err(e) => {
                self.shared.claims.give_back(name, ticket);
                Err(e)
            }
        }
    }

    async fn stats(&self) -> Result<Vec<QueueStats>, QueueError> {
        let live = self.shared.live_within(OPERATION_TIMEOUT).await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(|e| lapin_unavailable("stats channel", e))?;
        let mut stats = Vec::with_capacity(QueueName::ALL.len());
        for queue in QueueName::ALL {
            let declared = channel
                .queue_declare(
                    queue.name(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| lapin_unavailable(&format!("passive declare of {queue}"), e))?;
            stats.push(QueueStats {
                queue: queue.name().to_string(),
                ready: u64::from(declared.message_count()),
                // Not available over AMQP 0-9-1 (only the management API has it).
                unacked: 0,
                consumers: declared.consumer_count(),
            });
        }
        let _ = channel.close(200, "stats done").await;
        Ok(stats)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let live = self.shared.live_within(PING_TIMEOUT).await?;
        if live.healthy() {
            Ok(())
        } else {
            Err(self.shared.unavailable("ping"))
        }
    }

    fn describe(&self) -> String {
        format!(
            "amqp {} (delivery limit {})",
            redact_url(&self.shared.settings.url),
            self.shared.settings.delivery_limit
        )
    }
}

/// The broker queue that stands for the claim `name`.
fn claim_queue(name: &str) -> String {
    format!("{CLAIM_QUEUE_PREFIX}{name}")
}

/// The AMQP reply code of an exclusive queue owned by another connection.
const RESOURCE_LOCKED: u16 = 405;

impl Shared {
    /// Declares the exclusive queue `queue` (the claim) expiring after
    /// `lease`: the connection that owns it, or `None` when another
    /// connection owns it already. Each attempt uses a channel
    /// of its own, since the broker closes the channel of a refused declare.
    async fn declare_claim(
        &self,
        queue: &str,
        lease: Duration,
    ) -> Result<Option<std::sync::Weak<Connection>>, QueueError> {
        let live = self.live_within(CLAIM_TIMEOUT).await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(|e| lapin_unavailable("claim channel", e))?;
        let mut args = FieldTable::default();
        let millis = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
        let declared = channel
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    exclusive: true,
                    durable: false,
                    auto_delete: false,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await;
        match declared {
            Ok(_) => {
                let _ = channel.close(200, "claimed").await;
                Ok(Some(Arc::downgrade(&live.connection)))
            }
            Err(lapin::Error::ProtocolError(e)) if e.get_id() == RESOURCE_LOCKED => Ok(None),
            Err(e) => {
                let _ = channel.close(200, "claim failed").await;
                Err(lapin_unavailable(&format!("claiming {queue}"), e))
            }
        }
    }
}

/// Gives an AMQP claim back: deletes its queue while the connection that
/// owns it is open (a closed one took it along; a queue that another
/// connection owns by now, after the lease, cannot be deleted from here).
struct AmqpRelease {
    shared: Arc<Shared>,
    name: String,
    queue: String,
    ticket: u64,
    owner: std::sync::Weak<Connection>,
}

#[async_trait]
impl ReleaseClaim for AmqpRelease {
    async fn release(self: Box<Self>) {
        if let Some(connection) = self.owner.upgrade() {
            if connection.status().connected() {
                if let Ok(channel) = connection.create_channel().await {
                    if let Err(e) = channel.queue_delete(&self.queue, Default::default()).await {
                        tracing::debug!(queue = %self.queue, error = %e, "amqp: releasing a claim failed; its lease ends it");
                    }
                    let _ = channel.close(200, "released").await;
                }
            }
        }
        self.shared.claims.give_back(&self.name, self.ticket);
    }
}

/// The URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_truncated_on_char_boundaries() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(800);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.len() >= MAX_REASON_BYTES - 1);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact_url("amqp://host"), "amqp://host");
    }

    #[test]
    fn delivery_count_header_is_read() {
        assert_eq!(delivery_count(&BasicProperties::default()), 0);
        let mut headers = FieldTable::default();
        headers.insert(DELIVERY_COUNT_HEADER.into(), AMQPValue::LongLongInt(3));
        let props = BasicProperties::default().with_headers(headers);
        assert_eq!(delivery_count(&props), 3);
    }
}
