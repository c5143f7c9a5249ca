//! The RabbitMQ topology of docs/contracts.md §5, as data both backends use.

use serde::Serialize;
use std::fmt;

/// The exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `thumbfarm.jobs` (direct): `render.ondemand`, `render.bulk`, `transcode`.
    Jobs,
    /// `thumbfarm.events` (topic): `rendered.<hash>`, `transcoded.<hash>`, `failed.<hash>`.
    Events,
    /// `thumbfarm.ingest` (topic): `file.created`, S3 notifications.
    Ingest,
    /// `thumbfarm.dlx` (fanout) → `thumbfarm.dead`.
    DeadLetter,
}

impl Exchange {
    /// The exchange name on the broker.
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Jobs => "thumbfarm.jobs",
            Exchange::Events => "thumbfarm.events",
            Exchange::Ingest => "thumbfarm.ingest",
            Exchange::DeadLetter => "thumbfarm.dlx",
        }
    }

    /// Every exchange.
    pub const ALL: [Exchange; 4] = [
        Exchange::Jobs,
        Exchange::Events,
        Exchange::Ingest,
        Exchange::DeadLetter,
    ];
}

/// The durable queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum QueueName {
    RenderOnDemand,
    RenderBulk,
    Transcode,
    Ingest,
    Dead,
}

/// Routing keys on `thumbfarm.jobs`.
pub mod routing {
    pub const RENDER_ONDEMAND: &str = "render.ondemand";
    pub const RENDER_BULK: &str = "render.bulk";
    pub const TRANSCODE: &str = "transcode";
    pub const FILE_CREATED: &str = "file.created";
}

impl QueueName {
    /// Every queue.
    pub const ALL: [QueueName; 5] = [
        QueueName::RenderOnDemand,
        QueueName::RenderBulk,
        QueueName::Transcode,
        QueueName::Ingest,
        QueueName::Dead,
    ];

    /// The queue name on the broker.
    pub fn name(self) -> &'static str {
        match self {
            QueueName::RenderOnDemand => "thumbfarm.render.ondemand",
            QueueName::RenderBulk => "thumbfarm.render.bulk",
            QueueName::Transcode => "thumbfarm.transcode",
            QueueName::Ingest => "thumbfarm.ingest",
            QueueName::Dead => "thumbfarm.dead",
        }
    }

    /// The exchange and binding key that feed this queue.
    pub fn binding(self) -> (Exchange, &'static str) {
        match self {
            QueueName::RenderOnDemand => (Exchange::Jobs, routing::RENDER_ONDEMAND),
            QueueName::RenderBulk => (Exchange::Jobs, routing::RENDER_BULK),
            QueueName::Transcode => (Exchange::Jobs, routing::TRANSCODE),
            // Everything published to the ingest exchange (file.created and
            // whatever routing keys an S3 server's notifications use).
            QueueName::Ingest => (Exchange::Ingest, "#"),
            QueueName::Dead => (Exchange::DeadLetter, ""),
        }
    }

    /// Whether messages over the delivery limit are dead-lettered from here.
    pub fn has_dead_letter(self) -> bool {
        self != QueueName::Dead
    }

    /// The queue a job routing key lands in.
    pub fn for_routing_key(exchange: Exchange, routing_key: &str) -> Option<QueueName> {
        QueueName::ALL.into_iter().find(|q| {
            let (ex, key) = q.binding();
            ex == exchange && (key == "#" || key.is_empty() || key == routing_key)
        })
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a topic binding key (`rendered.*`, `#`, `failed.<hash>`) matches a
/// routing key, with AMQP's rules (`*` one word, `#` zero or more words).
pub fn topic_matches(binding: &str, routing_key: &str) -> bool {
    fn go(b: &[&str], r: &[&str]) -> bool {
        match (b.first(), r.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&b[1..], r) || (!r.is_empty() && go(b, &r[1..])),
            (Some(&"*"), Some(_)) => go(&b[1..], &r[1..]),
            (Some(x), Some(y)) if x == y => go(&b[1..], &r[1..]),
            _ => false,
        }
    }
    let b: Vec<&str> = binding.split('.').collect();
    let r: Vec<&str> = routing_key.split('.').collect();
    go(&b, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_find_their_queue() {
        assert_eq!(
            QueueName::for_routing_key(Exchange::Jobs, "render.ondemand"),
            Some(QueueName::RenderOnDemand)
        );
        assert_eq!(
            QueueName::for_routing_key(Exchange::Ingest, "file.created"),
            Some(QueueName::Ingest)
        );
        assert_eq!(QueueName::for_routing_key(Exchange::Jobs, "nope"), None);
    }

    #[test]
    fn topic_matching() {
        assert!(topic_matches("#", "rendered.abc"));
        assert!(topic_matches("rendered.*", "rendered.abc"));
        assert!(!topic_matches("rendered.*", "failed.abc"));
        assert!(topic_matches("*.abc", "failed.abc"));
        assert!(topic_matches("a.#.c", "a.c"));
        assert!(topic_matches("a.#.c", "a.b.b.c"));
        assert!(!topic_matches("a.*", "a"));
    }
}
