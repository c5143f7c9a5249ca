//! `AmqpQueue` against a real RabbitMQ (amqp://guest:guest@127.0.0.1:5672/%2f,
//! or `THUMBFARM_TEST_AMQP_URL`). These tests fail, not skip, when the
//! broker is unreachable (start it with `scripts/services.sh`).
//!
//! The queue names are fixed and the broker is shared, so the tests run one
//! at a time (a process-wide lock), purge the queues they use first, and
//! recognise their own messages by a unique id in the body.

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;
use thumbfarm_shared::messages::Job;
use thumbfarm_shared::queue::{
    AmqpQueue, AmqpSettings, Consumer, Delivery, Exchange, Queue, QueueName, ORIGIN_HEADER,
    REASON_HEADER,
};
use tokio::sync::Mutex;
use tokio::time::timeout;

static LOCK: Mutex<()> = Mutex::const_new(());

const DELIVERY_LIMIT: u32 = 5;
const WAIT: Duration = Duration::from_secs(10);

fn url() -> String {
    std::env::var("THUMBFARM_TEST_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

fn settings() -> AmqpSettings {
    AmqpSettings {
        url: url(),
        delivery_limit: DELIVERY_LIMIT,
    }
}

async fn queue() -> AmqpQueue {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("thumbfarm_shared=debug")
        .try_init();
    AmqpQueue::connect(settings())
        .await
        .expect("RabbitMQ must be reachable (run scripts/services.sh)")
}

/// A direct lapin connection for inspecting the broker.
async fn raw() -> (Connection, Channel) {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let conn = Connection::connect(&url(), props)
        .await
        .expect("RabbitMQ must be reachable (run scripts/services.sh)");
    let channel = conn.create_channel().await.expect("channel");
    (conn, channel)
}

async fn purge(channel: &Channel, queues: &[QueueName]) {
    for q in queues {
        channel
            .queue_purge(q.name(), QueuePurgeOptions::default())
            .await
            .unwrap_or_else(|e| panic!("purge {q}: {e}"));
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A valid render job whose source key carries `id`.
fn render_job(id: &str) -> Vec<u8> {
    format!(r#"{{"v":1,"source":{{"key":"queue-test/{id}.png"}},"sizes":[]}}"#).into_bytes()
}

fn body_has(body: &[u8], id: &str) -> bool {
    String::from_utf8_lossy(body).contains(id)
}

/// The next delivery carrying `id`; others (from whoever else uses the
/// broker) are given back.
async fn next_with(consumer: &mut Box<dyn Consumer>, id: &str) -> Delivery {
    let found = timeout(WAIT, async {
        loop {
            let d = consumer.next().await.expect("consumer ended");
            if body_has(&d.body, id) {
                return d;
            }
            eprintln!("ignoring a foreign message on {}", d.queue);
            let _ = d.retry().await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no message {id} within {WAIT:?}"))
}

/// Reads `thumbfarm.dead` with a raw consumer until the message carrying
/// `id` shows up; acks it (and leaves others alone).
async fn find_dead(channel: &Channel, id: &str) -> lapin::message::Delivery {
    let mut consumer = channel
        .basic_consume(
            QueueName::Dead.name(),
            &format!("test-dead-{}", unique()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume dead");
    let found = timeout(WAIT, async {
        loop {
            let d = consumer
                .next()
                .await
                .expect("dead consumer ended")
                .expect("dead delivery");
            if body_has(&d.data, id) {
                d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                return d;
            }
        }
    })
    .await;
    let _ = channel
        .basic_cancel(consumer.tag().as_str(), Default::default())
        .await;
    found.unwrap_or_else(|_| panic!("{id} not found in thumbfarm.dead within {WAIT:?}"))
}

fn header_str(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// `rabbitmqctl` with arguments; its stdout.
fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Force-closes the broker connections named `connection_name` (only ours,
/// so other users of the broker are not disturbed).
fn close_connections_named(connection_name: &str) -> usize {
    let listing = rabbitmqctl(&[
        "list_connections",
        "pid",
        "client_properties",
        "--quiet",
        "--no-table-headers",
    ]);
    let mut closed = 0;
    for line in listing.lines().filter(|l| l.contains(connection_name)) {
        // `<rabbit@host.1762.0>\t[{...connection_name...}]`
        let pid = line.split_whitespace().next().expect("pid");
        rabbitmqctl(&["close_connection", pid, "test"]);
        closed += 1;
    }
    closed
}

#[tokio::test]
async fn connect_fails_when_broker_unreachable() {
    let result = AmqpQueue::connect(AmqpSettings {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".to_string(),
        delivery_limit: DELIVERY_LIMIT,
    })
    .await;
    assert!(result.is_err(), "connecting to a closed port must fail");
}

#[tokio::test]
async fn topology_is_declared_idempotently_with_quorum_queues() {
    let _guard = LOCK.lock().await;
    let first = queue().await;
    let second = queue().await;
    first.ping().await.expect("ping");
    second.ping().await.expect("ping");
    assert!(first.describe().contains("guest:***@") || !url().contains('@'));

    let (_conn, channel) = raw().await;
    for exchange in Exchange::ALL {
        let kind = match exchange {
            Exchange::Jobs => ExchangeKind::Direct,
            Exchange::Events | Exchange::Ingest => ExchangeKind::Topic,
            Exchange::DeadLetter => ExchangeKind::Fanout,
        };
        channel
            .exchange_declare(
                exchange.name(),
                kind,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("passive declare of exchange {}: {e}", exchange.name()));
    }
    for q in QueueName::ALL {
        channel
            .queue_declare(
                q.name(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("passive declare of {q}: {e}"));
    }
    let listing = rabbitmqctl(&["list_queues", "name", "type", "durable", "--quiet"]);
    for q in QueueName::ALL {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(q.name()))
            .unwrap_or_else(|| panic!("{q} missing from list_queues:\n{listing}"));
        assert!(line.contains("quorum"), "{q} is not a quorum queue: {line}");
        assert!(line.contains("true"), "{q} is not durable: {line}");
    }
}

#[tokio::test]
async fn publish_consume_ack() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::RenderOnDemand]).await;

    let mut consumer = q
        .consume(QueueName::RenderOnDemand, 4)
        .await
        .expect("consume");
    let id = unique();
    q.publish(Exchange::Jobs, "render.ondemand", &render_job(&id))
        .await
        .expect("publish");
    let d = next_with(&mut consumer, &id).await;
    assert_eq!(d.routing_key, "render.ondemand");
    assert_eq!(d.queue, QueueName::RenderOnDemand);
    assert_eq!(d.delivery_count, 0);
    assert!(!d.redelivered);
    d.ack().await.expect("ack");

    // Acked: it does not come back, even to a fresh consumer.
    drop(consumer);
    let mut again = q
        .consume(QueueName::RenderOnDemand, 4)
        .await
        .expect("consume");
    let nothing = timeout(Duration::from_millis(1500), async {
        loop {
            let d = again.next().await.expect("consumer ended");
            if body_has(&d.body, &id) {
                return d;
            }
            let _ = d.retry().await;
        }
    })
    .await;
    assert!(nothing.is_err(), "an acked message was redelivered");
}

#[tokio::test]
async fn retry_redelivers_with_an_incremented_count() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::Transcode]).await;

    let mut consumer = q.consume(QueueName::Transcode, 1).await.expect("consume");
    let id = unique();
    q.publish(Exchange::Jobs, "transcode", id.as_bytes())
        .await
        .expect("publish");
    let first = next_with(&mut consumer, &id).await;
    assert_eq!(first.delivery_count, 0);
    first.retry().await.expect("retry");
    let second = next_with(&mut consumer, &id).await;
    assert!(second.redelivered);
    assert_eq!(second.delivery_count, 1);
    second.retry().await.expect("retry");
    let third = next_with(&mut consumer, &id).await;
    assert_eq!(third.delivery_count, 2);
    third.ack().await.expect("ack");
}

#[tokio::test]
async fn retried_past_the_delivery_limit_lands_in_dead() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::RenderBulk, QueueName::Dead]).await;

    let mut consumer = q.consume(QueueName::RenderBulk, 1).await.expect("consume");
    let id = unique();
    q.publish(Exchange::Jobs, "render.bulk", &render_job(&id))
        .await
        .expect("publish");
    // Deliveries 0..=limit are allowed; the retry after the last one
    // (delivery_count would exceed the limit) dead-letters it.
    for expected in 0..=DELIVERY_LIMIT {
        let d = next_with(&mut consumer, &id).await;
        assert_eq!(d.delivery_count, expected);
        d.retry().await.expect("retry");
    }
    let dead = find_dead(&channel, &id).await;
    assert_eq!(dead.routing_key.as_str(), "render.bulk");
    // And it is gone from the work queue.
    let gone = timeout(Duration::from_millis(1500), next_with(&mut consumer, &id)).await;
    assert!(
        gone.is_err(),
        "a message past the limit was delivered again"
    );
}

#[tokio::test]
async fn dead_letter_carries_the_reason() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::RenderOnDemand, QueueName::Dead]).await;

    let mut consumer = q
        .consume(QueueName::RenderOnDemand, 2)
        .await
        .expect("consume");
    let id = unique();
    q.publish(Exchange::Jobs, "render.ondemand", &render_job(&id))
        .await
        .expect("publish");
    let d = next_with(&mut consumer, &id).await;
    let long_reason = format!("undecodable image: {}", "x".repeat(3000));
    d.dead_letter(&long_reason).await.expect("dead_letter");

    let dead = find_dead(&channel, &id).await;
    let reason = header_str(&dead, REASON_HEADER).expect("reason header");
    assert!(reason.starts_with("undecodable image: xxx"));
    assert!(
        reason.len() <= 1000,
        "reason not truncated: {} bytes",
        reason.len()
    );
    assert_eq!(
        header_str(&dead, ORIGIN_HEADER).as_deref(),
        Some("thumbfarm.render.ondemand")
    );
    assert_eq!(dead.routing_key.as_str(), "render.ondemand");
    assert_eq!(dead.properties.delivery_mode(), &Some(2));
    assert_eq!(
        dead.properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    // Settled: not redelivered from the work queue.
    let gone = timeout(Duration::from_millis(1500), next_with(&mut consumer, &id)).await;
    assert!(gone.is_err(), "a dead-lettered message was redelivered");
}

#[tokio::test]
async fn malformed_message_is_dead_lettered_and_the_loop_goes_on() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::RenderBulk, QueueName::Dead]).await;

    let id = unique();
    let malformed = format!("this is not JSON {id}");
    let valid = render_job(&id);
    q.publish(Exchange::Jobs, "render.bulk", malformed.as_bytes())
        .await
        .expect("publish malformed");
    q.publish(Exchange::Jobs, "render.bulk", &valid)
        .await
        .expect("publish valid");

    // A worker-like loop: parse, dead-letter what cannot be parsed, go on.
    let mut consumer = q.consume(QueueName::RenderBulk, 4).await.expect("consume");
    let mut dead_lettered = 0;
    let processed = timeout(WAIT, async {
        loop {
            let d = consumer.next().await.expect("consumer ended");
            if !body_has(&d.body, &id) {
                let _ = d.retry().await;
                continue;
            }
            match Job::parse(&d.routing_key, &d.body) {
                Ok(job) => {
                    d.ack().await.expect("ack");
                    return job;
                }
                Err(e) => {
                    d.dead_letter(&e.to_string()).await.expect("dead_letter");
                    dead_lettered += 1;
                }
            }
        }
    })
    .await
    .expect("the valid job after the malformed one was not consumed");
    assert!(matches!(processed, Job::Render(_)));
    assert_eq!(dead_lettered, 1);

    let dead = find_dead(&channel, &id).await;
    assert_eq!(dead.data, malformed.as_bytes());
    assert!(header_str(&dead, REASON_HEADER).is_some_and(|r| !r.is_empty()));
    assert_eq!(
        header_str(&dead, ORIGIN_HEADER).as_deref(),
        Some("thumbfarm.render.bulk")
    );
}

#[tokio::test]
async fn consumer_resumes_after_the_connection_is_dropped() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::RenderOnDemand]).await;

    let mut consumer = q
        .consume(QueueName::RenderOnDemand, 4)
        .await
        .expect("consume");
    let before = unique();
    q.publish(Exchange::Jobs, "render.ondemand", &render_job(&before))
        .await
        .expect("publish");
    let held = next_with(&mut consumer, &before).await;

    let closed = close_connections_named(q.connection_name());
    assert!(
        closed >= 1,
        "no broker connection named {}",
        q.connection_name()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A delivery from the dead connection cannot be settled: an error, no panic.
    assert!(
        held.ack().await.is_err(),
        "ack on a closed channel succeeded"
    );

    // Publishing reconnects; the same consumer gets the new message, and
    // the broker redelivers the one that could not be acked.
    let after = unique();
    q.publish(Exchange::Jobs, "render.ondemand", &render_job(&after))
        .await
        .expect("publish after the drop");
    let mut seen_after = false;
    let mut seen_before = false;
    timeout(Duration::from_secs(30), async {
        while !(seen_after && seen_before) {
            let d = consumer.next().await.expect("consumer ended");
            if body_has(&d.body, &after) {
                seen_after = true;
                d.ack().await.expect("ack after reconnect");
            } else if body_has(&d.body, &before) {
                assert!(d.redelivered);
                seen_before = true;
                d.ack().await.expect("ack redelivered");
            } else {
                let _ = d.retry().await;
            }
        }
    })
    .await
    .expect("the consumer did not resume after the connection drop");
    q.ping().await.expect("ping after reconnect");
}

#[tokio::test]
async fn subscriptions_filter_by_topic_and_survive_a_drop() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let mut events = q.subscribe("rendered.*").await.expect("subscribe");
    let hash = unique();
    q.publish(Exchange::Events, &format!("failed.{hash}"), b"{}")
        .await
        .expect("publish failed");
    q.publish(Exchange::Events, &format!("rendered.{hash}"), b"{}")
        .await
        .expect("publish rendered");
    let got = timeout(WAIT, async {
        loop {
            let e = events.next().await.expect("stream ended");
            assert_ne!(e.routing_key, format!("failed.{hash}"));
            if e.routing_key == format!("rendered.{hash}") {
                return e;
            }
        }
    })
    .await
    .expect("no rendered event");
    assert_eq!(got.body, b"{}");

    // After a connection drop the stream re-subscribes.
    assert!(close_connections_named(q.connection_name()) >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hash2 = unique();
    let rk = format!("rendered.{hash2}");
    let got = timeout(Duration::from_secs(30), async {
        loop {
            // The stream may re-subscribe only after this publish; publish
            // until an event arrives.
            q.publish(Exchange::Events, &rk, b"{}")
                .await
                .expect("publish");
            if let Ok(e) = timeout(Duration::from_millis(500), events.next()).await {
                let e = e.expect("stream ended");
                if e.routing_key == rk {
                    return e;
                }
            }
        }
    })
    .await
    .expect("the event stream did not resume after the drop");
    assert_eq!(got.routing_key, rk);
}

#[tokio::test]
async fn stats_count_ready_messages() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::Transcode]).await;
    for _ in 0..3 {
        q.publish(Exchange::Jobs, "transcode", unique().as_bytes())
            .await
            .expect("publish");
    }
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.len(), QueueName::ALL.len());
    let transcode = stats
        .iter()
        .find(|s| s.queue == "thumbfarm.transcode")
        .expect("transcode stats");
    assert_eq!(transcode.ready, 3, "{stats:?}");
    assert!(stats.iter().any(|s| s.queue == "thumbfarm.dead"));
    purge(&channel, &[QueueName::Transcode]).await;
}

/// Raw publishing with a body that is not ours must not disturb the
/// adapter: a direct publish to the DLX lands in the dead queue too.
#[tokio::test]
async fn publishing_to_the_dead_letter_exchange_reaches_dead() {
    let _guard = LOCK.lock().await;
    let q = queue().await;
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::Dead]).await;
    let id = unique();
    channel
        .basic_publish(
            Exchange::DeadLetter.name(),
            "anything",
            BasicPublishOptions::default(),
            id.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let mut consumer = q.consume(QueueName::Dead, 1).await.expect("consume dead");
    let d = next_with(&mut consumer, &id).await;
    assert_eq!(d.queue, QueueName::Dead);
    d.ack().await.expect("ack");
}

/// A TCP proxy in front of the broker that can simulate an outage: while
/// down it cuts every open connection and refuses new ones (accepts and
/// drops them), without touching the shared broker.
struct Proxy {
    url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start() -> Proxy {
        use std::sync::atomic::Ordering;
        let broker = url();
        let after_scheme = broker.split("://").nth(1).expect("url scheme");
        let authority = after_scheme.split('/').next().expect("authority");
        let host_port = authority.rsplit('@').next().expect("host").to_string();
        let host_port = if host_port.contains(':') {
            host_port
        } else {
            format!("{host_port}:5672")
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let url = broker.replacen(
            authority,
            &authority.replacen(&host_port, &format!("127.0.0.1:{port}"), 1),
            1,
        );
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = host_port.clone();
                let mut cut_rx = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy { url, up, cut }
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn publish_and_consume_ride_through_a_broker_outage() {
    let _guard = LOCK.lock().await;
    let proxy = Proxy::start().await;
    let _ = queue().await; // logging, and the broker is reachable directly
    let q = std::sync::Arc::new(
        AmqpQueue::connect(AmqpSettings {
            url: proxy.url.clone(),
            delivery_limit: DELIVERY_LIMIT,
        })
        .await
        .expect("connect through the proxy"),
    );
    let (_conn, channel) = raw().await;
    purge(&channel, &[QueueName::Transcode]).await;
    let mut consumer = q.consume(QueueName::Transcode, 2).await.expect("consume");
    let first = unique();
    q.publish(Exchange::Jobs, "transcode", first.as_bytes())
        .await
        .expect("publish");
    next_with(&mut consumer, &first)
        .await
        .ack()
        .await
        .expect("ack");

    // The broker "goes away" for a few seconds; a publish made meanwhile
    // waits for it and succeeds once it is back.
    proxy.down();
    let during = unique();
    let publisher = {
        let (q, during) = (q.clone(), during.clone());
        tokio::spawn(async move {
            q.publish(Exchange::Jobs, "transcode", during.as_bytes())
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        q.ping().await.is_err(),
        "ping succeeded while the broker was away"
    );
    assert!(
        !publisher.is_finished(),
        "publish returned during the outage"
    );
    proxy.up();
    timeout(Duration::from_secs(15), publisher)
        .await
        .expect("publish did not finish after the broker came back")
        .expect("publish task")
        .expect("publish after the outage");
    let d = timeout(Duration::from_secs(15), next_with(&mut consumer, &during))
        .await
        .expect("the consumer did not resume after the outage");
    d.ack().await.expect("ack after the outage");
    q.ping().await.expect("ping after the outage");
}

#[tokio::test]
async fn a_claim_has_one_holder_across_connections_until_released_expired_or_disconnected() {
    let a = queue().await;
    let b = queue().await;
    let name = format!("test.{}", unique());
    let lease = Duration::from_secs(60);

    // One holder; in the holder's own process too.
    let held = a.claim(&name, lease).await.expect("claim").expect("free");
    assert!(
        b.claim(&name, lease).await.expect("claim").is_none(),
        "another connection"
    );
    assert!(
        a.claim(&name, lease).await.expect("claim").is_none(),
        "the same connection"
    );
    // A refused claim leaves the adapter working.
    a.publish(Exchange::Events, "test.claims", b"{}")
        .await
        .expect("publish after a refused claim");

    // Released: free for the other connection.
    held.release().await;
    let held = b
        .claim(&name, lease)
        .await
        .expect("claim")
        .expect("released");

    // The holder's connection closes: its claims go with it.
    assert_eq!(close_connections_named(b.connection_name()), 1);
    drop(held);
    let deadline = tokio::time::Instant::now() + WAIT;
    let taken = loop {
        if let Some(c) = a.claim(&name, lease).await.expect("claim") {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "claim not freed by the disconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(taken);

    // A lease runs out at the broker without a release.
    let short = format!("test.{}", unique());
    let kept = a
        .claim(&short, Duration::from_millis(500))
        .await
        .expect("claim")
        .expect("free");
    std::mem::forget(kept);
    let c = queue().await;
    assert!(c
        .claim(&short, Duration::from_millis(500))
        .await
        .expect("claim")
        .is_none());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if c.claim(&short, Duration::from_millis(500))
            .await
            .expect("claim")
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease did not run out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
