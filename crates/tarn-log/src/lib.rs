//! Tarn's shard log: the durable, ordered storage under every stream shard.
//!
//! Layout: [`codec`] (the batch format, pure functions) → `segment` (one file and its sparse
//! index) → [`ShardLog`] (a directory of segments: append, group-commit fsync, reads up to the
//! durable end, recovery, retention) → `durable` (the fsync awaited as a future, run by a syncer
//! thread). The log knows offsets, not Kinesis: sequence numbers, hash keys and iterators belong
//! to `tarn-streams`.

pub mod codec;
mod direct;
mod durable;
mod error;
mod segment;
mod shard_log;

pub use codec::{Record, RecordRef};
pub use durable::{Durable, SYNCER_IDLE};
pub use error::{Error, Result};
pub use shard_log::{Appended, LogConfig, ReadResult, ShardLog, sync_dir};

#[cfg(test)]
mod tests;
