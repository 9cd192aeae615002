//! The file formats the crawler knows: which a file is (by its name), the schema its content
//! shows, and (JSON and CSV) its rows as Arrow batches of a table's schema. Pure: bytes in,
//! schemas and batches out.

use std::io::{Cursor, Read};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tarn_convert::{
    Column, ColumnType, ConvertOptions, DirectBatch, Reader, TableSchema, convert, evolve, split_payload,
};

/// Records (JSON) or lines (CSV) the schema is inferred from, per file.
const SAMPLE_ROWS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Json,
    Csv,
}

impl FileFormat {
    /// The format of the file named `key`, and whether it is gzip'd; `None` for a file the
    /// crawler passes over (unknown extension, or hidden: `_SUCCESS`, `.crc`, `_temporary/…`).
    pub fn of_key(key: &str) -> Option<(FileFormat, bool)> {
        if key.split('/').any(|part| part.starts_with('_') || part.starts_with('.')) {
            return None;
        }
        let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
        let (name, gzip) = match name.strip_suffix(".gz").or_else(|| name.strip_suffix(".gzip")) {
            Some(inner) => (inner.to_owned(), true),
            None => (name, false),
        };
        let format = match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("parquet" | "parq") => FileFormat::Parquet,
            Some("json" | "jsonl" | "ndjson") => FileFormat::Json,
            Some("csv") => FileFormat::Csv,
            _ => return None,
        };
        // Parquet compresses inside the file; a gzip'd Parquet file is not something to read.
        (!(gzip && format == FileFormat::Parquet)).then_some((format, gzip))
    }

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
        }
    }
}

/// `bytes` decompressed when `key` names a gzip'd file.
pub fn gunzip_if(key: &str, bytes: Bytes) -> Result<Bytes, String> {
    if FileFormat::of_key(key).is_some_and(|(_, gzip)| gzip) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{key} is not valid gzip: {e}"))?;
        Ok(Bytes::from(out))
    } else {
        Ok(bytes)
    }
}

fn json_options() -> ConvertOptions {
    // Values that fit no column read as null rather than going to a rescue column.
    ConvertOptions { rescue_column: None, ..ConvertOptions::default() }
}

/// The schema a file's content shows (`bytes` already decompressed). JSON keys and CSV headers
/// become lower-case column names, as Glue names columns; Parquet keeps the file's names.
pub fn infer_schema(format: FileFormat, bytes: &Bytes) -> Result<(Schema, u64), String> {
    match format {
        FileFormat::Parquet => {
            let metadata = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(bytes, Default::default())
                .map_err(|e| format!("not a readable Parquet file: {e}"))?;
            let schema = metadata.schema();
            let rows = metadata.metadata().file_metadata().num_rows().max(0) as u64;
            let fields = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>();
            Ok((Schema::new(fields), rows))
        }
        FileFormat::Json => {
            let options = json_options();
            // Counted on the tape; the schema inferred from the first pieces only.
            if let Some((count, sample)) = count_json_direct(bytes, SAMPLE_ROWS) {
                let objects = split_payload(sample).0;
                let rows: Vec<_> = objects.into_iter().take(SAMPLE_ROWS).map(|o| options.normalize(o)).collect();
                let (schema, _) = evolve(&TableSchema::default(), &rows, &options);
                return Ok((schema.to_arrow(), count));
            }
            let (objects, errors) = split_payload(bytes);
            if objects.is_empty()
                && let Some(e) = errors.first()
            {
                return Err(format!("no JSON object could be read: {e:?}"));
            }
            let count = objects.len() as u64;
            let rows: Vec<_> = objects.into_iter().take(SAMPLE_ROWS).map(|o| options.normalize(o)).collect();
            let (schema, _) = evolve(&TableSchema::default(), &rows, &options);
            Ok((schema.to_arrow(), count))
        }
        FileFormat::Csv => {
            // Every row is looked at, so the types hold for all of them and the count is exact.
            let format = arrow_csv::reader::Format::default().with_header(true);
            let (schema, rows) = format
                .infer_schema(Cursor::new(&bytes[..]), None)
                .map_err(|e| format!("not a readable CSV file with a header: {e}"))?;
            let fields = schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name().trim().to_lowercase(), csv_type(f.data_type()), true))
                .collect::<Vec<_>>();
            Ok((Schema::new(fields), rows as u64))
        }
    }
}

/// CSV timestamps as microseconds in UTC, like the rest of the lake.
fn csv_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        DataType::Null => DataType::Utf8,
        other => other.clone(),
    }
}

/// The type that holds values of both `a` and `b`: the same type, a float for mixed numbers,
/// structs and lists merged field by field, text otherwise.
pub fn merge_type(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        _ if a == b => a.clone(),
        (Null, other) | (other, Null) => other.clone(),
        (Int64 | Int32 | Float64 | Float32, Int64 | Int32 | Float64 | Float32) => Float64,
        (Struct(x), Struct(y)) => {
            let mut fields: Vec<Field> = x.iter().map(|f| f.as_ref().clone()).collect();
            for f in y.iter() {
                match fields.iter_mut().find(|g| g.name() == f.name()) {
                    Some(g) => *g = Field::new(g.name(), merge_type(g.data_type(), f.data_type()), true),
                    None => fields.push(f.as_ref().clone()),
                }
            }
            Struct(Fields::from(fields))
        }
        (List(x), List(y)) => List(Arc::new(Field::new(x.name(), merge_type(x.data_type(), y.data_type()), true))),
        _ => Utf8,
    }
}

/// The converter's type for an Arrow type of a JSON table.
fn column_type(data_type: &DataType) -> ColumnType {
    match data_type {
        DataType::Boolean => ColumnType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => ColumnType::Long,
        DataType::Float32 | DataType::Float64 => ColumnType::Double,
        DataType::Timestamp(_, _) => ColumnType::Timestamp,
        DataType::Struct(fields) => {
            ColumnType::Struct(fields.iter().map(|f| Column::new(f.name(), column_type(f.data_type()))).collect())
        }
        DataType::List(item) => ColumnType::List(Box::new(column_type(item.data_type()))),
        _ => ColumnType::String,
    }
}

/// The rows of a JSON or CSV file (`bytes` decompressed) in `schema` (columns matched by name,
/// absent ones null), at most `batch_rows` rows per batch.
pub fn decode(
    format: FileFormat,
    schema: &Schema,
    bytes: &Bytes,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, String> {
    let schema = Arc::new(schema.clone());
    match format {
        FileFormat::Parquet => Err("Parquet files are read by the query engine's Parquet reader".into()),
        FileFormat::Json => {
            let options = json_options();
            let table = TableSchema {
                columns: schema.fields().iter().map(|f| Column::new(f.name(), column_type(f.data_type()))).collect(),
            };
            if let Some(batches) = decode_json_direct(&table, &options, bytes, batch_rows) {
                return batches.iter().map(|b| conform(b, &schema)).collect();
            }
            let rows: Vec<_> = split_payload(bytes).0.into_iter().map(|o| options.normalize(o)).collect();
            rows.chunks(batch_rows.max(1))
                .map(|chunk| {
                    let converted = convert(&table, chunk, &options).map_err(|e| e.to_string())?;
                    conform(&converted.batch, &schema)
                })
                .collect()
        }
        FileFormat::Csv => {
            // This file's own header: files of one table may have different columns.
            let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
            let names = arrow_csv::reader::Format::default()
                .with_header(true)
                .infer_schema(Cursor::new(header), Some(0))
                .map_err(|e| format!("cannot read the CSV header: {e}"))?
                .0;
            let file_schema = Arc::new(Schema::new(
                names
                    .fields()
                    .iter()
                    .map(|f| {
                        let name = f.name().trim().to_lowercase();
                        let data_type = schema.field_with_name(&name).map_or(DataType::Utf8, |t| t.data_type().clone());
                        Field::new(name, data_type, true)
                    })
                    .collect::<Vec<_>>(),
            ));
            let reader = arrow_csv::ReaderBuilder::new(file_schema)
                .with_header(true)
                .with_batch_size(batch_rows.max(1))
                .build(Cursor::new(&bytes[..]))
                .map_err(|e| e.to_string())?;
            reader.map(|b| conform(&b.map_err(|e| format!("CSV: {e}"))?, &schema)).collect()
        }
    }
}

/// Pieces of a JSON file of about 4 MiB, each ending at a line end, for reading it a piece at
/// a time (JSON lines); an object spread over lines may be cut, which the tape refuses.
fn json_pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    const PIECE: usize = 4 << 20;
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = match rest.get(PIECE..).and_then(|tail| tail.iter().position(|b| *b == b'\n')) {
            Some(at) => PIECE + at + 1,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// A JSON lines file straight into batches of `table` (tarn-convert's direct path); `None` when
/// some piece is not plain JSON objects (the general path then reads the file and reports).
fn decode_json_direct(
    table: &TableSchema,
    options: &ConvertOptions,
    bytes: &[u8],
    batch_rows: usize,
) -> Option<Vec<RecordBatch>> {
    let batch_rows = batch_rows.max(1);
    let mut batches = Vec::new();
    // A piece's rows are cut into batches of at most `batch_rows` (slices, not copies).
    let mut cut = |built: RecordBatch| {
        let mut offset = 0;
        while offset < built.num_rows() {
            let len = batch_rows.min(built.num_rows() - offset);
            batches.push(built.slice(offset, len));
            offset += len;
        }
    };
    let mut batch = DirectBatch::new(table, options, false).nulls_for_misfits();
    for piece in json_pieces(bytes) {
        if piece.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        batch.append(piece).ok()?;
        if batch.rows() >= batch_rows {
            let full = std::mem::replace(&mut batch, DirectBatch::new(table, options, false).nulls_for_misfits());
            cut(full.finish().ok()?.batch);
        }
    }
    let rest = batch.finish().ok()?.batch;
    if rest.num_rows() > 0 {
        cut(rest);
    }
    Some(batches)
}

/// The objects of a JSON lines file counted, and the bytes of its first pieces holding at least
/// `sample` objects; `None` when some piece is not plain JSON objects.
fn count_json_direct(bytes: &[u8], sample: usize) -> Option<(u64, &[u8])> {
    let mut reader = Reader::default();
    let (mut count, mut sample_end) = (0u64, 0usize);
    let mut at = 0;
    for piece in json_pieces(bytes) {
        at += piece.len();
        if piece.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let objects = reader.read(piece).ok()?;
        count += objects.len() as u64;
        reader.recycle(objects);
        if (count as usize) < sample || sample_end == 0 {
            sample_end = at;
        }
    }
    Some((count, &bytes[..sample_end]))
}

/// `batch` with `schema`'s columns: by name, cast where the types differ, null where absent.
fn conform(batch: &RecordBatch, schema: &Arc<Schema>) -> Result<RecordBatch, String> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast_to(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

fn arrow_cast_to(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    // Values that do not fit the table's type (after a re-crawl widened nothing) read as null.
    arrow_cast::cast(array, to).map_err(|e| format!("cannot read a {} column as {to}: {e}", array.data_type()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_read_straight_match_the_general_path() {
        // Enough lines for several pieces; values that do not fit their column; unknown keys.
        let mut text = String::new();
        for i in 0..60_000 {
            let speed = if i % 7 == 0 { "\"fast\"".to_string() } else { i.to_string() };
            text.push_str(&format!(
                "{{\"Id\":{i},\"Speed\":{speed},\"At\":\"2026-11-22T10:00:{:02}Z\",\"Gps\":{{\"Lat\":{}.5}},\"Extra\":true}}\n",
                i % 60,
                i % 90
            ));
        }
        let bytes = Bytes::from(text);
        let (schema, rows) = infer_schema(FileFormat::Json, &bytes).unwrap();
        assert_eq!(rows, 60_000);
        assert_eq!(schema.field_with_name("speed").unwrap().data_type(), &DataType::Utf8, "mixed in the sample");
        let narrow = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("speed", DataType::Int64, true),
            Field::new("gps", schema.field_with_name("gps").unwrap().data_type().clone(), true),
        ]);
        let table = TableSchema {
            columns: narrow.fields().iter().map(|f| Column::new(f.name(), column_type(f.data_type()))).collect(),
        };
        let options = json_options();
        let direct = decode_json_direct(&table, &options, &bytes, 25_000).expect("plain JSON lines");
        assert!(direct.len() >= 3 && direct.iter().all(|b| b.num_rows() <= 25_000));
        let rows: Vec<_> = split_payload(&bytes).0.into_iter().map(|o| options.normalize(o)).collect();
        let general = convert(&table, &rows, &options).unwrap().batch;
        let mut offset = 0;
        for batch in &direct {
            assert_eq!(batch, &general.slice(offset, batch.num_rows()), "rows from {offset}");
            offset += batch.num_rows();
        }
        assert_eq!(offset, 60_000);
        // Not JSON lines: the general path takes it.
        assert!(decode_json_direct(&table, &options, b"{\"id\":\n1}\n[1]", 10).is_none());
    }
}
