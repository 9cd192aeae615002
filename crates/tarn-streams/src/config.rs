//! Settings of the streams service. Defaults are AWS's documented defaults.

/// Limits and behaviour of the streams service; every limit here is configurable.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// Account id shown in ARNs and error messages (12 digits).
    pub account_id: String,
    pub region: String,
    /// Shards across all streams (AWS's per-account shard quota).
    pub shard_limit: u32,
    /// Largest record (data plus partition key) in bytes, unless a stream sets its own.
    pub max_record_bytes: usize,
    /// Largest PutRecords request (data plus partition keys) in bytes.
    pub max_put_records_bytes: usize,
    pub max_put_records_entries: usize,
    /// GetRecords answers at most this many bytes.
    pub max_get_records_bytes: usize,
    pub max_get_records_entries: usize,
    pub iterator_ttl_ms: i64,
    pub max_tags_per_stream: usize,
    pub max_consumers_per_stream: usize,
    /// How long a new stream stays CREATING, and a resharded one UPDATING.
    pub transition_ms: i64,
    /// Emulate AWS's per-shard throughput limits (1 MiB/s and 1,000 records/s in; 5 reads/s and
    /// 2 MiB/s out). Off by default: Tarn is as fast as the machine.
    pub shard_throughput_limits: bool,
    pub log: tarn_log::LogConfig,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            shard_limit: 1000,
            max_record_bytes: 1024 * 1024,
            max_put_records_bytes: 5 * 1024 * 1024,
            max_put_records_entries: 500,
            max_get_records_bytes: 10 * 1024 * 1024,
            max_get_records_entries: 10_000,
            iterator_ttl_ms: 300_000,
            max_tags_per_stream: 50,
            max_consumers_per_stream: 20,
            transition_ms: 0,
            shard_throughput_limits: false,
            log: tarn_log::LogConfig::default(),
        }
    }
}

impl StreamsConfig {
    pub fn stream_arn(&self, name: &str) -> String {
        format!("arn:aws:kinesis:{}:{}:stream/{}", self.region, self.account_id, name)
    }
}
