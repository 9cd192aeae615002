//! Kinesis-compatible streams on top of Tarn's shard log.
//!
//! A stream is a set of shards that divide the 128-bit hash-key space; a record goes to the shard
//! whose range holds MD5(partition key) (or its explicit hash key). This crate owns that domain:
//! [`hash_key`] routing, [`sequence`] numbers, signed iterator [`token`]s, stream and shard
//! [`model`] with durable metadata, resharding, retention and consumers. It speaks no wire
//! protocol; `tarn-api` turns HTTP requests into calls on [`Streams`].
//!
//! Layout: `service` (registry, create/delete) · `put` · `read` (iterators, GetRecords) ·
//! `reshard` · `admin` (retention, tags, mode, consumers, ListShards) · `store` (atomic files).

mod admin;
pub mod config;
pub mod error;
pub mod hash_key;
pub mod model;
mod put;
mod read;
mod reshard;
pub mod sequence;
mod service;
mod store;
mod throttle;
pub mod token;

pub use admin::{Consumer, MAX_RETENTION_HOURS, MIN_RETENTION_HOURS, ShardFilter};
pub use config::StreamsConfig;
pub use error::{Error, ErrorKind, Result};
pub use put::{EntryError, EntryResult, PutEntry, Written, java_buffer};
pub use read::{RecordsPage, StartingPosition};
pub use sequence::{DecimalWriter, SequenceNumber};
pub use service::{
    Clock, CreateStream, ON_DEMAND_SHARDS, StreamSnapshot, StreamUsage, Streams, parse_stream_arn, system_clock,
};
pub use tarn_log::Record;

#[cfg(test)]
mod tests;
