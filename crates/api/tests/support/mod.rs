//! Harness of the planner, backfill and status-page tests: the real RabbitMQ
//! (`THUMBFARM_TEST_AMQP_URL`, default amqp://guest:guest@127.0.0.1:5672/%2f)
//! and the real S3 server (`THUMBFARM_TEST_S3_ENDPOINT`, default
//! http://127.0.0.1:8014, started by `scripts/services.sh`). Nothing is
//! mocked: a service that is down fails the test.
#![allow(dead_code)]

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::AMQPValue;
use lapin::{Connection, ConnectionProperties};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thumbfarm_shared::queue::{AmqpQueue, AmqpSettings, Queue, QueueName, REASON_HEADER};
use thumbfarm_shared::store::{S3Settings, S3Store, Store};

/// Tests of one binary that use the broker's fixed queue names run one at a
/// time (test binaries themselves run one after another under `cargo test`).
pub static BROKER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The broker URL.
pub fn amqp_url() -> String {
    std::env::var("THUMBFARM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// RabbitMQ's management API (`scripts/services.sh` enables the plugin).
pub fn management_url() -> String {
    std::env::var("THUMBFARM_TEST_RABBITMQ_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://guest:guest@127.0.0.1:15672".to_string())
}

/// The S3 server's endpoint.
pub fn s3_endpoint() -> String {
    std::env::var("THUMBFARM_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:8014".to_string())
}

/// Exports the S3 test credentials for the SDK (once, before any client).
pub fn s3_credentials() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let key = std::env::var("THUMBFARM_TEST_S3_ACCESS_KEY")
            .unwrap_or_else(|_| "thumbfarm".to_string());
        let secret = std::env::var("THUMBFARM_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|_| "thumbfarm-secret".to_string());
        std::env::set_var("AWS_ACCESS_KEY_ID", key);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
        std::env::set_var("AWS_REGION", "us-east-1");
    });
}

/// A unique bucket name.
pub fn unique_bucket(tag: &str) -> String {
    format!(
        "tf-{tag}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new bucket on the S3 server, opened as a store.
pub async fn s3_store(bucket: &str) -> Arc<dyn Store> {
    s3_credentials();
    let store = S3Store::connect(S3Settings {
        bucket: bucket.to_string(),
        endpoint: Some(s3_endpoint()),
        region: "us-east-1".to_string(),
        path_style: true,
        create_bucket: true,
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "S3 server at {} is needed (run scripts/services.sh): {e}",
            s3_endpoint()
        )
    });
    Arc::new(store)
}

/// The broker, topology declared.
pub async fn amqp() -> Arc<dyn Queue> {
    let q = AmqpQueue::connect(AmqpSettings {
        url: amqp_url(),
        delivery_limit: 5,
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "RabbitMQ at {} is needed (run scripts/services.sh): {e}",
            amqp_url()
        )
    });
    Arc::new(q)
}

/// A plain lapin connection and channel to the broker.
pub async fn raw_channel() -> (Connection, lapin::Channel) {
    let conn = Connection::connect(
        &amqp_url(),
        ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio),
    )
    .await
    .unwrap_or_else(|e| panic!("RabbitMQ at {} (run scripts/services.sh): {e}", amqp_url()));
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// Empties every thumbfarm queue.
pub async fn purge_all() {
    // On a fresh broker the queues do not exist until the topology is declared.
    drop(amqp().await);
    let (conn, ch) = raw_channel().await;
    for q in QueueName::ALL {
        ch.queue_purge(q.name(), QueuePurgeOptions::default())
            .await
            .expect("purge");
    }
    let _ = conn.close(200, "done").await;
}

/// The broker's own count of ready messages (passive declare).
pub async fn broker_count(queue: QueueName) -> u32 {
    let (conn, ch) = raw_channel().await;
    let q = ch
        .queue_declare(
            queue.name(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("passive declare");
    let _ = conn.close(200, "done").await;
    q.message_count()
}

/// A message taken off a queue.
#[derive(Debug, Clone)]
pub struct Taken {
    pub routing_key: String,
    pub body: Vec<u8>,
    pub reason: Option<String>,
}

/// Takes (and acks) every message now in `queue`.
pub async fn take_all(queue: QueueName) -> Vec<Taken> {
    let (conn, ch) = raw_channel().await;
    let mut out = Vec::new();
    while let Some(msg) = ch
        .basic_get(queue.name(), BasicGetOptions::default())
        .await
        .expect("basic_get")
    {
        let reason = msg
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(REASON_HEADER))
            .and_then(|v| match v {
                AMQPValue::LongString(s) => Some(s.to_string()),
                AMQPValue::ShortString(s) => Some(s.to_string()),
                _ => None,
            });
        out.push(Taken {
            routing_key: msg.delivery.routing_key.to_string(),
            body: msg.delivery.data.clone(),
            reason,
        });
        msg.delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = conn.close(200, "done").await;
    out
}

/// A file of the shared test corpus (`../shared/corpus`, or `THUMBFARM_CORPUS`).
/// Fails the test, naming `THUMBFARM_CORPUS`, when the file is missing.
pub fn corpus(rel: &str) -> PathBuf {
    let path = std::env::var_os("THUMBFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
        .join(rel);
    assert!(
        path.exists(),
        "test input missing: {} (set THUMBFARM_CORPUS)",
        path.display()
    );
    path
}

/// Waits until `cond` holds, polling, for at most `secs`.
pub async fn eventually<F, Fut>(secs: u64, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
