//! Buffered records to Arrow batches, one per hour folder, and error documents for what cannot
//! be converted. Free of I/O.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value};
use tarn_convert::{ConvertOptions, DirectBatch, Objects, Reader, Shapes, TableSchema, convert, split_payload, time};
use tarn_lake::FileGroup;

use tarn_segments::partition_query::{PartitionQuery, lookup};

use crate::kpl;
use crate::parallel::in_parallel;
use tarn_segments::prefix::Prefixes;

/// A record read from the stream and not yet delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub sequence_number: String,
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
        "sequenceNumber": record.sequence_number,
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
    let mut out = Direct { schema, evolving, options, batches: Vec::new(), errors: Vec::new(), last: None };
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
                        let placed =
                            out.place(&one, 0, record, payload, whole_payload, &placing, folders, table, now_ms);
                        reader.recycle(one);
                        placed?;
                    }
                    return Some(());
                }
            };
            let whole_payload = objects.len() == 1;
            let placed = (0..objects.len()).try_for_each(|i| {
                out.place(&objects, i, record, payload, whole_payload, &placing, folders, table, now_ms)
            });
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
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        objects: &Objects<'_>,
        i: usize,
        record: &Pending,
        payload: &[u8],
        whole_payload: bool,
        placing: &[String],
        folders: &Folders<'_>,
        table: &str,
        now_ms: i64,
    ) -> Option<()> {
        let b = if placing.is_empty() {
            match self.last {
                Some((ms, b)) if ms == record.arrival_ms => b,
                _ => {
                    let b = self.batch(folders.data(record.arrival_ms, &[]));
                    self.last = Some((record.arrival_ms, b));
                    b
                }
            }
        } else {
            let fields = objects.fields(i, placing, self.options);
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
mod tests {
    use super::*;
    use tarn_segments::partition_query::PartitionQuery;

    fn pending(n: u64, arrival_ms: i64, json: &str) -> Pending {
        Pending { sequence_number: n.to_string(), arrival_ms, data: Bytes::copy_from_slice(json.as_bytes()) }
    }

    const H7: i64 = 1_795_330_800_000; // 2026-11-22T07:00:00Z

    fn prepare(
        records: &[Pending],
        schema: &TableSchema,
        options: &ConvertOptions,
        table: &str,
        now_ms: i64,
    ) -> Result<Prepared, tarn_lake::Error> {
        let prefixes = Prefixes::hive();
        let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
        super::prepare(records, schema, Some(&mut Shapes::default()), options, &folders, table, now_ms, 2)
    }
    const H8: i64 = H7 + 3_600_000;

    #[test]
    fn groups_by_arrival_hour_and_evolves_across_the_whole_flush() {
        let records = [
            pending(1, H7 + 5, r#"{"Id":1}"#),
            pending(2, H7 + 9, "{\"Id\":2}\n{\"Id\":3,\"Speed\":4}"),
            pending(3, H8, r#"{"Id":4,"Gps":{"Lat":1.5}}"#),
        ];
        let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "t", 0).unwrap();
        let folders: Vec<&str> = p.groups.iter().map(|g| g.folder.as_str()).collect();
        assert_eq!(folders, ["year=2026/month=11/day=22/hour=07", "year=2026/month=11/day=22/hour=08"]);
        assert_eq!(p.rows, 4);
        let names: Vec<&str> = p.schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "speed", "_rescued", "gps"]);
        // Both hours' batches have the whole schema, so one table schema covers the flush.
        for g in &p.groups {
            assert_eq!(g.batches[0].num_columns(), 4);
        }
        assert!(p.errors.is_empty());
    }

    #[test]
    fn unreadable_parts_become_error_documents_and_the_rest_is_delivered() {
        let records =
            [pending(10, H7, "{\"Id\":1}\nnot json"), pending(11, H7, r#"{"Id":2}"#), pending(12, H8, "[1,2]")];
        let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "raw.t", 99).unwrap();
        assert_eq!(p.rows, 2);
        let docs: Vec<&Value> = p.errors.values().flatten().collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["sequenceNumber"], "10");
        assert_eq!(docs[0]["rawData"], STANDARD.encode("not json"));
        assert_eq!(docs[0]["dataCatalogTable"]["tableName"], "raw.t");
        assert_eq!(docs[1]["sequenceNumber"], "12");
        let folders = ["format-conversion-failed/2026/11/22/07", "format-conversion-failed/2026/11/22/08"];
        assert_eq!(p.errors.keys().collect::<Vec<_>>(), folders);
    }

    #[test]
    fn records_with_known_fields_are_converted_straight_to_the_same_rows_and_errors() {
        let records = [
            pending(10, H7, "{\"Id\":1,\"Gps\":{\"Lat\":1.5}}\nnot json"),
            pending(11, H7 + 1, r#"{"Id":"two","Gps":{"Lat":2}}{"id":3}"#),
            pending(12, H8, "[1,2]"),
            pending(13, H8, r#"{"Gps":null,"Id":4}"#),
        ];
        let options = ConvertOptions::default();
        // The first flush meets new fields and takes the general path; the same records again,
        // with the schema they made, go straight from the payloads to the columns.
        let general = prepare(&records, &TableSchema::default(), &options, "t", 5).unwrap();
        let prefixes = Prefixes::hive();
        let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
        let direct = direct_chunk(&records, &general.schema, true, &options, &folders, "t", 5)
            .expect("every field is known, so the chunk converts directly");
        let again = prepare(&records, &general.schema, &options, "t", 5).unwrap();
        assert_eq!(again.schema, general.schema);
        assert_eq!((again.rows, general.rows), (4, 4));
        assert_eq!(again.errors, general.errors);
        let batches = |p: &Prepared| -> Vec<(String, Vec<arrow_array::RecordBatch>)> {
            p.groups.iter().map(|g| (g.folder.clone(), g.batches.clone())).collect()
        };
        assert_eq!(batches(&again), batches(&general));
        assert_eq!(direct.batches.len(), 2);
        assert_eq!(direct.errors.len(), 2);
        // A field the schema lacks sends the chunk to the general path.
        let new = [pending(14, H7, r#"{"Id":5,"Speed":1}"#)];
        assert!(direct_chunk(&new, &general.schema, true, &options, &folders, "t", 5).is_none());
        assert!(direct_chunk(&new, &general.schema, false, &options, &folders, "t", 5).is_some());
    }

    #[test]
    fn without_a_rescue_column_conflicting_rows_go_to_the_error_output() {
        let options = ConvertOptions { rescue_column: None, ..ConvertOptions::default() };
        let first = prepare(&[pending(1, H7, r#"{"N":1}"#)], &TableSchema::default(), &options, "t", 0).unwrap();
        let records = [pending(2, H7, r#"{"N":2}"#), pending(3, H7, r#"{"N":"x"}"#), pending(4, H7, r#"{"N":4}"#)];
        let p = prepare(&records, &first.schema, &options, "t", 0).unwrap();
        assert_eq!(p.rows, 2);
        let docs: Vec<&Value> = p.errors.values().flatten().collect();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["sequenceNumber"], "3");
        assert_eq!(docs[0]["rawData"], STANDARD.encode(r#"{"n":"x"}"#));
    }

    #[test]
    fn large_flushes_are_converted_in_chunks_that_all_reach_the_table_schema() {
        // A field that first appears in the second chunk.
        let n = CHUNK_RECORDS as u64 + 10;
        let records: Vec<Pending> = (0..n)
            .map(|i| {
                let json = if i < CHUNK_RECORDS as u64 {
                    format!(r#"{{"Id":{i}}}"#)
                } else {
                    format!(r#"{{"Id":{i},"Late":true}}"#)
                };
                pending(i, H7, &json)
            })
            .collect();
        let prefixes = Prefixes::hive();
        let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
        let options = ConvertOptions::default();
        let run = |threads| {
            let mut shapes = Shapes::default();
            super::prepare(&records, &TableSchema::default(), Some(&mut shapes), &options, &folders, "t", 0, threads)
                .unwrap()
        };
        // One thread: chunk by chunk, the first batch is built before the field appears.
        let one = run(1);
        // Two threads: both chunks are parsed, the schema evolves over both, then they convert.
        let two = run(2);
        for (p, first_has_late) in [(&one, false), (&two, true)] {
            assert_eq!(p.rows, n as usize);
            assert_eq!(p.groups.len(), 1);
            let batches = &p.groups[0].batches;
            assert_eq!(batches.len(), 2);
            assert_eq!(batches[0].column_by_name("late").is_some(), first_has_late);
            assert!(batches[1].column_by_name("late").is_some());
            assert!(p.schema.column("late").is_some());
        }
        // The same rows either way, in the same order.
        let ids = |p: &Prepared| -> Vec<i64> {
            p.groups[0]
                .batches
                .iter()
                .flat_map(|b| {
                    let a = b.column_by_name("id").unwrap().as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
                    a.values().to_vec()
                })
                .collect()
        };
        assert_eq!(ids(&one), ids(&two));
        assert_eq!(ids(&two), (0..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_field_can_place_rows_in_time_folders_and_unusable_ones_go_to_errors() {
        let records = [
            pending(1, H8, r#"{"Id":1,"Status":{"At":"2026-11-21T23:59:59Z"}}"#),
            pending(2, H8, r#"{"Id":2,"Status":{"At":1795330800000}}"#),
            pending(3, H8, r#"{"Id":3,"Status":{"At":"1795330800"}}"#),
            pending(4, H8, r#"{"Id":4,"Status":{"At":"yesterday"}}"#),
            pending(5, H8, r#"{"Id":5}"#),
        ];
        let prefixes = Prefixes::hive();
        let path = ["Status".to_owned(), "At".to_owned()];
        let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: Some(&path) };
        let options = ConvertOptions::default();
        let mut shapes = Shapes::default();
        let p = super::prepare(&records, &TableSchema::default(), Some(&mut shapes), &options, &folders, "t", 0, 1)
            .unwrap();
        let folders_rows: Vec<(String, usize)> =
            p.groups.iter().map(|g| (g.folder.clone(), g.batches.iter().map(|b| b.num_rows()).sum())).collect();
        assert_eq!(
            folders_rows,
            [("year=2026/month=11/day=21/hour=23".to_owned(), 1), ("year=2026/month=11/day=22/hour=07".to_owned(), 2)],
            "event time, not arrival time (08:00), places the rows"
        );
        let docs: Vec<&Value> = p.errors.values().flatten().collect();
        assert_eq!(docs.len(), 2);
        assert!(p.errors.keys().all(|k| k.starts_with("partitioning-failed/")), "{:?}", p.errors.keys());
        let messages: Vec<&str> = docs.iter().map(|d| d["lastErrorMessage"].as_str().unwrap()).collect();
        assert!(messages[0].contains("not a timestamp") && messages[1].contains("missing"), "{messages:?}");
    }

    #[test]
    fn rows_placed_by_record_fields_go_straight_to_the_same_folders_and_errors() {
        let records = [
            pending(1, H8, r#"{"Id":1,"Vendor":"acme","Status":{"At":"2026-11-21T23:59:59Z"}}"#),
            pending(
                2,
                H8,
                "{\"Id\":2,\"Vendor\":\"globex\",\"Status\":{\"At\":1795330800000}}\n{\"Id\":3,\"Vendor\":7,\"Status\":{\"At\":\"1795330800\"}}",
            ),
            pending(3, H8, r#"{"Id":4,"Vendor":"acme","Status":{"At":"yesterday"}}"#),
            pending(
                4,
                H8,
                "{\"Id\":5,\"Status\":{\"At\":1795330800}}\n{\"Id\":6,\"Vendor\":{\"x\":1},\"Status\":{\"At\":1795330800}}",
            ),
            pending(5, H8, "{\"Id\":7,\"Vendor\":\"acme\",\"Status\":{\"At\":1795330800}}\nnot json"),
        ];
        let prefixes = Prefixes::with_partition_keys(
            Some("vendor=!{partitionKeyFromQuery:vendor}/!{timestamp:yyyy/MM/dd/HH}/"),
            Some("errors/!{firehose:error-output-type}/"),
            Some(&["vendor"]),
        )
        .unwrap();
        let query = PartitionQuery::parse("{vendor: .Vendor}").unwrap();
        let path = ["Status".to_owned(), "At".to_owned()];
        let folders = Folders { prefixes: &prefixes, random: "r", query: Some(&query), time_field: Some(&path) };
        let options = ConvertOptions::default();
        let run = |schema: &TableSchema| {
            super::prepare(&records, schema, Some(&mut Shapes::default()), &options, &folders, "t", 0, 1).unwrap()
        };
        let general = run(&TableSchema::default());
        assert!(direct_chunk(&records, &general.schema, true, &options, &folders, "t", 0).is_some());
        let direct = run(&general.schema);
        let layout = |p: &Prepared| -> Vec<(String, Vec<arrow_array::RecordBatch>)> {
            p.groups.iter().map(|g| (g.folder.clone(), g.batches.clone())).collect()
        };
        assert_eq!(layout(&direct), layout(&general));
        assert_eq!(direct.errors, general.errors);
        let folders: Vec<&str> = direct.groups.iter().map(|g| g.folder.as_str()).collect();
        assert_eq!(
            folders,
            [
                "vendor=7/2026/11/22/07",
                "vendor=acme/2026/11/21/23",
                "vendor=acme/2026/11/22/07",
                "vendor=globex/2026/11/22/07"
            ]
        );
        // Bad time, missing key, nested key (whose raw is the parsed object), not JSON.
        let docs: Vec<&Value> = direct.errors.values().flatten().collect();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs.iter().filter(|d| d["lastErrorCode"] == PARTITIONING_FAILED.code).count(), 3);
    }

    #[test]
    fn kpl_aggregated_records_become_one_row_per_user_record() {
        let agg = crate::kpl::tests::aggregate(&["k"], &[(0, br#"{"Id":1}"#), (0, br#"{"Id":2}"#), (0, b"oops")]);
        let records = [
            Pending { sequence_number: "5".into(), arrival_ms: H7, data: Bytes::from(agg) },
            pending(6, H7, r#"{"Id":3}"#),
        ];
        let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "t", 0).unwrap();
        assert_eq!(p.rows, 3);
        let docs: Vec<&Value> = p.errors.values().flatten().collect();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["rawData"], STANDARD.encode("oops"));
        assert_eq!(docs[0]["sequenceNumber"], "5");
    }
}
