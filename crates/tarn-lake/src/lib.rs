//! Tarn's lake tables: Apache Iceberg tables in a SQL catalog (SQLite under the data directory by
//! default, the `iceberg_tables` layout pyiceberg and Java's JDBC catalog also read), Parquet data
//! files, and the delivery checkpoint committed in the same snapshot as the data it covers.
//!
//! Exactly once: each delivery flush is one Iceberg commit whose snapshot summary carries
//! `tarn.checkpoint`, a JSON object of the last delivered position of every source shard. The
//! data files and the checkpoint become visible together or not at all (the catalog's
//! compare-and-swap on the metadata location), so after a crash delivery resumes from
//! [`Lake::checkpoint`] without loss or duplicates.
//!
//! Layout: `catalog` (open, namespaces, tables) · `schema` (converter schema → Iceberg) ·
//! `append` (batches → Parquet → fast-append commit) · `checkpoint` · `compact` (rewrite commits) ·
//! `write` (tables SQL creates and fills) · `expire` (snapshot expiry with file removal) · `view` (a snapshot as queries read it) · `describe` (a table as
//! `tarn describe` and Athena show it) · `hive` (folder keys) · `io` (Iceberg file I/O on S3 via `tarn-store`).

mod append;
mod catalog;
mod checkpoint;
mod compact;
mod describe;
mod expire;
pub mod hive;
mod io;
mod partition_split;
mod schema;
mod view;
mod write;

pub use append::{Compression, FileGroup};
pub use catalog::Lake;
pub use checkpoint::CHECKPOINT_PROPERTY;
pub use compact::{Compacted, CompactionPolicy};
pub use describe::{ColumnDescription, PartitionDescription, SnapshotDescription, TableDescription, hive_type};
pub use expire::Expired;
pub use schema::{MissingColumn, from_iceberg_schema, missing_columns, to_iceberg_schema};
pub use tarn_store::Store;
pub use view::{Listing, LiveFile, MetadataCache, TableView};
pub use write::{
    COMPRESSION_PROPERTY, NewTable, PartitionColumn, PartitionTransform, TableWriter, lake_schema, lake_type,
    table_compression,
};

/// Errors of the lake, with the table they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("checkpoint of table {table} is not valid JSON: {message}")]
    Checkpoint { table: String, message: String },
    /// A table of that name is already in the catalog.
    #[error("table {0} already exists")]
    Exists(String),
    /// Another commit came first; try again later.
    #[error("commit conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
