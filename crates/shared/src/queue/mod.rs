//! Messaging: one trait, two implementations (AMQP through `lapin`, and an
//! in-process queue with the same ack/nack/redelivery/dead-letter semantics).
//! The topology is docs/contracts.md §5; see [`topology`].

mod amqp;
mod claims;
mod interface;
mod memory;
pub mod topology;

pub use amqp::{AmqpQueue, AmqpSettings};
pub use interface::*;
pub use memory::MemoryQueue;
pub use topology::{Exchange, QueueName};
