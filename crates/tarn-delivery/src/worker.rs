//! The delivery loop of one segment, on its own thread: read every readable shard from where the
//! table's checkpoint says, buffer, and flush by size or interval as one Iceberg commit that
//! carries the new checkpoint. A failed flush keeps the buffer and is retried with backoff; the
//! log keeps the records meanwhile, so nothing is lost and nothing is committed twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tarn_convert::{ConvertOptions, Shapes, TableSchema};
use tarn_lake::{CompactionPolicy, Compression, Lake, Store, from_iceberg_schema};
use tarn_metrics::Metrics;
use tarn_streams::model::shard_id;
use tarn_streams::token::IteratorPosition;
use tarn_streams::{StartingPosition, Streams};

use crate::backup;
use crate::cursor::Cursor;
use crate::maintenance::Maintenance;
use crate::prepare::{Folders, Pending, prepare};
use tarn_segments::partition_query::PartitionQuery;
use tarn_segments::prefix::Prefixes;

/// What one segment's delivery does.
#[derive(Debug, Clone)]
pub struct DeliverySpec {
    /// The table's namespace (the segment's layer) and name.
    pub layer: String,
    pub name: String,
    /// The source stream.
    pub stream: String,
    /// Flush at this many bytes of record data.
    pub size_bytes: usize,
    /// Flush this long after the first record entered the buffer.
    pub interval: Duration,
    pub compression: Compression,
    pub options: ConvertOptions,
    /// Data and error folders (Firehose prefix expressions).
    pub prefixes: Prefixes,
    /// The declared schema: the table starts with it and does not evolve; `None`: inferred.
    pub declared_schema: Option<TableSchema>,
    /// Dynamic partitioning: the query for the prefix's `!{partitionKeyFromQuery:...}` keys.
    pub partition_query: Option<PartitionQuery>,
    /// The record field (path segments as written in the JSON) whose time fills the prefix's
    /// `!{timestamp:...}`; `None`: the arrival time.
    pub partition_time_field: Option<Vec<String>>,
    /// For shards the table has no checkpoint of: start with the first record that arrived at
    /// or after this time (a KinesisStreamAsSource delivery starts at its creation, as Firehose
    /// starts at LATEST); `None` starts at the oldest record.
    pub start_ms: Option<i64>,
    /// Days to keep the raw backup under `lake/backup/<layer>/<name>/`; 0: none.
    pub backup_days: u32,
    /// Snapshots older than this are expired with the files only they used; `None`: never.
    pub snapshot_retention: Option<Duration>,
    /// Rewrites folders of small files after flushes; `None`: never.
    pub compaction: Option<CompactionPolicy>,
    /// The lake's catalog directory (`catalog.db`).
    pub lake_dir: PathBuf,
    /// Where the lake's files go (`warehouse/`, `errors/`, `backup/`): `lake_dir` itself or S3.
    pub store: Store,
}

/// A running delivery; stopping it flushes what is buffered.
pub struct Delivery {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Delivery {
    /// Starts delivering on its own thread, reporting `tarn_delivery_*` metrics labelled with
    /// the table.
    pub fn start(streams: Arc<Streams>, metrics: Arc<Metrics>, spec: DeliverySpec) -> std::io::Result<Delivery> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name(format!("delivery-{}.{}", spec.layer, spec.name)).spawn(
            move || match Maintenance::start(streams.clone(), metrics.clone(), spec.clone()) {
                Ok(upkeep) => {
                    run(&streams, &metrics, &spec, &flag, &upkeep);
                    upkeep.stop();
                }
                Err(e) => {
                    tracing::error!(error = %e, "delivery {}.{} cannot start its upkeep thread", spec.layer, spec.name)
                }
            },
        )?;
        Ok(Delivery { stop, thread: Some(thread) })
    }

    /// Asks the loop to flush and stop, and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const IDLE_WAIT: Duration = Duration::from_millis(50);
const PAGE_RECORDS: usize = 10_000;
const PAGE_BYTES: usize = 8 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The key folder of the segment's raw backup in the lake's store.
pub(crate) fn backup_root(spec: &DeliverySpec) -> String {
    format!("backup/{}/{}", spec.layer, spec.name)
}

struct State {
    lake: Lake,
    schema: TableSchema,
    /// Row shapes already folded into `schema`.
    shapes: Shapes,
    /// Positions up to what is buffered; committed with the next flush.
    cursor: Cursor,
    buffer: Vec<Pending>,
    buffered_bytes: usize,
    /// Arrival time of the oldest buffered record (for the lag metric and the backup folder).
    oldest_arrival_ms: Option<i64>,
    first_buffered: Option<Instant>,
    flushes: u64,
}

fn run(streams: &Streams, metrics: &Metrics, spec: &DeliverySpec, stop: &AtomicBool, upkeep: &Maintenance) {
    let table = format!("{}.{}", spec.layer, spec.name);
    let labels = [("table", table.as_str())];
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return tracing::error!(error = %e, "delivery {}.{} cannot start a runtime", spec.layer, spec.name),
    };
    let mut backoff = Duration::from_millis(200);
    let mut state = loop {
        match runtime.block_on(open(streams, spec)) {
            Ok(state) => break state,
            Err(e) if !stop.load(Ordering::SeqCst) => {
                tracing::warn!(error = %e, table = %format!("{}.{}", spec.layer, spec.name), "delivery cannot start yet; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => return,
        }
    };
    tracing::info!(
        table = %format!("{}.{}", spec.layer, spec.name),
        stream = %spec.stream,
        checkpoint = ?state.cursor.to_checkpoint(),
        "delivery started"
    );
    let mut retry_at: Option<Instant> = None;
    backoff = Duration::from_millis(200);
    // Stopping reads once more, so what was acknowledged before the stop is delivered with it.
    let mut read_at_stop = false;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let read_any = if state.buffered_bytes < spec.size_bytes && (!stopping || !read_at_stop) {
            read_at_stop = stopping;
            read_available(streams, spec, &mut state)
        } else {
            false
        };
        let due = state.first_buffered.is_some_and(|t| t.elapsed() >= spec.interval)
            || state.buffered_bytes >= spec.size_bytes
            || stopping;
        if due && !state.buffer.is_empty() && retry_at.is_none_or(|t| Instant::now() >= t) {
            let started = Instant::now();
            let (records, bytes) = (state.buffer.len() as u64, state.buffered_bytes as u64);
            match runtime.block_on(flush(spec, &mut state, streams.now())) {
                Ok(outcome) => {
                    metrics.add("tarn_delivery_records_total", &labels, records);
                    metrics.add("tarn_delivery_bytes_total", &labels, bytes);
                    metrics.add("tarn_delivery_rows_total", &labels, outcome.rows as u64);
                    metrics.add("tarn_delivery_error_records_total", &labels, outcome.errors as u64);
                    metrics.add("tarn_delivery_commits_total", &labels, 1);
                    metrics.observe("tarn_delivery_flush_seconds", &labels, started.elapsed().as_secs_f64());
                    // What the lake now holds is read from the log again only after a crash.
                    for (shard, next) in state.cursor.positions() {
                        streams.release_cache(&spec.stream, state.cursor.stream_tag(), shard, next);
                    }
                    upkeep.flushed();
                    retry_at = None;
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    metrics.add("tarn_delivery_failed_flushes_total", &labels, 1);
                    tracing::error!(error = %e, table = %table, buffered = state.buffer.len(), retry_in_ms = backoff.as_millis() as u64, "delivery flush failed; the records stay in the log and the flush is retried");
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if stopping {
                        return;
                    }
                }
            }
        }
        let lag_ms = state.oldest_arrival_ms.map_or(0, |ms| (streams.now() - ms).max(0));
        metrics.set("tarn_delivery_lag_milliseconds", &labels, lag_ms as f64);
        metrics.set("tarn_delivery_buffered_bytes", &labels, state.buffered_bytes as f64);
        if stopping && state.buffer.is_empty() {
            return;
        }
        if !read_any {
            std::thread::sleep(IDLE_WAIT);
        }
    }
}

async fn open(streams: &Streams, spec: &DeliverySpec) -> Result<State, String> {
    let snapshot = streams.snapshot(&spec.stream).map_err(|e| e.to_string())?;
    let lake = Lake::open_with(&spec.lake_dir, Some(spec.store.clone())).await.map_err(|e| e.to_string())?;
    let (schema, cursor) = match lake.existing(&spec.layer, &spec.name).await.map_err(|e| e.to_string())? {
        Some(table) => {
            let checkpoint = lake.checkpoint(&spec.layer, &spec.name).await.map_err(|e| e.to_string())?;
            let cursor = checkpoint
                .map(|c| Cursor::from_checkpoint(snapshot.meta.tag, &c))
                .unwrap_or_else(|| Cursor::new(snapshot.meta.tag));
            (from_iceberg_schema(table.metadata().current_schema()), cursor)
        }
        None => (TableSchema::default(), Cursor::new(snapshot.meta.tag)),
    };
    let schema = match &spec.declared_schema {
        None => schema,
        Some(declared) => with_declared(schema, declared, &spec.options),
    };
    Ok(State {
        lake,
        schema,
        shapes: Shapes::default(),
        cursor,
        buffer: Vec::new(),
        buffered_bytes: 0,
        oldest_arrival_ms: None,
        first_buffered: None,
        flushes: 0,
    })
}

/// Reads what the readable shards have, until the buffer is full. Returns whether anything came.
fn read_available(streams: &Streams, spec: &DeliverySpec, state: &mut State) -> bool {
    let Ok(snapshot) = streams.snapshot(&spec.stream) else { return false };
    if snapshot.meta.tag != state.cursor.stream_tag() {
        // The stream was deleted and created again: a new source, read from its start.
        if !state.buffer.is_empty() {
            return false; // deliver what was read from the old one first
        }
        state.cursor = Cursor::new(snapshot.meta.tag);
    }
    let mut read_any = false;
    for shard in state.cursor.readable(&snapshot.meta.shards) {
        if let Some(ts) = spec.start_ms
            && !state.cursor.knows(shard)
        {
            match streams.start_position(
                &spec.stream,
                &shard_id(shard),
                StartingPosition::AtTimestamp(ts.min(streams.now())),
            ) {
                Ok(p) => state.cursor.advance(shard, p.offset),
                Err(e) => {
                    tracing::warn!(error = %e, shard = %shard_id(shard), "delivery cannot find its start");
                    continue;
                }
            }
        }
        let from = state.cursor.next(shard);
        let position = IteratorPosition {
            stream_name: spec.stream.clone(),
            stream_tag: snapshot.meta.tag,
            shard_index: shard,
            offset: from,
            issued_ms: streams.now(),
        };
        let page = match streams.read_from(&position, PAGE_RECORDS, PAGE_BYTES) {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, shard = %shard_id(shard), "delivery read failed");
                continue;
            }
        };
        if let Some(first) = page.records.first()
            && first.offset > from
        {
            tracing::error!(
                stream = %spec.stream,
                shard = %shard_id(shard),
                lost = first.offset - from,
                "records expired from the stream before delivery reached them"
            );
        }
        if page.records.is_empty() && page.next_offset == from {
            continue;
        }
        read_any |= !page.records.is_empty();
        for r in &page.records {
            state.buffered_bytes += r.data.len();
            state.oldest_arrival_ms = Some(state.oldest_arrival_ms.map_or(r.arrival_ms, |o| o.min(r.arrival_ms)));
            state.buffer.push(Pending {
                sequence_number: page.sequence(r.offset),
                arrival_ms: r.arrival_ms,
                data: r.data.clone(),
            });
        }
        if !page.records.is_empty() && state.first_buffered.is_none() {
            state.first_buffered = Some(Instant::now());
        }
        state.cursor.advance(shard, page.next_offset);
        if state.buffered_bytes >= spec.size_bytes {
            break;
        }
    }
    read_any
}

/// The table's schema with the declared columns it lacks (and the rescue column, if any) added.
fn with_declared(mut schema: TableSchema, declared: &TableSchema, options: &ConvertOptions) -> TableSchema {
    for column in &declared.columns {
        if schema.column(&column.name).is_none() {
            schema.columns.push(column.clone());
        }
    }
    if let Some(rescue) = &options.rescue_column
        && schema.column(rescue).is_none()
    {
        schema.columns.push(tarn_convert::Column::new(rescue.clone(), tarn_convert::ColumnType::String));
    }
    schema
}

/// What a flush delivered.
struct Flushed {
    rows: usize,
    errors: usize,
}

async fn flush(spec: &DeliverySpec, state: &mut State, now_ms: i64) -> Result<Flushed, String> {
    let started = Instant::now();
    let table_name = format!("{}.{}", spec.layer, spec.name);
    let random = random_string();
    let folders = Folders {
        prefixes: &spec.prefixes,
        random: &random,
        query: spec.partition_query.as_ref(),
        time_field: spec.partition_time_field.as_deref(),
    };
    // Shapes are kept only if the flush commits: a retry must evolve the same rows again.
    let mut shapes = state.shapes.clone();
    let evolve = spec.declared_schema.is_none();
    let prepared = prepare(
        &state.buffer,
        &state.schema,
        evolve.then_some(&mut shapes),
        &spec.options,
        &folders,
        &table_name,
        now_ms,
        converter_threads(),
    )
    .map_err(|e| e.to_string())?;
    let converted_ms = started.elapsed().as_millis() as u64;
    let prefix = format!("{now_ms}-{:08x}-{}", state.cursor.stream_tag(), state.flushes);
    // Error documents first: a crash before the commit may write them again, never lose them.
    for (folder, docs) in &prepared.errors {
        let key = format!("errors/{}/{}/{}{prefix}.json", spec.layer, spec.name, with_slash(folder));
        spec.store.put(&key, error_file(docs)).await.map_err(|e| e.to_string())?;
    }
    if spec.backup_days > 0 {
        let oldest = state.oldest_arrival_ms.unwrap_or(now_ms);
        let key = format!("{}/{}/{prefix}.json.gz", backup_root(spec), backup::hour_folder(oldest));
        let gz = backup::encode(&state.buffer, converter_threads())
            .map_err(|e| format!("raw backup of {table_name}: {e}"))?;
        spec.store.put(&key, gz.into()).await.map_err(|e| e.to_string())?;
    }
    let written_aside_ms = started.elapsed().as_millis() as u64;
    let lake = &state.lake;
    let table = lake.table(&spec.layer, &spec.name, &prepared.schema).await.map_err(|e| e.to_string())?;
    let table = lake.evolve(&table, &prepared.schema).await.map_err(|e| e.to_string())?;
    let checkpoint = state.cursor.to_checkpoint();
    lake.append(&table, &prepared.groups, &checkpoint, spec.compression, &prefix).await.map_err(|e| e.to_string())?;
    let flushed = Flushed { rows: prepared.rows, errors: prepared.errors.values().map(Vec::len).sum() };
    tracing::info!(
        table = %table_name,
        records = state.buffer.len(),
        rows = flushed.rows,
        bytes = state.buffered_bytes,
        errors = flushed.errors,
        ms = started.elapsed().as_millis() as u64,
        convert_ms = converted_ms,
        errors_and_backup_ms = written_aside_ms - converted_ms,
        "delivered"
    );
    state.schema = prepared.schema;
    state.shapes = shapes;
    state.buffer.clear();
    state.buffered_bytes = 0;
    state.oldest_arrival_ms = None;
    state.first_buffered = None;
    state.flushes += 1;
    Ok(flushed)
}

/// Firehose error documents as JSON lines.
fn error_file(docs: &[serde_json::Value]) -> bytes::Bytes {
    let mut out = Vec::new();
    for doc in docs {
        serde_json::to_writer(&mut out, doc).expect("a JSON value always serializes");
        out.push(b'\n');
    }
    out.into()
}

/// `folder/`, or nothing for the top folder.
fn with_slash(folder: &str) -> String {
    match folder.trim_end_matches('/') {
        "" => String::new(),
        f => format!("{f}/"),
    }
}
/// Threads a flush converts on: the machine's cores (while ingest runs, the kernel shares them).
fn converter_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Firehose's `!{firehose:random-string}`: 11 characters.
fn random_string() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", h.finish())[..11].to_owned()
}
