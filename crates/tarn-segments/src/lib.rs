//! Data segments as the control plane sees them: what a segment is ([`SegmentDef`]: its stream,
//! its delivery settings and its table), Firehose's prefix expressions ([`prefix`]), and the
//! registry ([`Segments`]) that persists the segments created through the Firehose API and tells
//! the runner (the delivery threads, wired by the binary) to start and stop them.
//!
//! Free of Arrow and Iceberg, so the API layer can depend on it.

pub mod partition_query;
pub mod prefix;
mod registry;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use registry::{Runner, SegmentError, Segments};

/// Where a segment's records come from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SourceKind {
    /// Producers call Firehose's PutRecord/PutRecordBatch (or Kinesis's, on the segment's stream).
    DirectPut,
    /// An existing Kinesis stream; delivery starts with what arrives after creation.
    KinesisStreamAsSource,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::DirectPut => "DirectPut",
            SourceKind::KinesisStreamAsSource => "KinesisStreamAsSource",
        }
    }
}

/// The OpenX JSON SerDe options of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JsonOptions {
    pub case_insensitive: bool,
    pub dots_to_underscores: bool,
    pub column_to_key: BTreeMap<String, String>,
    pub timestamp_columns: Vec<String>,
    /// Empty: values that fit no column send their record to the error output.
    pub rescue_column: String,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            case_insensitive: true,
            dots_to_underscores: false,
            column_to_key: BTreeMap::new(),
            timestamp_columns: Vec::new(),
            rescue_column: "_rescued".into(),
        }
    }
}

fn default_compact_min_files() -> usize {
    8
}
fn default_compact_small_mib() -> u64 {
    2
}
fn default_snapshot_retention_hours() -> u64 {
    24
}

/// One data segment: a stream, its delivery and its table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentDef {
    /// The delivery stream's name (`<layer>.<table>` for segments declared in `tarn.toml`).
    pub name: String,
    /// The layer: the table's Iceberg namespace.
    pub layer: String,
    pub table: String,
    pub source: SourceKind,
    /// The stream delivery reads (for DirectPut, the segment's own stream).
    pub stream: String,
    /// As given to CreateDeliveryStream; Tarn does not assume roles, it shows them back.
    pub role_arn: String,
    pub bucket_arn: String,
    /// Firehose `Prefix` and `ErrorOutputPrefix` as given (`None`: Tarn's Hive hour folders).
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub size_mib: u64,
    pub interval_seconds: u64,
    /// Parquet compression: snappy, zstd, gzip or none.
    pub compression: String,
    pub json: JsonOptions,
    /// A declared schema as JSON text (see `TableSchema::from_declared`); `None`: inferred.
    #[serde(default)]
    pub declared_schema: Option<String>,
    /// Dynamic partitioning: the MetadataExtraction query (`{key: .path, ...}`) whose keys the
    /// prefix uses as `!{partitionKeyFromQuery:key}`; `None`: off.
    #[serde(default)]
    pub partition_query: Option<String>,
    /// The record field whose time fills `!{timestamp:...}` (a path such as `Status.Updated`);
    /// `None`: the arrival time.
    #[serde(default)]
    pub partition_time_field: Option<String>,
    /// Days the raw backup of the source records is kept; 0: no backup.
    #[serde(default)]
    pub backup_days: u32,
    /// Compaction: a data folder's files below `compact_small_mib` are rewritten into one once
    /// there are `compact_min_files` of them; 0 files: never.
    #[serde(default = "default_compact_min_files")]
    pub compact_min_files: usize,
    #[serde(default = "default_compact_small_mib")]
    pub compact_small_mib: u64,
    /// Snapshots older than this are expired and the files only they used deleted; 0: never.
    #[serde(default = "default_snapshot_retention_hours")]
    pub snapshot_retention_hours: u64,
    pub tags: BTreeMap<String, String>,
    /// Firehose's `VersionId`: 1, then one more at each UpdateDestination.
    pub version: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Declared in `tarn.toml`: not persisted by the registry, not deletable through the API.
    #[serde(default)]
    pub declared: bool,
}

impl SegmentDef {
    /// A segment named `name`, delivering `stream` into `layer.table`, with Firehose's defaults
    /// (5 MiB or 300 s buffering, snappy, OpenX defaults, no backup) and Tarn's (compaction at 8
    /// files under 2 MiB, snapshots kept 24 h).
    pub fn new(name: &str, layer: &str, table: &str, source: SourceKind, stream: &str, now_ms: i64) -> SegmentDef {
        SegmentDef {
            name: name.to_owned(),
            layer: layer.to_owned(),
            table: table.to_owned(),
            source,
            stream: stream.to_owned(),
            role_arn: String::new(),
            bucket_arn: String::new(),
            prefix: None,
            error_prefix: None,
            size_mib: 5,
            interval_seconds: 300,
            compression: "snappy".into(),
            json: JsonOptions::default(),
            declared_schema: None,
            partition_query: None,
            partition_time_field: None,
            backup_days: 0,
            compact_min_files: default_compact_min_files(),
            compact_small_mib: default_compact_small_mib(),
            snapshot_retention_hours: default_snapshot_retention_hours(),
            tags: BTreeMap::new(),
            version: 1,
            created_ms: now_ms,
            updated_ms: now_ms,
            declared: false,
        }
    }

    /// The data and error prefixes, checked by Firehose's rules.
    pub fn prefixes(&self) -> Result<prefix::Prefixes, prefix::PrefixError> {
        let query = self.query().map_err(prefix::PrefixError)?;
        let keys: Option<Vec<&str>> = query.as_ref().map(|q| q.keys().collect());
        match (&self.prefix, &self.error_prefix, &keys) {
            (None, None, None) => Ok(prefix::Prefixes::hive()),
            (p, e, keys) => prefix::Prefixes::with_partition_keys(p.as_deref(), e.as_deref(), keys.as_deref()),
        }
    }

    /// The dynamic partitioning query, parsed.
    pub fn query(&self) -> Result<Option<partition_query::PartitionQuery>, String> {
        self.partition_query.as_deref().map(partition_query::PartitionQuery::parse).transpose()
    }
}
