//! Tarn's configuration.
//!
//! Three layers, each overriding the one before: the defaults (documented in the shipped, fully
//! commented `tarn.toml`), the config file, and `TARN_*` environment variables; command-line
//! flags are applied by the binary on top. Environment names are the key path in upper case with
//! `__` between section and key: `TARN_LISTEN`, `TARN_KINESIS__SHARD_LIMIT`.
//! [`Config::load`] returns settings that passed [`Config::validate`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The access key Tarn accepts when none is configured, for local development only.
pub const DEV_ACCESS_KEY: &str = "tarn";
pub const DEV_SECRET_KEY: &str = "tarn-dev-secret";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{key} {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address for the AWS APIs, /metrics and /health.
    pub listen: String,
    /// Everything Tarn stores lives under this directory.
    pub data_dir: PathBuf,
    /// Log filter, as RUST_LOG would take it.
    pub log: String,
    pub auth: AuthConfig,
    pub kinesis: KinesisConfig,
    pub storage: StorageConfig,
    pub lake: LakeConfig,
    pub query: QueryConfig,
    /// Data segments declared in the file: each a stream, its delivery and its lake table.
    pub segments: Vec<SegmentConfig>,
    /// Crawls run on a schedule (`tarn crawl` runs one at once).
    pub crawlers: Vec<CrawlerConfig>,
}

/// One `[[crawlers]]` entry: a folder crawled every `interval_minutes`, from the server's start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrawlerConfig {
    /// `s3://bucket/prefix`, or a folder of the lake's storage.
    pub location: String,
    /// The layer the tables go into.
    pub layer: String,
    /// One table for the whole location, with this name.
    #[serde(default)]
    pub table: Option<String>,
    pub interval_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Verify AWS Signature Version 4 on every request.
    pub enabled: bool,
    pub credentials: Vec<Credential>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    pub account_id: String,
    pub region: String,
    pub shard_limit: u32,
    pub max_record_bytes: usize,
    pub max_put_records_bytes: usize,
    pub max_put_records_entries: usize,
    pub max_get_records_bytes: usize,
    pub max_get_records_entries: usize,
    pub iterator_ttl_seconds: u64,
    pub max_tags_per_stream: usize,
    pub max_consumers_per_stream: usize,
    pub transition_ms: u64,
    pub shard_throughput_limits: bool,
    pub max_request_bytes: usize,
    pub retention_check_seconds: u64,
    pub subscription_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub segment_max_bytes: u64,
    pub segment_max_age_seconds: u64,
    /// Under concurrent load, a shard's log fsyncs at most once per this many microseconds, so that
    /// more appends share each fsync. A lone writer never waits for it; 0 fsyncs at once.
    pub sync_interval_micros: u64,
    /// MiB of each shard's newest records kept for readers at the head: in memory with direct
    /// I/O, otherwise as pages in the page cache. Older ones (and those delivery has committed to
    /// the lake) are let go and read from disk if needed.
    pub cache_window_mib: u64,
    /// The log writes with direct I/O (O_DIRECT) where the file system supports it: no copy into
    /// the page cache and no writeback; readers at the head are served from memory.
    pub direct_io: bool,
}

/// Where the lake's files (tables' data and metadata, error output, raw backup) live. The
/// catalog stays under the data directory either way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Empty: `<data_dir>/lake`. Otherwise `s3://bucket/prefix` on an S3-compatible service.
    pub url: String,
    /// `http(s)://host[:port]` of the S3-compatible service; empty: AWS's regional endpoint.
    pub endpoint: String,
    pub region: String,
    /// Empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `endpoint/bucket/key` requests; unset: path style when an endpoint is given, else
    /// virtual-host style (`bucket.endpoint/key`).
    pub path_style: Option<bool>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            url: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            path_style: None,
        }
    }
}

/// SQL over the lake (`tarn query`, `/v1/query`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Queries also read what segments acknowledged but have not delivered yet (their tail), so
    /// records are visible about as soon as they are acknowledged.
    pub include_tail: bool,
    /// A query refuses a segment whose undelivered tail holds more record data than this (it
    /// would be held in memory); delivery catching up shrinks it.
    pub max_tail_mib: u64,
    /// Partitions a scan is split into; 0: one per core.
    pub target_partitions: usize,
    /// Athena API: queries that run at once (the others wait as QUEUED).
    pub max_running_queries: usize,
    /// Athena API: queued and running queries together; StartQueryExecution refuses more with
    /// TooManyRequestsException.
    pub max_active_queries: usize,
    /// Athena API: memory kept for finished queries' results (oldest dropped first); a single
    /// larger result fails its query.
    pub max_results_mib: u64,
    /// Athena API: finished query executions remembered for GetQueryExecution and
    /// ListQueryExecutions.
    pub kept_executions: usize,
    /// CREATE TABLE [AS SELECT], INSERT INTO and DROP TABLE run; `false`: reads only.
    pub allow_writes: bool,
    /// Most partitions one CREATE TABLE AS or INSERT INTO may write.
    pub max_write_partitions: usize,
    /// Optimized plans kept for statements sent again (planned once, then reused with each
    /// query's own snapshot of its tables); 0: plan every statement.
    pub kept_plans: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            include_tail: true,
            max_tail_mib: 1024,
            target_partitions: 0,
            max_running_queries: 4,
            max_active_queries: 100,
            max_results_mib: 512,
            kept_executions: 10_000,
            allow_writes: true,
            max_write_partitions: 1000,
            kept_plans: 256,
        }
    }
}

/// One `[[segments]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// The layer: the table's Iceberg namespace.
    pub layer: String,
    /// The segment's name: the table's name; the stream is `<layer>.<name>`.
    pub name: String,
    #[serde(default = "default_shards")]
    pub shards: u32,
    #[serde(default = "default_retention_hours")]
    pub retention_hours: u32,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// A declared schema (`{ name = "string", gps = { lat = "double" }, tags = ["string"] }`):
    /// the table is created with it and it does not evolve; fields it lacks are ignored.
    /// Without one, the schema is inferred and evolves.
    #[serde(default)]
    pub schema: Option<toml::Value>,
}

fn default_shards() -> u32 {
    1
}
fn default_retention_hours() -> u32 {
    24
}

/// How a segment's records are delivered into its table (Firehose's BufferingHints and the
/// OpenX JSON options).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Flush when this much record data is buffered (measured before compression).
    pub size_mib: u64,
    /// Flush this long after the first buffered record arrived, whatever the size; 0 flushes
    /// whatever each read brings.
    pub interval_seconds: u64,
    /// Parquet compression: snappy, zstd, gzip or none.
    pub compression: String,
    /// JSON keys match columns whatever their case (OpenX's default).
    pub case_insensitive: bool,
    /// `a.b` keys become `a_b` columns (OpenX `ConvertDotsInJsonKeysToUnderscores`).
    pub dots_to_underscores: bool,
    /// Columns that are timestamps whatever their first values look like (epoch numbers too).
    pub timestamp_columns: Vec<String>,
    /// OpenX `ColumnToJsonKeyMappings`: column name → the top-level JSON key it is read from
    /// (for keys that are not valid column names, such as `"ts"` for a key `"@timestamp"`).
    pub column_to_key: BTreeMap<String, String>,
    /// Column that keeps values which fit no column; empty sends such records to the error output.
    pub rescue_column: String,
    /// The record field (a path like `EventTime` or `Status.Updated`, ISO-8601 or epoch) whose
    /// time fills the prefix's `!{timestamp:...}` folders; empty: the arrival time. Records
    /// without a usable value go to the error output (`partitioning-failed`).
    pub partition_time_field: String,
    /// Keep the source records as gzip'd JSON lines under `lake/backup/` for this many days; 0: no backup.
    pub backup_days: u32,
    /// Compaction: once a data folder holds this many files smaller than `compact_small_mib`,
    /// they are rewritten into one (one atomic commit); 0: never.
    pub compact_min_files: usize,
    pub compact_small_mib: u64,
    /// Table snapshots older than this are expired and the files only they used (those a
    /// compaction replaced) deleted; 0: never.
    pub snapshot_retention_hours: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            size_mib: 64,
            interval_seconds: 60,
            compression: "snappy".into(),
            case_insensitive: true,
            dots_to_underscores: false,
            timestamp_columns: Vec::new(),
            column_to_key: BTreeMap::new(),
            rescue_column: "_rescued".into(),
            partition_time_field: String::new(),
            backup_days: 30,
            compact_min_files: 8,
            compact_small_mib: 2,
            snapshot_retention_hours: 24,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:4567".into(),
            data_dir: PathBuf::from("./tarn-data"),
            log: "info".into(),
            auth: AuthConfig::default(),
            kinesis: KinesisConfig::default(),
            storage: StorageConfig::default(),
            lake: LakeConfig::default(),
            query: QueryConfig::default(),
            segments: Vec::new(),
            crawlers: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { enabled: true, credentials: Vec::new() }
    }
}

impl Default for KinesisConfig {
    fn default() -> Self {
        KinesisConfig {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            shard_limit: 1000,
            max_record_bytes: 1024 * 1024,
            max_put_records_bytes: 5 * 1024 * 1024,
            max_put_records_entries: 500,
            max_get_records_bytes: 10 * 1024 * 1024,
            max_get_records_entries: 10_000,
            iterator_ttl_seconds: 300,
            max_tags_per_stream: 50,
            max_consumers_per_stream: 20,
            transition_ms: 0,
            shard_throughput_limits: false,
            max_request_bytes: 8 * 1024 * 1024,
            retention_check_seconds: 60,
            subscription_seconds: 300,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            segment_max_bytes: 128 * 1024 * 1024,
            segment_max_age_seconds: 3600,
            sync_interval_micros: 5000,
            cache_window_mib: 128,
            direct_io: false,
        }
    }
}

/// Turns `TARN_KINESIS__SHARD_LIMIT` into `["kinesis", "shard_limit"]`.
fn env_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix("TARN_")?;
    if rest == "CONFIG" || rest.is_empty() {
        return None;
    }
    Some(rest.split("__").map(|p| p.to_ascii_lowercase()).collect())
}

/// Reads an environment value as TOML (numbers, booleans, arrays), or as a plain string.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<BTreeMap<String, toml::Value>>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut m| m.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

impl Config {
    /// Reads the file (if any), applies `env` overrides, and validates the result.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse { path: path.display().to_string(), message: e.to_string() })?
            }
            None => toml::Table::new(),
        };
        for (name, raw) in env {
            let Some(path) = env_path(&name) else { continue };
            let (last, sections) = path.split_last().expect("non-empty path");
            let mut at = &mut table;
            for section in sections {
                at = at
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Env {
                        name: name.clone(),
                        message: format!("{section} is not a section"),
                    })?;
            }
            at.insert(last.clone(), env_value(&raw));
        }
        let source = file.map_or_else(|| "defaults and environment".to_owned(), |p| p.display().to_string());
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse { path: source, message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        fn at_least(key: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
            if value < min {
                return Err(ConfigError::Invalid { key, message: format!("must be at least {min}; got {value}") });
            }
            Ok(())
        }
        let k = &self.kinesis;
        if k.account_id.len() != 12 || !k.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                key: "kinesis.account_id",
                message: format!("must be 12 digits, as AWS account ids are; got {:?}", k.account_id),
            });
        }
        at_least("kinesis.shard_limit", u64::from(k.shard_limit), 1)?;
        at_least("kinesis.max_record_bytes", k.max_record_bytes as u64, 1)?;
        at_least("kinesis.max_put_records_bytes", k.max_put_records_bytes as u64, k.max_record_bytes as u64)?;
        at_least("kinesis.max_put_records_entries", k.max_put_records_entries as u64, 1)?;
        at_least("kinesis.max_get_records_bytes", k.max_get_records_bytes as u64, 1)?;
        at_least("kinesis.max_get_records_entries", k.max_get_records_entries as u64, 1)?;
        at_least("kinesis.iterator_ttl_seconds", k.iterator_ttl_seconds, 1)?;
        at_least("kinesis.max_request_bytes", k.max_request_bytes as u64, 1024)?;
        at_least("kinesis.retention_check_seconds", k.retention_check_seconds, 1)?;
        at_least("kinesis.subscription_seconds", k.subscription_seconds, 1)?;
        at_least("storage.segment_max_bytes", self.storage.segment_max_bytes, 4096)?;
        at_least("storage.segment_max_age_seconds", self.storage.segment_max_age_seconds, 1)?;
        if self.storage.sync_interval_micros > 1_000_000 {
            return Err(ConfigError::Invalid {
                key: "storage.sync_interval_micros",
                message: format!(
                    "must be at most 1000000 (one second): acknowledgements under load wait up to this long; got {}",
                    self.storage.sync_interval_micros
                ),
            });
        }
        at_least("query.max_tail_mib", self.query.max_tail_mib, 1)?;
        for c in &self.crawlers {
            at_least("crawlers.interval_minutes", c.interval_minutes, 1)?;
        }
        at_least("query.max_write_partitions", self.query.max_write_partitions as u64, 1)?;
        if !self.lake.url.is_empty() && !self.lake.url.starts_with("s3://") {
            return Err(ConfigError::Invalid {
                key: "lake.url",
                message: format!("must be empty (the data directory) or s3://bucket/prefix; got {:?}", self.lake.url),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for seg in &self.segments {
            let name_ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 60
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            if !name_ok(&seg.layer) || !name_ok(&seg.name) {
                return Err(ConfigError::Invalid {
                    key: "segments",
                    message: format!(
                        "layer and name must be 1 to 60 of a-z, 0-9 and _ (they name a table and a stream); got {}.{}",
                        seg.layer, seg.name
                    ),
                });
            }
            if !seen.insert((seg.layer.clone(), seg.name.clone())) {
                return Err(ConfigError::Invalid {
                    key: "segments",
                    message: format!("{}.{} is declared twice", seg.layer, seg.name),
                });
            }
            at_least("segments.shards", u64::from(seg.shards), 1)?;
            if !(24..=8760).contains(&seg.retention_hours) {
                return Err(ConfigError::Invalid {
                    key: "segments.retention_hours",
                    message: format!("must be 24 to 8760; got {}", seg.retention_hours),
                });
            }
            at_least("segments.delivery.size_mib", seg.delivery.size_mib, 1)?;
            if !["snappy", "zstd", "gzip", "none"].contains(&seg.delivery.compression.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "segments.delivery.compression",
                    message: format!("must be snappy, zstd, gzip or none; got {:?}", seg.delivery.compression),
                });
            }
        }
        for c in &self.auth.credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "auth.credentials",
                    message: "every entry needs a non-empty access_key_id and secret_access_key".into(),
                });
            }
        }
        Ok(())
    }

    /// Access key → secret, or `None` when authentication is off. With authentication on and no
    /// key configured, the development key pair is used.
    pub fn credentials(&self) -> Option<BTreeMap<String, String>> {
        if !self.auth.enabled {
            return None;
        }
        let mut keys: BTreeMap<String, String> =
            self.auth.credentials.iter().map(|c| (c.access_key_id.clone(), c.secret_access_key.clone())).collect();
        if keys.is_empty() {
            keys.insert(DEV_ACCESS_KEY.into(), DEV_SECRET_KEY.into());
        }
        Some(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../tarn.toml");

    #[test]
    fn the_shipped_file_parses_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tarn.toml");
        std::fs::write(&path, SHIPPED).unwrap();
        let from_file = Config::load(Some(&path), []).unwrap();
        let defaults = Config::default();
        assert_eq!(toml::to_string(&from_file).unwrap(), toml::to_string(&defaults).unwrap());
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tarn.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:1\"\n[kinesis]\nshard_limit = 7\n").unwrap();
        let env = [
            ("TARN_LISTEN".to_string(), "127.0.0.1:9".to_string()),
            ("TARN_KINESIS__SHARD_LIMIT".into(), "12".into()),
            ("TARN_AUTH__ENABLED".into(), "false".into()),
            ("UNRELATED".into(), "x".into()),
        ];
        let c = Config::load(Some(&path), env).unwrap();
        assert_eq!((c.listen.as_str(), c.kinesis.shard_limit, c.auth.enabled), ("127.0.0.1:9", 12, false));
        assert!(c.credentials().is_none());
    }

    #[test]
    fn mistakes_are_reported_with_their_key() {
        let bad = Config::load(None, [("TARN_KINESIS__ACCOUNT_ID".to_string(), "\"123\"".to_string())]).unwrap_err();
        assert!(bad.to_string().starts_with("kinesis.account_id must be 12 digits"), "{bad}");
        let typo = Config::load(None, [("TARN_KINESIS__SHARD_LIMT".to_string(), "3".to_string())]).unwrap_err();
        assert!(typo.to_string().contains("shard_limt"), "{typo}");
        let zero =
            Config::load(None, [("TARN_KINESIS__MAX_PUT_RECORDS_ENTRIES".to_string(), "0".to_string())]).unwrap_err();
        assert_eq!(zero.to_string(), "kinesis.max_put_records_entries must be at least 1; got 0");
        let slow = Config::load(None, [("TARN_STORAGE__SYNC_INTERVAL_MICROS".to_string(), "2000000".to_string())])
            .unwrap_err();
        assert!(slow.to_string().starts_with("storage.sync_interval_micros must be at most 1000000"), "{slow}");
    }

    #[test]
    fn without_configured_keys_the_development_key_is_accepted() {
        let c = Config::default();
        assert_eq!(c.credentials().unwrap().get(DEV_ACCESS_KEY).map(String::as_str), Some(DEV_SECRET_KEY));
    }
}
