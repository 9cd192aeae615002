//! [`Streams`]: the registry of streams and the control-plane operations on them.
//!
//! Each stream lives in `<data>/streams/<name>.<tag>/`: `stream.json` (its [`StreamMeta`]) and
//! `shards/<shard id>/` (one [`ShardLog`] per shard). Metadata changes are made durable before
//! the call that made them returns.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tarn_log::ShardLog;

use crate::config::StreamsConfig;
use crate::error::{Error, Result};
use crate::hash_key::even_ranges;
use crate::model::{ShardMeta, StreamMeta, StreamMode, StreamStatus, shard_id};
use crate::store;
use crate::throttle::ShardThrottle;
use crate::token::TokenSigner;

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    })
}

pub(crate) struct StreamState {
    pub meta: StreamMeta,
    pub logs: HashMap<u32, Arc<ShardLog>>,
    pub throttles: HashMap<u32, Arc<ShardThrottle>>,
    /// Open shards by starting hash key: `(start, index)`.
    pub routes: Vec<(u128, u32)>,
}

impl StreamState {
    pub fn rebuild_routes(&mut self) {
        self.routes = self.meta.open_shards().map(|s| (s.start_hash, s.index)).collect();
        self.routes.sort_unstable();
    }

    pub fn route(&self, hash: u128) -> u32 {
        let i = self.routes.partition_point(|(start, _)| *start <= hash);
        self.routes[i.saturating_sub(1)].1
    }
}

pub(crate) struct Stream {
    pub dir: PathBuf,
    pub state: RwLock<StreamState>,
}

impl Stream {
    pub fn read(&self) -> RwLockReadGuard<'_, StreamState> {
        self.state.read().expect("stream lock")
    }
    pub fn write(&self) -> RwLockWriteGuard<'_, StreamState> {
        self.state.write().expect("stream lock")
    }
}

/// A consistent copy of a stream's metadata with its derived status.
#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    pub meta: StreamMeta,
    pub status: StreamStatus,
    pub arn: String,
}

/// What CreateStream asks for.
#[derive(Debug, Clone)]
pub struct CreateStream {
    pub name: String,
    pub shard_count: Option<u32>,
    pub mode: StreamMode,
    pub tags: BTreeMap<String, String>,
    pub max_record_size_kib: Option<u32>,
}

/// Shards a new on-demand stream starts with.
pub const ON_DEMAND_SHARDS: u32 = 4;

pub struct Streams {
    pub(crate) config: StreamsConfig,
    pub(crate) dir: PathBuf,
    pub(crate) streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    pub(crate) signer: TokenSigner,
    pub(crate) clock: Clock,
}

impl Streams {
    /// Opens (or creates) the streams under `data_dir`, recovering every shard log.
    pub fn open(data_dir: &Path, config: StreamsConfig, clock: Clock) -> Result<Streams> {
        let dir = data_dir.join("streams");
        std::fs::create_dir_all(&dir)?;
        let signer = TokenSigner::new(store::load_or_create_key(data_dir)?);
        let mut streams = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if !path.join(store::META_FILE).exists() {
                // A stream whose creation never completed, or whose deletion did not finish.
                tracing::warn!(path = %path.display(), "removing incomplete stream directory");
                std::fs::remove_dir_all(&path)?;
                continue;
            }
            let meta = store::read_meta(&path)?;
            let mut logs = HashMap::new();
            for shard in &meta.shards {
                let log = ShardLog::open(path.join("shards").join(shard_id(shard.index)), config.log)?;
                logs.insert(shard.index, Arc::new(log));
            }
            let throttles = meta.shards.iter().map(|s| (s.index, Arc::default())).collect();
            let mut state = StreamState { meta, logs, throttles, routes: Vec::new() };
            state.rebuild_routes();
            tracing::info!(stream = %state.meta.name, shards = state.meta.shards.len(), "recovered stream");
            streams.insert(state.meta.name.clone(), Arc::new(Stream { dir: path, state: RwLock::new(state) }));
        }
        Ok(Streams { config, dir, streams: RwLock::new(streams), signer, clock })
    }

    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub(crate) fn not_found_message(&self, name: &str) -> String {
        format!("Stream {name} under account {} not found.", self.config.account_id)
    }

    pub(crate) fn stream(&self, name: &str) -> Result<Arc<Stream>> {
        self.streams
            .read()
            .expect("streams lock")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(self.not_found_message(name)))
    }

    /// The stream name a request means, from its `StreamName`, its `StreamARN`, or both.
    pub fn resolve_name(&self, name: Option<&str>, arn: Option<&str>) -> Result<String> {
        let from_arn = match arn {
            Some(arn) => {
                Some(parse_stream_arn(arn).ok_or_else(|| Error::invalid(format!("Invalid StreamARN {arn}.")))?)
            }
            None => None,
        };
        match (name, from_arn) {
            (Some(n), Some(a)) if n != a => Err(Error::invalid(format!(
                "StreamName {n} and StreamARN {} refer to different streams.",
                arn.unwrap_or_default()
            ))),
            (Some(n), _) => Ok(n.to_owned()),
            (None, Some(a)) => Ok(a),
            (None, None) => Err(Error::invalid("Either StreamName or StreamARN must be provided.")),
        }
    }

    pub fn snapshot(&self, name: &str) -> Result<StreamSnapshot> {
        let stream = self.stream(name)?;
        let st = stream.read();
        Ok(self.snapshot_of(&st.meta))
    }

    /// The stream's tag and, for each of its shards (by index), the durable end of its log: the
    /// offset its next acknowledged record will take. A reader positioned there has nothing new
    /// to read; telling so costs no read of the log.
    pub fn durable_ends(&self, name: &str) -> Result<(u32, Vec<(u32, u64)>)> {
        let stream = self.stream(name)?;
        let st = stream.read();
        let ends =
            st.meta.shards.iter().filter_map(|s| Some((s.index, st.logs.get(&s.index)?.durable_end()))).collect();
        Ok((st.meta.tag, ends))
    }

    /// A reader that is done with `shard`'s records below `offset` (delivery, once they are in
    /// the lake) lets the log hand their cached pages back to the kernel. A stream that is gone,
    /// or was created again (another tag), is left alone.
    pub fn release_cache(&self, name: &str, stream_tag: u32, shard: u32, offset: u64) {
        let Ok(stream) = self.stream(name) else { return };
        let log = {
            let st = stream.read();
            if st.meta.tag != stream_tag {
                return;
            }
            st.logs.get(&shard).cloned()
        };
        if let Some(log) = log {
            log.release_cache_before(offset);
        }
    }

    pub(crate) fn snapshot_of(&self, meta: &StreamMeta) -> StreamSnapshot {
        StreamSnapshot { status: meta.status(self.now()), arn: self.config.stream_arn(&meta.name), meta: meta.clone() }
    }

    pub fn list(&self) -> Vec<StreamSnapshot> {
        let streams: Vec<_> = self.streams.read().expect("streams lock").values().cloned().collect();
        streams.iter().map(|s| self.snapshot_of(&s.read().meta)).collect()
    }

    /// Open shards across all streams. `held` is a stream whose lock the caller already holds:
    /// its count is taken from the guard instead of locking it again.
    fn open_shard_count(&self, held: Option<(&Stream, &StreamState)>) -> u32 {
        let streams: Vec<_> = self.streams.read().expect("streams lock").values().cloned().collect();
        let count = |s: &StreamState| s.meta.open_shards().count() as u32;
        streams
            .iter()
            .map(|s| match held {
                Some((h, state)) if std::ptr::eq(Arc::as_ptr(s), h) => count(state),
                _ => count(&s.read()),
            })
            .sum()
    }

    pub(crate) fn check_shard_quota(&self, additional: u32, held: Option<(&Stream, &StreamState)>) -> Result<()> {
        let current = self.open_shard_count(held);
        if current + additional > self.config.shard_limit {
            return Err(Error::limit(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the \
                 account: {current}. Limit: {}. Number of additional shards that would have resulted from this \
                 request: {additional}. Refer to the AWS Service Limits page \
                 (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how \
                 to request higher limits.",
                self.config.account_id, self.config.region, self.config.shard_limit
            )));
        }
        Ok(())
    }

    pub fn create_stream(&self, req: CreateStream) -> Result<()> {
        let shard_count = match (req.mode, req.shard_count) {
            (StreamMode::OnDemand, Some(_)) => {
                return Err(Error::validation("ShardCount is not expected when StreamMode=ON_DEMAND"));
            }
            (StreamMode::OnDemand, None) => ON_DEMAND_SHARDS,
            (StreamMode::Provisioned, Some(n)) => n,
            (StreamMode::Provisioned, None) => {
                return Err(Error::invalid("ShardCount is required when StreamMode is PROVISIONED."));
            }
        };
        if req.tags.len() > self.config.max_tags_per_stream {
            return Err(self.too_many_tags(&req.name));
        }
        let mut registry = self.streams.write().expect("streams lock");
        if registry.contains_key(&req.name) {
            return Err(Error::in_use(format!(
                "Stream {} under account {} already exists.",
                req.name, self.config.account_id
            )));
        }
        drop(registry);
        self.check_shard_quota(shard_count, None)?;
        let now = self.now();
        let tag: u32 = rand::random();
        let shards = even_ranges(shard_count)
            .into_iter()
            .enumerate()
            .map(|(i, (start_hash, end_hash))| ShardMeta {
                index: i as u32,
                start_hash,
                end_hash,
                parent: None,
                adjacent_parent: None,
                created_ms: now,
                closed: None,
            })
            .collect();
        let meta = StreamMeta {
            name: req.name.clone(),
            tag,
            created_ms: now,
            active_at_ms: now + self.config.transition_ms,
            updating_until_ms: 0,
            retention_hours: 24,
            mode: req.mode,
            max_record_size_kib: req.max_record_size_kib.unwrap_or((self.config.max_record_bytes / 1024) as u32),
            shards,
            tags: req.tags,
            consumers: Vec::new(),
            encryption_key: None,
            scaling_ops_ms: Vec::new(),
            mode_switches_ms: Vec::new(),
        };
        let dir = self.dir.join(format!("{}.{tag:08x}", req.name));
        std::fs::create_dir_all(dir.join("shards"))?;
        let mut logs = HashMap::new();
        for shard in &meta.shards {
            let log = ShardLog::open(dir.join("shards").join(shard_id(shard.index)), self.config.log)?;
            logs.insert(shard.index, Arc::new(log));
        }
        // The metadata file is written last: a directory without it is an unfinished creation.
        store::write_meta(&dir, &meta)?;
        tarn_log::sync_dir(&self.dir)?;
        let throttles = meta.shards.iter().map(|s| (s.index, Arc::default())).collect();
        let mut state = StreamState { meta, logs, throttles, routes: Vec::new() };
        state.rebuild_routes();
        registry = self.streams.write().expect("streams lock");
        if registry.contains_key(&req.name) {
            drop(registry);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Error::in_use(format!(
                "Stream {} under account {} already exists.",
                req.name, self.config.account_id
            )));
        }
        registry.insert(req.name.clone(), Arc::new(Stream { dir, state: RwLock::new(state) }));
        tracing::info!(stream = %req.name, shards = shard_count, "created stream");
        Ok(())
    }

    pub fn delete_stream(&self, name: &str, enforce_consumer_deletion: bool) -> Result<()> {
        let stream = self.stream(name)?;
        {
            let st = stream.read();
            if !st.meta.consumers.is_empty() && !enforce_consumer_deletion {
                return Err(Error::in_use(format!(
                    "Stream {name} under account {} has registered consumers. Deregister them or set \
                     EnforceConsumerDeletion.",
                    self.config.account_id
                )));
            }
        }
        self.streams.write().expect("streams lock").remove(name);
        // Removing the metadata file first makes the deletion durable; the logs follow.
        std::fs::remove_file(stream.dir.join(store::META_FILE))?;
        tarn_log::sync_dir(&stream.dir)?;
        if let Err(e) = std::fs::remove_dir_all(&stream.dir) {
            tracing::warn!(path = %stream.dir.display(), error = %e, "could not remove a deleted stream's files; they go at next start");
        }
        tracing::info!(stream = %name, "deleted stream");
        Ok(())
    }

    /// Persists a metadata change made under the stream's write lock.
    pub(crate) fn persist(&self, stream: &Stream, meta: &StreamMeta) -> Result<()> {
        store::write_meta(&stream.dir, meta)?;
        Ok(())
    }

    pub(crate) fn too_many_tags(&self, name: &str) -> Error {
        Error::invalid(format!(
            "Failed to add tags to stream {name} under account {} because a given stream cannot have more than {} \
             tags associated with it.",
            self.config.account_id, self.config.max_tags_per_stream
        ))
    }

    /// Drops expired data: whole segments past each stream's retention, and closed shards whose
    /// data has all expired. Returns how many segments and shards were removed.
    pub fn enforce_retention(&self) -> Result<(usize, usize)> {
        let now = self.now();
        let streams: Vec<_> = self.streams.read().expect("streams lock").values().cloned().collect();
        let (mut segments, mut shards) = (0, 0);
        for stream in streams {
            let (cutoff, logs) = {
                let st = stream.read();
                let cutoff = now - i64::from(st.meta.retention_hours) * 3_600_000;
                (cutoff, st.logs.clone())
            };
            for log in logs.values() {
                segments += log.trim(cutoff)?;
            }
            let mut st = stream.write();
            let expired: Vec<u32> = st
                .meta
                .shards
                .iter()
                .filter(|s| {
                    s.closed.is_some_and(|c| c.closed_ms < cutoff)
                        && st.logs.get(&s.index).is_none_or(|l| l.last_arrival_ms().is_none_or(|t| t < cutoff))
                })
                .map(|s| s.index)
                .collect();
            if expired.is_empty() {
                continue;
            }
            st.meta.shards.retain(|s| !expired.contains(&s.index));
            self.persist(&stream, &st.meta)?;
            for index in expired {
                st.throttles.remove(&index);
                if let Some(log) = st.logs.remove(&index) {
                    let dir = log.dir().to_owned();
                    drop(log);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                shards += 1;
            }
        }
        Ok((segments, shards))
    }

    /// Bytes on disk and shard counts, for metrics.
    pub fn usage(&self) -> Vec<StreamUsage> {
        let streams: Vec<_> = self.streams.read().expect("streams lock").values().cloned().collect();
        streams
            .iter()
            .map(|s| {
                let st = s.read();
                StreamUsage {
                    name: st.meta.name.clone(),
                    storage_bytes: st.logs.values().map(|l| l.size_bytes()).sum(),
                    open_shards: st.meta.open_shards().count(),
                    fsyncs: st.logs.values().map(|l| l.fsyncs()).sum(),
                    cached_bytes: st.logs.values().map(|l| l.cached_bytes()).sum(),
                }
            })
            .collect()
    }
}

/// What a stream holds and has done, for metrics.
#[derive(Debug, Clone)]
pub struct StreamUsage {
    pub name: String,
    /// Bytes of its shard logs on disk.
    pub storage_bytes: u64,
    pub open_shards: usize,
    /// fsyncs its shard logs have run for appends since the server started.
    pub fsyncs: u64,
    /// Bytes of its shard logs whose pages the log has not handed back to the kernel (the page
    /// cache may hold less, or, once released records are read again, more).
    pub cached_bytes: u64,
}

/// The stream name in `arn:aws:kinesis:<region>:<account>:stream/<name>`.
pub fn parse_stream_arn(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_lit, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if arn_lit != "arn" || !partition.starts_with("aws") || service != "kinesis" {
        return None;
    }
    let name = resource.strip_prefix("stream/")?;
    let name = name.split('/').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}
