//! Queue statistics from RabbitMQ's management HTTP API, when it is
//! configured (`--rabbitmq-management-url`).
//!
//! AMQP itself tells a client only the ready count and the consumers of a
//! queue. The management API (plugin `rabbitmq_management`) adds what a
//! dashboard needs beside them: messages delivered and not yet acknowledged,
//! and the publish, deliver and ack rates the broker measures. Without it
//! the API falls back to AMQP (`unacked` stays 0, no rates).

use crate::urls::percent_decode;
use serde::Deserialize;
use std::time::Duration;
use thumbfarm_shared::config::ConfigError;
use thumbfarm_shared::queue::{QueueName, QueueStats};

/// What the management API says about one thumbfarm queue.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerQueue {
    /// Ready, unacked and consumers, as `Queue::stats()` reports them.
    pub stats: QueueStats,
    /// Messages published into the queue per second.
    pub publish_rate: f64,
    /// Messages delivered to consumers per second.
    pub deliver_rate: f64,
    /// Messages acknowledged per second.
    pub ack_rate: f64,
}

/// The option that configures the client.
const OPTION: &str = "--rabbitmq-management-url";

fn option_error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(OPTION, message)
}

/// Why the management API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The request failed or the answer was not understood.
    #[error("RabbitMQ management API: {0}")]
    Request(String),
}

/// A client of the management API for one virtual host.
#[derive(Debug, Clone)]
pub struct ManagementApi {
    client: reqwest::Client,
    /// `http(s)://host:port[/prefix]`, without credentials or trailing slash.
    base: String,
    user: String,
    password: String,
    vhost: String,
}

#[derive(Deserialize)]
struct Rate {
    #[serde(default)]
    rate: f64,
}

#[derive(Deserialize, Default)]
struct MessageStats {
    publish_details: Option<Rate>,
    deliver_get_details: Option<Rate>,
    ack_details: Option<Rate>,
}

#[derive(Deserialize)]
struct QueueJson {
    name: String,
    #[serde(default)]
    messages_ready: Option<u64>,
    #[serde(default)]
    messages_unacknowledged: Option<u64>,
    #[serde(default)]
    consumers: Option<u32>,
    #[serde(default)]
    message_stats: Option<MessageStats>,
}

/// Percent-encodes a path segment (the vhost `/` is `%2F`).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The virtual host of an AMQP URL (`/` when the path is empty).
pub fn vhost_of(amqp_url: &str) -> String {
    let rest = amqp_url.split_once("://").map_or(amqp_url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() {
        "/".to_string()
    } else {
        percent_decode(path)
    }
}

impl ManagementApi {
    /// A client for `url` (`http://user:pass@host:15672`; credentials default
    /// to guest/guest) and the vhost of `amqp_url`.
    pub fn new(url: &str, amqp_url: Option<&str>) -> Result<Self, ConfigError> {
        let url = url.trim().trim_end_matches('/');
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| option_error("must start with http:// or https://"))?;
        let (auth, host) = match rest.rsplit_once('@') {
            Some((auth, host)) => (Some(auth), host),
            None => (None, rest),
        };
        if host.is_empty() {
            return Err(option_error("no host"));
        }
        let (user, password) = match auth {
            Some(a) => {
                let (u, p) = a.split_once(':').unwrap_or((a, ""));
                (percent_decode(u), percent_decode(p))
            }
            None => ("guest".to_string(), "guest".to_string()),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| option_error(e.to_string()))?;
        Ok(ManagementApi {
            client,
            base: format!("{scheme}://{host}"),
            user,
            password,
            vhost: amqp_url.map_or_else(|| "/".to_string(), vhost_of),
        })
    }

    /// The thumbfarm queues of the vhost, in [`QueueName::ALL`] order.
    pub async fn queues(&self) -> Result<Vec<BrokerQueue>, ManagementError> {
        let url = format!("{}/api/queues/{}", self.base, encode_segment(&self.vhost));
        let response = self
            .client
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| ManagementError::Request(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ManagementError::Request(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        let all: Vec<QueueJson> = response
            .json()
            .await
            .map_err(|e| ManagementError::Request(format!("GET {url}: {e}")))?;
        Ok(thumbfarm_queues(all))
    }
}

/// The client for `--rabbitmq-management-url`, when it is set (and not empty).
pub fn from_option(
    url: Option<&str>,
    amqp_url: Option<&str>,
) -> Result<Option<ManagementApi>, ConfigError> {
    url.map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| ManagementApi::new(u, amqp_url))
        .transpose()
}

fn thumbfarm_queues(all: Vec<QueueJson>) -> Vec<BrokerQueue> {
    let rate = |r: &Option<Rate>| r.as_ref().map_or(0.0, |r| r.rate);
    QueueName::ALL
        .iter()
        .filter_map(|name| {
            let q = all.iter().find(|q| q.name == name.name())?;
            let stats = q.message_stats.as_ref();
            Some(BrokerQueue {
                stats: QueueStats {
                    queue: q.name.clone(),
                    ready: q.messages_ready.unwrap_or(0),
                    unacked: q.messages_unacknowledged.unwrap_or(0),
                    consumers: q.consumers.unwrap_or(0),
                },
                publish_rate: stats.map_or(0.0, |s| rate(&s.publish_details)),
                deliver_rate: stats.map_or(0.0, |s| rate(&s.deliver_get_details)),
                ack_rate: stats.map_or(0.0, |s| rate(&s.ack_details)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_credentials_and_vhosts() {
        let m = ManagementApi::new("http://admin:s%40cret@rabbit:15672/", None).unwrap();
        assert_eq!(m.base, "http://rabbit:15672");
        assert_eq!((m.user.as_str(), m.password.as_str()), ("admin", "s@cret"));
        assert_eq!(m.vhost, "/");
        let m = ManagementApi::new("https://rabbit", Some("amqp://u:p@h:5672/photos")).unwrap();
        assert_eq!((m.user.as_str(), m.vhost.as_str()), ("guest", "photos"));
        assert_eq!(
            ManagementApi::new("rabbit:15672", None)
                .unwrap_err()
                .to_string(),
            "invalid option --rabbitmq-management-url: must start with http:// or https://"
        );
        assert!(ManagementApi::new("http://", None).is_err());
        assert_eq!(vhost_of("amqp://guest:guest@127.0.0.1:5672/%2f"), "/");
        assert_eq!(vhost_of("amqp://127.0.0.1:5672"), "/");
        assert_eq!(encode_segment("/"), "%2F");
        assert_eq!(percent_decode("a%2fb%zz%%+1"), "a/b%zz%%+1");
        assert_eq!(percent_decode("\u{e9}%4"), "\u{e9}%4");
    }

    #[test]
    fn parses_the_queue_list() {
        let json = r#"[
          {"name":"thumbfarm.render.bulk","messages_ready":7,"messages_unacknowledged":3,"consumers":2,
           "message_stats":{"publish_details":{"rate":1.5},"deliver_get_details":{"rate":0.5},"ack_details":{"rate":0.25}}},
          {"name":"thumbfarm.dead"},
          {"name":"someone.else","messages_ready":99}
        ]"#;
        let all: Vec<QueueJson> = serde_json::from_str(json).unwrap();
        let qs = thumbfarm_queues(all);
        assert_eq!(qs.len(), 2);
        let bulk = qs
            .iter()
            .find(|q| q.stats.queue == "thumbfarm.render.bulk")
            .unwrap();
        assert_eq!(
            (bulk.stats.ready, bulk.stats.unacked, bulk.stats.consumers),
            (7, 3, 2)
        );
        assert_eq!(
            (bulk.publish_rate, bulk.deliver_rate, bulk.ack_rate),
            (1.5, 0.5, 0.25)
        );
        let dead = qs
            .iter()
            .find(|q| q.stats.queue == "thumbfarm.dead")
            .unwrap();
        assert_eq!(dead.stats.ready, 0);
    }
}
