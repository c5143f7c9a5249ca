//! How the queue depths on `/metrics` are polled (the API and the planner
//! both poll them).

use super::values::parse_seconds;
use clap::Args;
use std::time::Duration;

/// Polling of the queue depths for `/metrics`.
#[derive(Args, Debug, Clone)]
pub struct QueueStatsArgs {
    /// Seconds between polls of the queue depths for /metrics.
    #[arg(long, env = "THUMBFARM_QUEUE_STATS_INTERVAL", default_value = "5", value_parser = parse_seconds)]
    pub queue_stats_interval: Duration,
    /// RabbitMQ management API (`http://user:pass@rabbitmq:15672`) for unacked counts and rates on /metrics; unset: AMQP only.
    #[arg(
        long,
        env = "THUMBFARM_RABBITMQ_MANAGEMENT_URL",
        hide_env_values = true
    )]
    pub rabbitmq_management_url: Option<String>,
}
