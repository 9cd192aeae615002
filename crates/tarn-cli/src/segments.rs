//! Segments in the running server: those declared in `tarn.toml` (their streams created at
//! start), and the runner that turns every segment of the registry into a delivery thread.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tarn_config::Config;
use tarn_convert::{ConvertOptions, TableSchema};
use tarn_delivery::{Delivery, DeliverySpec};
use tarn_lake::{CompactionPolicy, Compression, Store};
use tarn_metrics::Metrics;
use tarn_segments::{JsonOptions, Runner, SegmentDef, SourceKind};
use tarn_streams::model::StreamMode;
use tarn_streams::{CreateStream, Streams};

/// The segments of the config file, creating the streams that do not exist yet.
pub fn declared(config: &Config, streams: &Streams) -> anyhow::Result<Vec<SegmentDef>> {
    let mut defs = Vec::new();
    for seg in &config.segments {
        let stream = format!("{}.{}", seg.layer, seg.name);
        if streams.snapshot(&stream).is_err() {
            streams
                .create_stream(CreateStream {
                    name: stream.clone(),
                    shard_count: Some(seg.shards),
                    mode: StreamMode::Provisioned,
                    tags: Default::default(),
                    max_record_size_kib: None,
                })
                .with_context(|| format!("cannot create the stream of segment {stream}"))?;
            if seg.retention_hours != 24 {
                streams.change_retention(&stream, seg.retention_hours, true)?;
            }
            tracing::info!(%stream, shards = seg.shards, "created the stream of a declared segment");
        }
        let d = &seg.delivery;
        let mut def = SegmentDef::new(&stream, &seg.layer, &seg.name, SourceKind::DirectPut, &stream, streams.now());
        def.bucket_arn = format!("arn:aws:s3:::{}", seg.layer.replace('_', "-"));
        def.size_mib = d.size_mib;
        def.interval_seconds = d.interval_seconds;
        def.compression = d.compression.clone();
        def.json = JsonOptions {
            case_insensitive: d.case_insensitive,
            dots_to_underscores: d.dots_to_underscores,
            column_to_key: d.column_to_key.clone(),
            timestamp_columns: d.timestamp_columns.clone(),
            rescue_column: d.rescue_column.clone(),
        };
        if let Some(schema) = &seg.schema {
            let json = serde_json::to_value(schema)?;
            TableSchema::from_declared(&json)
                .map_err(|e| anyhow::anyhow!("segment {stream}: the declared schema is not valid: {e}"))?;
            def.declared_schema = Some(json.to_string());
        }
        def.partition_time_field = Some(d.partition_time_field.clone()).filter(|f| !f.is_empty());
        def.backup_days = d.backup_days;
        def.compact_min_files = d.compact_min_files;
        def.compact_small_mib = d.compact_small_mib;
        def.snapshot_retention_hours = d.snapshot_retention_hours;
        def.declared = true;
        defs.push(def);
    }
    Ok(defs)
}

/// One delivery thread per segment.
pub struct DeliveryRunner {
    streams: Arc<Streams>,
    metrics: Arc<Metrics>,
    lake_dir: PathBuf,
    store: Store,
    running: Mutex<BTreeMap<String, Delivery>>,
}

impl DeliveryRunner {
    /// Deliveries into the lake whose catalog is in `lake_dir` and whose files go to `store`.
    pub fn new(streams: Arc<Streams>, metrics: Arc<Metrics>, lake_dir: PathBuf, store: Store) -> DeliveryRunner {
        DeliveryRunner { streams, metrics, lake_dir, store, running: Mutex::new(BTreeMap::new()) }
    }

    /// Flushes and stops every delivery (at shutdown).
    pub fn stop_all(&self) {
        let running = std::mem::take(&mut *self.running.lock().expect("runner lock"));
        running.into_values().for_each(Delivery::stop);
    }

    /// What delivering `def` means (also what reading its tail means).
    pub fn spec(&self, def: &SegmentDef) -> Result<DeliverySpec, String> {
        let prefixes = def.prefixes().map_err(|e| e.0)?;
        let compression = Compression::from_name(&def.compression)
            .ok_or_else(|| format!("unknown compression {:?}", def.compression))?;
        Ok(DeliverySpec {
            layer: def.layer.clone(),
            name: def.table.clone(),
            stream: def.stream.clone(),
            size_bytes: (def.size_mib * 1024 * 1024) as usize,
            interval: Duration::from_secs(def.interval_seconds),
            compression,
            options: ConvertOptions {
                case_insensitive: def.json.case_insensitive,
                dots_to_underscores: def.json.dots_to_underscores,
                column_to_key: def.json.column_to_key.clone().into_iter().collect(),
                timestamp_columns: def.json.timestamp_columns.clone(),
                rescue_column: (!def.json.rescue_column.is_empty()).then(|| def.json.rescue_column.clone()),
            },
            prefixes,
            partition_query: def.query()?,
            partition_time_field: def
                .partition_time_field
                .as_deref()
                .map(|path| path.trim_start_matches('.').split('.').map(str::to_owned).collect()),
            declared_schema: def
                .declared_schema
                .as_deref()
                .map(|text| {
                    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                    TableSchema::from_declared(&json)
                })
                .transpose()?,
            start_ms: (def.source == SourceKind::KinesisStreamAsSource).then_some(def.created_ms),
            backup_days: def.backup_days,
            snapshot_retention: (def.snapshot_retention_hours > 0)
                .then(|| Duration::from_secs(def.snapshot_retention_hours * 3600)),
            compaction: (def.compact_min_files > 0).then(|| CompactionPolicy {
                small_bytes: def.compact_small_mib * 1024 * 1024,
                min_files: def.compact_min_files,
                compression,
            }),
            lake_dir: self.lake_dir.clone(),
            store: self.store.clone(),
        })
    }
}

impl Runner for DeliveryRunner {
    fn start(&self, def: &SegmentDef) {
        let spec = match self.spec(def) {
            Ok(spec) => spec,
            Err(e) => return tracing::error!(segment = %def.name, error = %e, "segment cannot be delivered"),
        };
        match Delivery::start(self.streams.clone(), self.metrics.clone(), spec) {
            Ok(d) => {
                if let Some(old) = self.running.lock().expect("runner lock").insert(def.name.clone(), d) {
                    old.stop();
                }
            }
            Err(e) => tracing::error!(segment = %def.name, error = %e, "cannot start a delivery thread"),
        }
    }

    fn stop(&self, name: &str) {
        let d = self.running.lock().expect("runner lock").remove(name);
        if let Some(d) = d {
            d.stop();
        }
    }
}

/// The store of the lake's files: `<data_dir>/lake`, or the S3 location of `[lake] url`, signed
/// with the configured keys or else the AWS_* environment variables.
pub fn lake_store(config: &tarn_config::Config, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Store> {
    let lake = &config.lake;
    if lake.url.is_empty() {
        return Ok(Store::local(config.data_dir.join("lake")));
    }
    let setting =
        |value: &str, var: &str| if value.is_empty() { env(var).unwrap_or_default() } else { value.to_owned() };
    let s3 = tarn_store::S3Config {
        bucket: String::new(),
        endpoint: (!lake.endpoint.is_empty()).then(|| lake.endpoint.clone()),
        region: lake.region.clone(),
        access_key_id: setting(&lake.access_key_id, "AWS_ACCESS_KEY_ID"),
        secret_access_key: setting(&lake.secret_access_key, "AWS_SECRET_ACCESS_KEY"),
        session_token: Some(setting(&lake.session_token, "AWS_SESSION_TOKEN")).filter(|t| !t.is_empty()),
        path_style: lake.path_style.unwrap_or(!lake.endpoint.is_empty()),
    };
    if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
        anyhow::bail!(
            "lake.url is {} but no S3 credentials are set: give lake.access_key_id and lake.secret_access_key, \
             or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            lake.url
        );
    }
    Store::s3(&lake.url, s3).map_err(|e| anyhow::anyhow!("lake.url: {e}"))
}

#[cfg(test)]
mod lake_store_tests {
    use super::*;

    fn config(url: &str) -> tarn_config::Config {
        let mut c = tarn_config::Config::default();
        c.lake.url = url.into();
        c.lake.endpoint = "http://127.0.0.1:9000".into();
        c
    }

    #[test]
    fn local_by_default_s3_with_keys_from_the_environment() {
        let local = lake_store(&tarn_config::Config::default(), |_| None).unwrap();
        assert!(local.local_root().unwrap().ends_with("lake"));
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("env-key".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            _ => None,
        };
        let s3 = lake_store(&config("s3://lake-bucket/tarn"), env).unwrap();
        assert_eq!(s3.url("warehouse"), "s3://lake-bucket/tarn/warehouse");
        let missing = lake_store(&config("s3://lake-bucket/tarn"), |_| None).unwrap_err().to_string();
        assert!(missing.contains("no S3 credentials"), "{missing}");
        let bad = lake_store(&config("s3://Bad_Bucket"), env).unwrap_err().to_string();
        assert!(bad.contains("lake.url") && bad.contains("bucket name"), "{bad}");
    }
}
