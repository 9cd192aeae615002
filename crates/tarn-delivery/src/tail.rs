//! The tail of a segment: records acknowledged on its stream after the checkpoint of the table's
//! current snapshot, converted as the next flush will convert them (same options, same folders,
//! the table's current schema), so a query can read them beside the table's files. The
//! checkpoint is the exact boundary: a record is in the files or in the tail, never both.
//!
//! Reading and converting a tail costs as much as a flush, so the converted rows are kept per
//! table while its checkpoint and schema stay the same, and the next query reads only what
//! arrived since.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use tarn_convert::TableSchema;
use tarn_streams::model::shard_id;
use tarn_streams::token::IteratorPosition;
use tarn_streams::{StartingPosition, Streams};

use crate::cursor::Cursor;
use crate::prepare::{Folders, Pending, prepare};
use crate::worker::DeliverySpec;

const PAGE_RECORDS: usize = 10_000;
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Rows of a tail, by the data folder their flush will write them to.
pub type TailRows = Vec<(String, RecordBatch)>;

struct Converted {
    checkpoint: Option<BTreeMap<String, String>>,
    schema: TableSchema,
    cursor: Cursor,
    rows: TailRows,
    bytes: usize,
}

impl Converted {
    /// Whether these rows continue the tail after `checkpoint` of the stream tagged `tag`,
    /// converted with `schema`.
    fn continues(&self, checkpoint: Option<&BTreeMap<String, String>>, schema: &TableSchema, tag: u32) -> bool {
        self.checkpoint.as_ref() == checkpoint && &self.schema == schema && self.cursor.stream_tag() == tag
    }
}

/// The key of `spec`'s table among the converted tails.
fn table_key(spec: &DeliverySpec) -> String {
    format!("{}.{}", spec.layer, spec.name)
}

/// Reads segments' tails, keeping what it converted.
pub struct TailReader {
    streams: Arc<Streams>,
    /// A tail larger than this (bytes of record data) is refused rather than held in memory.
    max_bytes: usize,
    converted: Mutex<HashMap<String, Converted>>,
}

impl TailReader {
    pub fn new(streams: Arc<Streams>, max_bytes: usize) -> TailReader {
        TailReader { streams, max_bytes, converted: Mutex::default() }
    }

    /// What [`TailReader::read`] would return, when that needs no read of the stream: the rows
    /// converted by an earlier read for the same checkpoint and schema, no shard having had a
    /// record acknowledged since. `None`: call `read` (which may read the log at length, so it
    /// belongs on a blocking thread; this does not).
    pub fn read_unchanged(
        &self,
        spec: &DeliverySpec,
        checkpoint: Option<&BTreeMap<String, String>>,
        schema: &TableSchema,
    ) -> Option<TailRows> {
        let (tag, ends) = self.streams.durable_ends(&spec.stream).ok()?;
        let cache = self.converted.lock().unwrap_or_else(|p| p.into_inner());
        let state = cache.get(&table_key(spec))?;
        let current = state.continues(checkpoint, schema, tag)
            && ends.iter().all(|&(index, end)| state.cursor.knows(index) && state.cursor.next(index) >= end);
        current.then(|| state.rows.clone())
    }

    /// The records of `spec`'s stream after `checkpoint`, converted with `schema` (the table's
    /// schema at that checkpoint). Records that cannot be converted are left out, as the flush
    /// sends them to the error output.
    pub fn read(
        &self,
        spec: &DeliverySpec,
        checkpoint: Option<&BTreeMap<String, String>>,
        schema: &TableSchema,
    ) -> Result<TailRows, String> {
        let table = table_key(spec);
        let snapshot = self.streams.snapshot(&spec.stream).map_err(|e| e.to_string())?;
        let tag = snapshot.meta.tag;
        let mut cache = self.converted.lock().unwrap_or_else(|p| p.into_inner());
        let reusable = cache.get(&table).is_some_and(|c| c.continues(checkpoint, schema, tag));
        if !reusable {
            let cursor = checkpoint.map_or_else(|| Cursor::new(tag), |c| Cursor::from_checkpoint(tag, c));
            let fresh = Converted {
                checkpoint: checkpoint.cloned(),
                schema: schema.clone(),
                cursor,
                rows: Vec::new(),
                bytes: 0,
            };
            cache.insert(table.clone(), fresh);
        }
        let state = cache.get_mut(&table).expect("inserted above");
        let mut records = Vec::new();
        let mut bytes = state.bytes;
        for shard in &snapshot.meta.shards {
            let index = shard.index;
            if let Some(ts) = spec.start_ms
                && !state.cursor.knows(index)
            {
                let start = StartingPosition::AtTimestamp(ts.min(self.streams.now()));
                let p =
                    self.streams.start_position(&spec.stream, &shard_id(index), start).map_err(|e| e.to_string())?;
                state.cursor.advance(index, p.offset);
            }
            loop {
                let from = state.cursor.next(index);
                let position = IteratorPosition {
                    stream_name: spec.stream.clone(),
                    stream_tag: tag,
                    shard_index: index,
                    offset: from,
                    issued_ms: self.streams.now(),
                };
                let page = self.streams.read_from(&position, PAGE_RECORDS, PAGE_BYTES).map_err(|e| e.to_string())?;
                if page.records.is_empty() && page.next_offset == from {
                    break;
                }
                for r in &page.records {
                    bytes += r.data.len();
                    records.push(Pending {
                        sequence_number: page.sequence(r.offset),
                        arrival_ms: r.arrival_ms,
                        data: r.data.clone(),
                    });
                }
                if bytes > self.max_bytes {
                    cache.remove(&table);
                    return Err(format!(
                        "{table} has more than {} MiB acknowledged but not yet delivered; the query would hold it \
                         all in memory (query.max_tail_mib)",
                        self.max_bytes / (1024 * 1024)
                    ));
                }
                state.cursor.advance(index, page.next_offset);
                if page.records.is_empty() {
                    break;
                }
            }
        }
        if !records.is_empty() {
            let folders = Folders {
                prefixes: &spec.prefixes,
                random: "tail",
                query: spec.partition_query.as_ref(),
                time_field: spec.partition_time_field.as_deref(),
            };
            let now = self.streams.now();
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let prepared = prepare(&records, schema, None, &spec.options, &folders, &table, now, threads)
                .map_err(|e| e.to_string())?;
            for group in prepared.groups {
                for batch in group.batches {
                    state.rows.push((group.folder.clone(), batch));
                }
            }
        }
        state.bytes = bytes;
        Ok(state.rows.clone())
    }
}
