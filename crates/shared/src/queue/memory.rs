//! The in-process queue: the same five queues, routing and settling rules as
//! the broker (docs/contracts.md §6), without durability.
//!
//! - jobs are routed by routing key ([`QueueName::for_routing_key`]), the
//!   ingest exchange feeds `thumbfarm.ingest`, the dead-letter exchange
//!   `thumbfarm.dead`; an unroutable message is dropped, as on the broker;
//! - each queue is FIFO; its consumers share it round-robin, each with at
//!   most `prefetch` unsettled deliveries;
//! - [`Delivery::retry`] puts the message back at the end of its queue with
//!   `delivery_count + 1`; past the delivery limit (`delivery_count >
//!   limit`, as with a quorum queue's `x-delivery-limit`) it goes to
//!   `thumbfarm.dead` with the reason "delivery limit exceeded";
//! - a consumer closed with unsettled deliveries (the [`Consumer`] and every
//!   unsettled [`Delivery`] from it dropped, like an AMQP channel) has them
//!   requeued at the front, `redelivered` and counted as a delivery;
//! - events go to every subscriber whose binding key matches
//!   ([`topic_matches`]).

use super::claims::LocalClaims;
use super::interface::*;
use super::topology::topic_matches;
use super::topology::{Exchange, QueueName};
use async_trait::async_trait;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// The reason given to messages retried past the delivery limit.
pub const DELIVERY_LIMIT_REASON: &str = "delivery limit exceeded";
/// Events buffered per subscriber before newer ones are dropped.
const EVENT_BUFFER: usize = 4096;

/// An in-process queue with broker semantics.
pub struct MemoryQueue {
    inner: Arc<Inner>,
    claims: LocalClaims,
}

/// Gives back an in-process claim.
struct LocalRelease {
    claims: LocalClaims,
    name: String,
    ticket: u64,
}

#[async_trait]
impl ReleaseClaim for LocalRelease {
    async fn release(self: Box<Self>) {
        self.claims.give_back(&self.name, self.ticket);
    }
}

struct Inner {
    delivery_limit: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queues: HashMap<QueueName, QueueState>,
    next_tag: u64,
    next_consumer: u64,
    subscribers: Vec<Subscriber>,
}

struct Message {
    body: Vec<u8>,
    routing_key: String,
    delivery_count: u32,
    redelivered: bool,
    /// Why it was dead-lettered (messages in `thumbfarm.dead`).
    reason: Option<String>,
}

struct InFlight {
    message: Message,
    consumer: u64,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Message>,
    unacked: HashMap<u64, InFlight>,
    consumers: Vec<ConsumerSlot>,
    /// Where the round-robin continues.
    turn: usize,
}

struct ConsumerSlot {
    id: u64,
    prefetch: usize,
    in_flight: usize,
    tx: mpsc::UnboundedSender<u64>,
}

struct Subscriber {
    binding_key: String,
    tx: mpsc::Sender<EventMessage>,
}

impl MemoryQueue {
    /// A new empty queue set; messages retried more than `delivery_limit`
    /// times are dead-lettered.
    pub fn new(delivery_limit: u32) -> Self {
        let mut state = State::default();
        for queue in QueueName::ALL {
            state.queues.insert(queue, QueueState::default());
        }
        MemoryQueue {
            inner: Arc::new(Inner {
                delivery_limit,
                state: Mutex::new(state),
            }),
            claims: LocalClaims::default(),
        }
    }

    /// The bodies and reasons of the messages waiting in `thumbfarm.dead`,
    /// oldest first (the reason is empty for a message published there
    /// directly).
    pub async fn dead_letters(&self) -> Vec<(Vec<u8>, String)> {
        let state = self.inner.lock();
        state
            .queues
            .get(&QueueName::Dead)
            .map(|q| {
                q.ready
                    .iter()
                    .map(|m| (m.body.clone(), m.reason.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent enough
        // (every mutation is a few container operations).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn queue(&mut self, queue: QueueName) -> &mut QueueState {
        self.queues.entry(queue).or_default()
    }

    /// Hands ready messages of `queue` to its consumers, round-robin, while
    /// any has room under its prefetch.
    fn dispatch(&mut self, queue: QueueName) {
        let State {
            queues, next_tag, ..
        } = self;
        let Some(q) = queues.get_mut(&queue) else {
            return;
        };
        while !q.ready.is_empty() && !q.consumers.is_empty() {
            let n = q.consumers.len();
            let Some(idx) = (0..n)
                .map(|i| (q.turn + i) % n)
                .find(|&i| q.consumers[i].in_flight < q.consumers[i].prefetch)
            else {
                return;
            };
            let Some(message) = q.ready.pop_front() else {
                return;
            };
            *next_tag += 1;
            let tag = *next_tag;
            let slot = &mut q.consumers[idx];
            if slot.tx.send(tag).is_err() {
                // Its receiver is gone; the consumer is being removed.
                q.ready.push_front(message);
                q.consumers.remove(idx);
                continue;
            }
            slot.in_flight += 1;
            let consumer = slot.id;
            q.unacked.insert(tag, InFlight { message, consumer });
            q.turn = (idx + 1) % n;
        }
    }

    /// Takes an unsettled delivery off its consumer.
    fn take(&mut self, queue: QueueName, tag: u64) -> Option<Message> {
        let q = self.queue(queue);
        let in_flight = q.unacked.remove(&tag)?;
        if let Some(slot) = q.consumers.iter_mut().find(|c| c.id == in_flight.consumer) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
        Some(in_flight.message)
    }

    /// Puts a delivered message back after a failed delivery: counted,
    /// marked redelivered, dead-lettered past the limit.
    fn give_back(
        &mut self,
        queue: QueueName,
        mut message: Message,
        delivery_limit: u32,
        front: bool,
    ) {
        message.delivery_count = message.delivery_count.saturating_add(1);
        message.redelivered = true;
        if queue.has_dead_letter() && message.delivery_count > delivery_limit {
            tracing::warn!(
                queue = %queue,
                routing_key = %message.routing_key,
                deliveries = message.delivery_count,
                "in-process queue: delivery limit exceeded; dead-lettering"
            );
            self.dead_letter(message, DELIVERY_LIMIT_REASON);
        } else if front {
            self.queue(queue).ready.push_front(message);
        } else {
            self.queue(queue).ready.push_back(message);
        }
    }

    fn dead_letter(&mut self, message: Message, reason: &str) {
        let dead = Message {
            body: message.body,
            routing_key: message.routing_key,
            delivery_count: 0,
            redelivered: false,
            reason: Some(reason.to_string()),
        };
        self.queue(QueueName::Dead).ready.push_back(dead);
        self.dispatch(QueueName::Dead);
    }

    fn publish_event(&mut self, routing_key: &str, body: &[u8]) {
        self.subscribers.retain(|s| !s.tx.is_closed());
        for sub in &self.subscribers {
            if !topic_matches(&sub.binding_key, routing_key) {
                continue;
            }
            let event = EventMessage {
                routing_key: routing_key.to_string(),
                body: body.to_vec(),
            };
            if sub.tx.try_send(event).is_err() {
                tracing::warn!(
                    binding_key = %sub.binding_key,
                    routing_key,
                    "in-process queue: event subscriber lagging; event dropped"
                );
            }
        }
    }
}

/// The part of a consumer its unsettled deliveries share: when the last
/// holder goes (the consumer and every unsettled delivery), what is still
/// unsettled is requeued, like the broker does when a channel closes.
struct ConsumerCore {
    inner: Arc<Inner>,
    queue: QueueName,
    id: u64,
}

impl Drop for ConsumerCore {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        let limit = self.inner.delivery_limit;
        let q = state.queue(self.queue);
        q.consumers.retain(|c| c.id != self.id);
        let mut tags: Vec<u64> = q
            .unacked
            .iter()
            .filter(|(_, f)| f.consumer == self.id)
            .map(|(tag, _)| *tag)
            .collect();
        if tags.is_empty() {
            state.dispatch(self.queue);
            return;
        }
        tracing::debug!(queue = %self.queue, count = tags.len(), "in-process queue: requeueing unsettled deliveries of a closed consumer");
        // Back at the front in their original order.
        tags.sort_unstable();
        for tag in tags.into_iter().rev() {
            if let Some(f) = state.queue(self.queue).unacked.remove(&tag) {
                state.give_back(self.queue, f.message, limit, true);
            }
        }
        state.dispatch(self.queue);
    }
}

/// A consumer of one in-process queue.
struct MemoryConsumer {
    core: Arc<ConsumerCore>,
    rx: mpsc::UnboundedReceiver<u64>,
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        // Stop new deliveries at once; those handed out stay with their
        // `Delivery` until it is settled or dropped.
        self.rx.close();
        let mut state = self.core.inner.lock();
        let limit = self.core.inner.delivery_limit;
        let queue = self.core.queue;
        state
            .queue(queue)
            .consumers
            .retain(|c| c.id != self.core.id);
        // Delivered to this consumer but never taken by `next()`.
        let mut buffered = Vec::new();
        while let Ok(tag) = self.rx.try_recv() {
            buffered.push(tag);
        }
        for tag in buffered.into_iter().rev() {
            if let Some(f) = state.queue(queue).unacked.remove(&tag) {
                state.give_back(queue, f.message, limit, true);
            }
        }
        state.dispatch(queue);
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            let tag = self.rx.recv().await?;
            let state = self.core.inner.lock();
            let Some(f) = state
                .queues
                .get(&self.core.queue)
                .and_then(|q| q.unacked.get(&tag))
            else {
                continue;
            };
            return Some(Delivery {
                body: f.message.body.clone(),
                routing_key: f.message.routing_key.clone(),
                queue: self.core.queue,
                delivery_count: f.message.delivery_count,
                redelivered: f.message.redelivered,
                acker: Box::new(MemoryAcker {
                    core: self.core.clone(),
                    tag,
                }),
            });
        }
    }
}

/// Settles one in-process delivery.
struct MemoryAcker {
    core: Arc<ConsumerCore>,
    tag: u64,
}

impl MemoryAcker {
    fn gone(&self) -> QueueError {
        QueueError::Unavailable(format!(
            "delivery {} of {} is no longer unsettled (its consumer was closed)",
            self.tag, self.core.queue
        ))
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        let mut state = self.core.inner.lock();
        let queue = self.core.queue;
        state.take(queue, self.tag).ok_or_else(|| self.gone())?;
        state.dispatch(queue);
        Ok(())
    }

    async fn nack_requeue(self: Box<Self>) -> Result<(), QueueError> {
        let mut state = self.core.inner.lock();
        let queue = self.core.queue;
        let message = state.take(queue, self.tag).ok_or_else(|| self.gone())?;
        state.give_back(queue, message, self.core.inner.delivery_limit, false);
        state.dispatch(queue);
        Ok(())
    }

    async fn dead_letter(
        self: Box<Self>,
        _body: Vec<u8>,
        _routing_key: String,
        queue: QueueName,
        reason: &str,
    ) -> Result<(), QueueError> {
        let mut state = self.core.inner.lock();
        let message = state
            .take(self.core.queue, self.tag)
            .ok_or_else(|| self.gone())?;
        tracing::info!(queue = %queue, routing_key = %message.routing_key, reason, "in-process queue: dead-lettered");
        state.dead_letter(message, reason);
        state.dispatch(self.core.queue);
        Ok(())
    }
}

/// An in-process event subscription.
struct MemoryEvents {
    rx: mpsc::Receiver<EventMessage>,
}

#[async_trait]
impl EventStream for MemoryEvents {
    async fn next(&mut self) -> Option<EventMessage> {
        self.rx.recv().await
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn publish(
        &self,
        exchange: Exchange,
        routing_key: &str,
        body: &[u8],
    ) -> Result<(), QueueError> {
        let mut state = self.inner.lock();
        if exchange == Exchange::Events {
            state.publish_event(routing_key, body);
            return Ok(());
        }
        let Some(queue) = QueueName::for_routing_key(exchange, routing_key) else {
            tracing::debug!(
                exchange = exchange.name(),
                routing_key,
                "in-process queue: unroutable message dropped"
            );
            return Ok(());
        };
        state.queue(queue).ready.push_back(Message {
            body: body.to_vec(),
            routing_key: routing_key.to_string(),
            delivery_count: 0,
            redelivered: false,
            reason: None,
        });
        state.dispatch(queue);
        Ok(())
    }

    async fn consume(
        &self,
        queue: QueueName,
        prefetch: u16,
    ) -> Result<Box<dyn Consumer>, QueueError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.inner.lock();
        state.next_consumer += 1;
        let id = state.next_consumer;
        state.queue(queue).consumers.push(ConsumerSlot {
            id,
            prefetch: usize::from(prefetch.max(1)),
            in_flight: 0,
            tx,
        });
        state.dispatch(queue);
        drop(state);
        Ok(Box::new(MemoryConsumer {
            core: Arc::new(ConsumerCore {
                inner: self.inner.clone(),
                queue,
                id,
            }),
            rx,
        }))
    }

    async fn subscribe(&self, binding_key: &str) -> Result<Box<dyn EventStream>, QueueError> {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        self.inner.lock().subscribers.push(Subscriber {
            binding_key: binding_key.to_string(),
            tx,
        });
        Ok(Box::new(MemoryEvents { rx }))
    }

    async fn claim(&self, name: &str, lease: Duration) -> Result<Option<Claim>, QueueError> {
        let Some(ticket) = self.claims.take(name, lease) else {
            return Ok(None);
        };
        let release = LocalRelease {
            claims: self.claims.clone(),
            name: name.to_string(),
            ticket,
        };
        Ok(Some(Claim::new(name, Box::new(release))))
    }

    async fn stats(&self) -> Result<Vec<QueueStats>, QueueError> {
        let state = self.inner.lock();
        Ok(QueueName::ALL
            .into_iter()
            .map(|queue| {
                let q = state.queues.get(&queue);
                QueueStats {
                    queue: queue.name().to_string(),
                    ready: q.map_or(0, |q| q.ready.len() as u64),
                    unacked: q.map_or(0, |q| q.unacked.len() as u64),
                    consumers: q.map_or(0, |q| q.consumers.len() as u32),
                }
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("in-process (delivery limit {})", self.inner.delivery_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const SHORT: Duration = Duration::from_millis(100);

    async fn next(c: &mut Box<dyn Consumer>) -> Delivery {
        timeout(Duration::from_secs(2), c.next())
            .await
            .expect("a delivery")
            .expect("consumer open")
    }

    async fn nothing(c: &mut Box<dyn Consumer>) {
        assert!(
            timeout(SHORT, c.next()).await.is_err(),
            "unexpected delivery"
        );
    }

    async fn stats_of(q: &MemoryQueue, queue: QueueName) -> QueueStats {
        q.stats()
            .await
            .expect("stats")
            .into_iter()
            .find(|s| s.queue == queue.name())
            .expect("queue in stats")
    }

    #[tokio::test]
    async fn routes_publishes_and_acks() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.ondemand", b"a")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "render.bulk", b"b")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "transcode", b"c").await.unwrap();
        q.publish(Exchange::Ingest, "file.created", b"d")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "nowhere", b"lost").await.unwrap();
        q.publish(Exchange::DeadLetter, "x", b"e").await.unwrap();
        let ready: Vec<u64> = q.stats().await.unwrap().iter().map(|s| s.ready).collect();
        assert_eq!(ready, vec![1, 1, 1, 1, 1]);

        let mut c = q.consume(QueueName::RenderOnDemand, 1).await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.body, b"a");
        assert_eq!(d.routing_key, "render.ondemand");
        assert_eq!(d.queue, QueueName::RenderOnDemand);
        assert_eq!(d.delivery_count, 0);
        assert!(!d.redelivered);
        let s = stats_of(&q, QueueName::RenderOnDemand).await;
        assert_eq!((s.ready, s.unacked, s.consumers), (0, 1, 1));
        d.ack().await.unwrap();
        let s = stats_of(&q, QueueName::RenderOnDemand).await;
        assert_eq!((s.ready, s.unacked), (0, 0));
        nothing(&mut c).await;

        let mut ingest = q.consume(QueueName::Ingest, 1).await.unwrap();
        assert_eq!(next(&mut ingest).await.body, b"d");
    }

    #[tokio::test]
    async fn fifo_order() {
        let q = MemoryQueue::new(5);
        for i in 0..5 {
            q.publish(Exchange::Jobs, "render.bulk", format!("{i}").as_bytes())
                .await
                .unwrap();
        }
        let mut c = q.consume(QueueName::RenderBulk, 10).await.unwrap();
        for i in 0..5 {
            let d = next(&mut c).await;
            assert_eq!(d.body, format!("{i}").as_bytes());
            d.ack().await.unwrap();
        }
    }

    #[tokio::test]
    async fn retry_redelivers_with_count() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "transcode", b"t").await.unwrap();
        let mut c = q.consume(QueueName::Transcode, 1).await.unwrap();
        let d = next(&mut c).await;
        d.retry().await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.body, b"t");
        assert!(d.redelivered);
        assert_eq!(d.delivery_count, 1);
        d.retry().await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.delivery_count, 2);
        d.ack().await.unwrap();
        nothing(&mut c).await;
    }

    #[tokio::test]
    async fn retry_requeues_behind_waiting_messages() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.bulk", b"1")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "render.bulk", b"2")
            .await
            .unwrap();
        let mut c = q.consume(QueueName::RenderBulk, 1).await.unwrap();
        next(&mut c).await.retry().await.unwrap();
        assert_eq!(next(&mut c).await.body, b"2");
    }

    #[tokio::test]
    async fn past_the_delivery_limit_goes_to_dead() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.bulk", b"poison")
            .await
            .unwrap();
        let mut c = q.consume(QueueName::RenderBulk, 1).await.unwrap();
        // Like a quorum queue with x-delivery-limit 5: deliveries with
        // counts 0..=5, the sixth retry dead-letters.
        for expected in 0..=5 {
            let d = next(&mut c).await;
            assert_eq!(d.delivery_count, expected);
            d.retry().await.unwrap();
        }
        nothing(&mut c).await;
        assert_eq!(
            q.dead_letters().await,
            vec![(b"poison".to_vec(), DELIVERY_LIMIT_REASON.to_string())]
        );
        assert_eq!(stats_of(&q, QueueName::Dead).await.ready, 1);
        let mut dead = q.consume(QueueName::Dead, 1).await.unwrap();
        let d = next(&mut dead).await;
        assert_eq!(d.routing_key, "render.bulk");
        d.ack().await.unwrap();
        assert!(q.dead_letters().await.is_empty());
    }

    #[tokio::test]
    async fn dead_letter_keeps_the_reason() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.ondemand", b"not json")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "render.ondemand", b"{}")
            .await
            .unwrap();
        let mut c = q.consume(QueueName::RenderOnDemand, 1).await.unwrap();
        let d = next(&mut c).await;
        d.dead_letter("malformed: expected value").await.unwrap();
        // The loop goes on with the next message.
        let d = next(&mut c).await;
        assert_eq!(d.body, b"{}");
        d.ack().await.unwrap();
        assert_eq!(
            q.dead_letters().await,
            vec![(
                b"not json".to_vec(),
                "malformed: expected value".to_string()
            )]
        );
        let s = stats_of(&q, QueueName::RenderOnDemand).await;
        assert_eq!((s.ready, s.unacked), (0, 0));
    }

    #[tokio::test]
    async fn prefetch_limits_unsettled_deliveries() {
        let q = MemoryQueue::new(5);
        for i in 0..5u8 {
            q.publish(Exchange::Jobs, "render.bulk", &[i])
                .await
                .unwrap();
        }
        let mut c = q.consume(QueueName::RenderBulk, 2).await.unwrap();
        let a = next(&mut c).await;
        let b = next(&mut c).await;
        nothing(&mut c).await;
        let s = stats_of(&q, QueueName::RenderBulk).await;
        assert_eq!((s.ready, s.unacked), (3, 2));
        a.ack().await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.body, [2]);
        nothing(&mut c).await;
        b.ack().await.unwrap();
        d.ack().await.unwrap();
    }

    #[tokio::test]
    async fn consumers_share_a_queue_round_robin() {
        let q = MemoryQueue::new(5);
        let mut c1 = q.consume(QueueName::Transcode, 10).await.unwrap();
        let mut c2 = q.consume(QueueName::Transcode, 10).await.unwrap();
        for i in 0..4u8 {
            q.publish(Exchange::Jobs, "transcode", &[i]).await.unwrap();
        }
        let mut one = Vec::new();
        let mut two = Vec::new();
        for _ in 0..2 {
            one.push(next(&mut c1).await.body[0]);
            two.push(next(&mut c2).await.body[0]);
        }
        assert_eq!(one, vec![0, 2]);
        assert_eq!(two, vec![1, 3]);
        assert_eq!(stats_of(&q, QueueName::Transcode).await.consumers, 2);
    }

    #[tokio::test]
    async fn dropped_consumer_has_its_deliveries_redelivered() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.bulk", b"x")
            .await
            .unwrap();
        q.publish(Exchange::Jobs, "render.bulk", b"y")
            .await
            .unwrap();
        let mut c = q.consume(QueueName::RenderBulk, 10).await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.body, b"x");
        // "y" sits in the consumer's buffer, "x" was taken and not settled.
        drop(d);
        drop(c);
        let s = stats_of(&q, QueueName::RenderBulk).await;
        assert_eq!((s.ready, s.unacked, s.consumers), (2, 0, 0));
        let mut c = q.consume(QueueName::RenderBulk, 10).await.unwrap();
        let x = next(&mut c).await;
        assert_eq!(x.body, b"x");
        assert!(x.redelivered);
        assert_eq!(x.delivery_count, 1);
        let y = next(&mut c).await;
        assert_eq!(y.body, b"y");
        assert!(y.redelivered);
        x.ack().await.unwrap();
        y.ack().await.unwrap();
    }

    #[tokio::test]
    async fn a_delivery_outliving_its_consumer_can_still_be_settled() {
        let q = MemoryQueue::new(5);
        q.publish(Exchange::Jobs, "render.bulk", b"x")
            .await
            .unwrap();
        let mut c = q.consume(QueueName::RenderBulk, 1).await.unwrap();
        let d = next(&mut c).await;
        drop(c);
        // Like a channel kept open by an unsettled delivery.
        d.ack().await.unwrap();
        let s = stats_of(&q, QueueName::RenderBulk).await;
        assert_eq!((s.ready, s.unacked, s.consumers), (0, 0, 0));
    }

    #[tokio::test]
    async fn topic_subscriptions() {
        let q = MemoryQueue::new(5);
        let mut rendered = q.subscribe("rendered.*").await.unwrap();
        let mut all = q.subscribe("#").await.unwrap();
        q.publish(Exchange::Events, "failed.abc", b"f")
            .await
            .unwrap();
        q.publish(Exchange::Events, "rendered.abc", b"r")
            .await
            .unwrap();
        let e = timeout(SHORT, rendered.next()).await.unwrap().unwrap();
        assert_eq!(
            (e.routing_key.as_str(), e.body.as_slice()),
            ("rendered.abc", &b"r"[..])
        );
        assert!(timeout(SHORT, rendered.next()).await.is_err());
        let keys: Vec<String> = vec![
            timeout(SHORT, all.next())
                .await
                .unwrap()
                .unwrap()
                .routing_key,
            timeout(SHORT, all.next())
                .await
                .unwrap()
                .unwrap()
                .routing_key,
        ];
        assert_eq!(keys, vec!["failed.abc", "rendered.abc"]);
        // Events never land in the work queues.
        assert!(q.stats().await.unwrap().iter().all(|s| s.ready == 0));
        // A dropped subscriber is forgotten.
        drop(all);
        q.publish(Exchange::Events, "rendered.def", b"r")
            .await
            .unwrap();
        assert_eq!(q.inner.lock().subscribers.len(), 1);
    }

    #[tokio::test]
    async fn ping_describe_and_stats_cover_every_queue() {
        let q = MemoryQueue::new(5);
        q.ping().await.unwrap();
        assert!(q.describe().contains("in-process"));
        assert_eq!(q.stats().await.unwrap().len(), 5);
    }
}
