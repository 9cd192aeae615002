//! Buffered records to Arrow batches, one per hour folder, and error documents for what cannot
//! be converted. Free of I/O.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value};
use tarn_convert::{ConvertOptions, DirectBatch, Objects, Reader, Shapes, TableSchema, convert, split_payload, time};
use tarn_lake::FileGroup;
use tarn_streams::SequenceNumber;

use tarn_segments::partition_query::{PartitionQuery, lookup};

use crate::kpl;
use crate::parallel::in_parallel;
use tarn_segments::prefix::Prefixes;

/// A record read from the stream and not yet delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Formatted only for an error document (formatting every record's was about 1% of delivery).
    pub sequence_number: SequenceNumber,
    pub arrival_ms: i64,
    pub data: Bytes,
}

/// What a flush writes.
#[derive(Debug)]
pub struct Prepared {
    /// The table schema after this flush (the old one, or evolved by new fields).
    pub schema: TableSchema,
    pub groups: Vec<FileGroup>,
    pub rows: usize,
    /// Firehose error documents (`format-conversion-failed`), by error folder.
    pub errors: BTreeMap<String, Vec<Value>>,
}

/// Where a flush puts what a record becomes: its data folder and its error folder, from the
/// segment's prefixes evaluated at the record's arrival time (`random` stands for
/// `!{firehose:random-string}`, one value per flush so a folder gets one file).
pub struct Folders<'a> {
    pub prefixes: &'a Prefixes,
    pub random: &'a str,
    /// Dynamic partitioning: the query whose keys the data prefix uses.
    pub query: Option<&'a PartitionQuery>,
    /// The record field whose time fills `!{timestamp:...}` (path segments as written in the
    /// JSON); `None`: the arrival time.
    pub time_field: Option<&'a [String]>,
}

/// Why a record went to the error output: the error output type (its folder) and error code.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub output_type: &'static str,
    pub code: &'static str,
}

pub const FORMAT_CONVERSION_FAILED: Failure =
    Failure { output_type: "format-conversion-failed", code: "DataFormatConversion.ParseError" };
pub const PARTITIONING_FAILED: Failure =
    Failure { output_type: "partitioning-failed", code: "DynamicPartitioning.MetadataExtractionFailed" };

impl Folders<'_> {
    fn data(&self, arrival_ms: i64, partition: &[(String, String)]) -> String {
        let folder = self.prefixes.data.evaluate_with(arrival_ms, None, partition, &mut || self.random.to_owned());
        folder.trim_end_matches('/').to_owned()
    }

    /// The time of `object` that places it in a folder: its `time_field` (ISO-8601, or epoch
    /// seconds, milliseconds or microseconds, as a number or a string of digits), or `arrival_ms`.
    fn time_of(&self, object: &Map<String, Value>, arrival_ms: i64, options: &ConvertOptions) -> Result<i64, String> {
        let Some(path) = self.time_field else { return Ok(arrival_ms) };
        let at = lookup(object, path, |segment, top| options.name_of_key(segment, top));
        let micros = match at {
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<f64>().ok().and_then(time::epoch_to_micros)
            }
            Some(Value::String(s)) => time::parse_iso8601(s),
            Some(Value::Number(n)) => n.as_f64().and_then(time::epoch_to_micros),
            _ => None,
        };
        micros.map(|us| us.div_euclid(1000)).ok_or_else(|| match at {
            None | Some(Value::Null) => format!("partition time field .{} is missing", path.join(".")),
            Some(v) => format!("partition time field .{} is not a timestamp (ISO-8601 or epoch): {v}", path.join(".")),
        })
    }

    fn error(&self, arrival_ms: i64, failure: Failure) -> String {
        let random = &mut || self.random.to_owned();
        let folder = self.prefixes.error.evaluate(arrival_ms, Some(failure.output_type), random);
        folder.trim_end_matches('/').to_owned()
    }
}

/// A Firehose error document for a record that could not be delivered.
pub fn error_document(
    record: &Pending,
    raw: &[u8],
    failure: Failure,
    message: &str,
    table: &str,
    now_ms: i64,
) -> Value {
    serde_json::json!({
        "attemptsMade": 1,
        "arrivalTimestamp": record.arrival_ms,
        "lastErrorCode": failure.code,
        "lastErrorMessage": message,
        "attemptEndingTimestamp": now_ms,
        "rawData": STANDARD.encode(raw),
        "sequenceNumber": record.sequence_number.to_string(),
        "subSequenceNumber": null,
        "dataCatalogTable": { "tableName": table },
    })
}

/// The objects of one hour folder, and the index of the record each came from.
type HourRows = (Vec<usize>, Vec<Map<String, Value>>);

/// Records converted together. Small enough that the per-row maps of one chunk reuse the memory
/// of the last instead of faulting in fresh pages (a profile of 64 MiB flushes converted at once
/// spent a fifth of its time zeroing new pages).
const CHUNK_RECORDS: usize = 8192;

/// One chunk's objects by data folder, and the error documents its parsing produced.
struct ParsedChunk {
    by_folder: BTreeMap<String, HourRows>,
    errors: Vec<(String, Value)>,
}

/// One chunk converted: a batch per data folder, and the error documents conversion produced.
struct ConvertedChunk {
    batches: Vec<FileGroup>,
    errors: Vec<(String, Value)>,
}

/// Splits, normalizes, evolves the schema with and converts `records`, grouped by data folder,
/// chunk by chunk, `threads` chunks at a time: chunks are parsed in parallel, the schema evolves
/// over them in order, then they are converted in parallel. A folder gets one batch per chunk, and
/// the batches of early chunks may lack columns later ones added (the lake fills them with nulls
/// when it writes them). A payload part that is not a JSON object, and (without a rescue column) a
/// value that fits no column, becomes an error document; the rest of the records are delivered.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    records: &[Pending],
    schema: &TableSchema,
    // `None`: the schema is declared and does not evolve (fields it lacks are ignored).
    mut shapes: Option<&mut Shapes>,
    options: &ConvertOptions,
    folders: &Folders<'_>,
    table: &str,
    now_ms: i64,
    threads: usize,
) -> Result<Prepared, tarn_lake::Error> {
    let mut schema = schema.clone();
    let mut groups: BTreeMap<String, FileGroup> = BTreeMap::new();
    let mut errors: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut total = 0;
    let chunks: Vec<&[Pending]> = records.chunks(CHUNK_RECORDS).collect();
    let evolving = shapes.is_some();
    for round in chunks.chunks(threads.max(1)) {
        // Most chunks hold only fields the schema has: they go straight from the payloads to
        // the column builders. The others take the general path below.
        let current = &schema;
        let mut done: Vec<Option<Result<ConvertedChunk, tarn_lake::Error>>> =
            in_parallel(round.to_vec(), threads, |chunk| {
                direct_chunk(chunk, current, evolving, options, folders, table, now_ms).map(Ok)
            });
        let general: Vec<usize> = (0..round.len()).filter(|&i| done[i].is_none()).collect();
        if !general.is_empty() {
            let parsed = in_parallel(general.iter().map(|&i| round[i]).collect(), threads, |chunk| {
                parse_chunk(chunk, options, folders, table, now_ms)
            });
            if let Some(shapes) = shapes.as_deref_mut() {
                for p in &parsed {
                    for (_, objects) in p.by_folder.values() {
                        schema = shapes.evolve(&schema, objects, options).0;
                    }
                }
            }
            let schema = &schema;
            let work: Vec<(&[Pending], ParsedChunk)> = general.iter().map(|&i| round[i]).zip(parsed).collect();
            let converted = in_parallel(work, threads, |(chunk, parsed)| {
                let mut out = convert_chunk(chunk, parsed.by_folder, schema, options, folders, table, now_ms)?;
                out.errors.splice(0..0, parsed.errors);
                Ok::<_, tarn_lake::Error>(out)
            });
            for (i, c) in general.into_iter().zip(converted) {
                done[i] = Some(c);
            }
        }
        // In chunk order, so a folder's rows keep the order they arrived in.
        for c in done {
            let c = c.expect("every chunk was converted")?;
            for (folder, doc) in c.errors {
                errors.entry(folder).or_default().push(doc);
            }
            for converted in c.batches {
                total += converted.batches.iter().map(|b| b.num_rows()).sum::<usize>();
                let group = groups
                    .entry(converted.folder.clone())
                    .or_insert_with(|| FileGroup { folder: converted.folder.clone(), batches: Vec::new() });
                group.batches.extend(converted.batches);
            }
        }
    }
    Ok(Prepared { schema, groups: groups.into_values().collect(), rows: total, errors })
}

/// A chunk converted straight from its payloads ([`DirectBatch`]), when every record's fields
/// are in `schema` (or the schema is declared) and fit it or the rescue column. `None`: the chunk
/// needs the general path. Payloads that are not all JSON objects are split as the general path
/// splits them: their bad parts become error documents, their objects rows. Rows placed by a
/// record field (time, partition keys) read only the top-level fields those need.
fn direct_chunk(
    chunk: &[Pending],
    schema: &TableSchema,
    evolving: bool,
    options: &ConvertOptions,
    folders: &Folders<'_>,
    table: &str,
    now_ms: i64,
) -> Option<ConvertedChunk> {
    let placing: Vec<String> = folders
        .time_field
        .into_iter()
        .chain(folders.query.into_iter().flat_map(|q| q.paths()))
        .filter_map(|path| path.first())
        .map(|first| options.name_of_key(first, true))
        .collect();
    let mut out = Direct {
        schema,
        evolving,
        options,
        folders,
        placing,
        table,
        now_ms,
        batches: Vec::new(),
        errors: Vec::new(),
        last: None,
    };
    let mut reader = Reader::default();
    for record in chunk {
        let mut convert = |payload: &[u8]| -> Option<()> {
            let objects = match reader.read(payload) {
                Ok(objects) => objects,
                Err(_) => {
                    // Split as the general path does; each object is then read on its own.
                    let (objects, failures) = split_payload(payload);
                    for failure in failures {
                        let message = &failure.message;
                        let doc =
                            error_document(record, &failure.raw, FORMAT_CONVERSION_FAILED, message, table, now_ms);
                        out.errors.push((folders.error(record.arrival_ms, FORMAT_CONVERSION_FAILED), doc));
                    }
                    let whole_payload = objects.len() == 1;
                    for object in objects {
                        let text = serde_json::to_vec(&Value::Object(object)).ok()?;
                        let one = reader.read(&text).ok()?;
                        let placed = out.place(&one, 0, record, payload, whole_payload);
                        reader.recycle(one);
                        placed?;
                    }
                    return Some(());
                }
            };
            let whole_payload = objects.len() == 1;
            let placed = (0..objects.len()).try_for_each(|i| out.place(&objects, i, record, payload, whole_payload));
            reader.recycle(objects);
            placed
        };
        // A KPL-aggregated record carries several user records; each is a payload.
        match kpl::deaggregate(&record.data) {
            Some(parts) => {
                for part in parts {
                    convert(part)?;
                }
            }
            None => convert(&record.data)?,
        }
    }
    let mut converted = ConvertedChunk { batches: Vec::new(), errors: out.errors };
    for (folder, batch) in out.batches {
        converted.batches.push(FileGroup { folder, batches: vec![batch.finish().ok()?.batch] });
    }
    Some(converted)
}

/// A chunk's batches by data folder while [`direct_chunk`] fills them.
struct Direct<'s> {
    schema: &'s TableSchema,
    evolving: bool,
    options: &'s ConvertOptions,
    folders: &'s Folders<'s>,
    /// The column names of the top-level fields that place a row (time field, partition keys);
    /// empty: rows are placed by arrival time.
    placing: Vec<String>,
    table: &'s str,
    now_ms: i64,
    batches: Vec<(String, DirectBatch<'s>)>,
    errors: Vec<(String, Value)>,
    /// The last arrival time placed by arrival time alone, and its batch: records of one
    /// millisecond share a folder, so the prefix is evaluated once for them.
    last: Option<(i64, usize)>,
}

impl<'s> Direct<'s> {
    fn batch(&mut self, folder: String) -> usize {
        match self.batches.iter().position(|(f, _)| *f == folder) {
            Some(b) => b,
            None => {
                self.batches.push((folder, DirectBatch::new(self.schema, self.options, self.evolving)));
                self.batches.len() - 1
            }
        }
    }

    /// Puts object `i` of a payload of `record` into its folder's batch, or (when its time or
    /// partition keys cannot be read) into the error output. `None`: the chunk needs the general
    /// path.
    fn place(
        &mut self,
        objects: &Objects<'_>,
        i: usize,
        record: &Pending,
        payload: &[u8],
        whole_payload: bool,
    ) -> Option<()> {
        let (folders, table, now_ms) = (self.folders, self.table, self.now_ms);
        let b = if self.placing.is_empty() {
            match self.last {
                Some((ms, b)) if ms == record.arrival_ms => b,
                _ => {
                    let b = self.batch(folders.data(record.arrival_ms, &[]));
                    self.last = Some((record.arrival_ms, b));
                    b
                }
            }
        } else {
            let fields = objects.fields(i, &self.placing, self.options);
            let options = self.options;
            let placed = folders.time_of(&fields, record.arrival_ms, options).and_then(|at| match folders.query {
                Some(query) => {
                    query.evaluate(&fields, |segment, top| options.name_of_key(segment, top)).map(|p| (at, p))
                }
                None => Ok((at, Vec::new())),
            });
            match placed {
                Ok((at, partition)) => self.batch(folders.data(at, &partition)),
                Err(message) => {
                    // A payload of one object is shown as it arrived; parts of a larger one as parsed.
                    let raw = if whole_payload { payload.to_vec() } else { objects.normalized_json(i, options) };
                    let doc = error_document(record, &raw, PARTITIONING_FAILED, &message, table, now_ms);
                    self.errors.push((folders.error(record.arrival_ms, PARTITIONING_FAILED), doc));
                    return Some(());
                }
            }
        };
        self.batches[b].1.append_object(objects, i).ok()
    }
}

fn parse_chunk(
    chunk: &[Pending],
    options: &ConvertOptions,
    folders: &Folders<'_>,
    table: &str,
    now_ms: i64,
) -> ParsedChunk {
    let mut by_folder: BTreeMap<String, HourRows> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, record) in chunk.iter().enumerate() {
        // A KPL-aggregated record carries several user records; each is a payload.
        let payloads = kpl::deaggregate(&record.data).unwrap_or_else(|| vec![&record.data[..]]);
        for payload in payloads {
            let (objects, failures) = options.parse_objects(payload);
            for failure in failures {
                let doc =
                    error_document(record, &failure.raw, FORMAT_CONVERSION_FAILED, &failure.message, table, now_ms);
                errors.push((folders.error(record.arrival_ms, FORMAT_CONVERSION_FAILED), doc));
            }
            if folders.query.is_none() && folders.time_field.is_none() {
                let (owners, rows) = by_folder.entry(folders.data(record.arrival_ms, &[])).or_default();
                owners.extend(std::iter::repeat_n(i, objects.len()));
                rows.extend(objects);
                continue;
            }
            // A payload of one object is shown as it arrived; parts of a larger one as parsed.
            let whole_payload = objects.len() == 1;
            for object in objects {
                let placed = folders.time_of(&object, record.arrival_ms, options).and_then(|at| match folders.query {
                    Some(query) => {
                        query.evaluate(&object, |segment, top| options.name_of_key(segment, top)).map(|p| (at, p))
                    }
                    None => Ok((at, Vec::new())),
                });
                match placed {
                    Ok((at, partition)) => {
                        let (owners, rows) = by_folder.entry(folders.data(at, &partition)).or_default();
                        owners.push(i);
                        rows.push(object);
                    }
                    Err(message) => {
                        let raw = if whole_payload {
                            payload.to_vec()
                        } else {
                            serde_json::to_vec(&object).unwrap_or_default()
                        };
                        let doc = error_document(record, &raw, PARTITIONING_FAILED, &message, table, now_ms);
                        errors.push((folders.error(record.arrival_ms, PARTITIONING_FAILED), doc));
                    }
                }
            }
        }
    }
    ParsedChunk { by_folder, errors }
}

fn convert_chunk(
    chunk: &[Pending],
    by_folder: BTreeMap<String, HourRows>,
    schema: &TableSchema,
    options: &ConvertOptions,
    folders: &Folders<'_>,
    table: &str,
    now_ms: i64,
) -> Result<ConvertedChunk, tarn_lake::Error> {
    let mut out = ConvertedChunk { batches: Vec::new(), errors: Vec::new() };
    for (folder, (owners, mut objects)) in by_folder {
        let mut converted = convert(schema, &objects, options)?;
        if options.rescue_column.is_none() && !converted.conflicts.is_empty() {
            // Without a rescue column, rows with a value that fits no column go to the error output.
            let mut bad: Vec<usize> = converted.conflicts.iter().map(|(row, _)| *row).collect();
            bad.sort_unstable();
            bad.dedup();
            for (row, message) in &converted.conflicts {
                let record = &chunk[owners[*row]];
                let raw = serde_json::to_vec(&objects[*row]).unwrap_or_default();
                let doc = error_document(record, &raw, FORMAT_CONVERSION_FAILED, message, table, now_ms);
                out.errors.push((folders.error(record.arrival_ms, FORMAT_CONVERSION_FAILED), doc));
            }
            objects = objects
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bad.binary_search(i).is_err())
                .map(|(_, o)| o)
                .collect();
            converted = convert(schema, &objects, options)?;
        }
        out.batches.push(FileGroup { folder, batches: vec![converted.batch] });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
