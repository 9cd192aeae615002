//! Delivery: the wire-tap half of a data segment. It reads a stream's shard logs (only what is
//! durable), buffers records by size and interval (Firehose's BufferingHints), converts JSON to
//! Arrow with the table's schema, evolving it as fields appear (`tarn-convert`), and commits
//! Parquet files in Hive-style hour folders to the segment's Iceberg table (`tarn-lake`).
//!
//! Exactly once: each flush is one Iceberg commit whose snapshot summary also holds the cursor,
//! the last delivered sequence number of every shard ([`cursor`]). After a crash, delivery
//! resumes from the committed cursor: what was buffered and not committed is read again from the
//! log, and what was committed is not.
//!
//! Layout: `cursor` (positions, checkpoints, reshard order) · `prepare` (records → batches per
//! hour folder and error documents; pure) · `worker` (the loop, its thread, flush and retry) ·
//! `maintenance` (compaction and expiry on their own thread) · `tail` (what queries read
//! of records not yet delivered) · `backup` · `kpl` · `parallel` (work over a few threads).

pub mod backup;
pub mod cursor;
pub mod kpl;
mod maintenance;
mod parallel;
pub mod prepare;
mod tail;
mod worker;

pub use tail::{TailReader, TailRows};
pub use worker::{Delivery, DeliverySpec};
