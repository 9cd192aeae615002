//! An answer as text: an aligned table for people, CSV, or JSON (an array of row objects).

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::Answer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "table" | "text" => Some(Format::Table),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The rows of `answer` in `format` (no statistics; they travel beside the rows).
pub fn render(answer: &Answer, format: Format) -> Result<Vec<u8>, ArrowError> {
    let batches: Vec<&RecordBatch> = answer.batches.iter().filter(|b| b.num_rows() > 0).collect();
    match format {
        Format::Table => {
            let text = if batches.is_empty() {
                let empty = RecordBatch::new_empty(answer.schema.clone());
                pretty_format_batches(&[empty])?.to_string()
            } else {
                pretty_format_batches(&batches.into_iter().cloned().collect::<Vec<_>>())?.to_string()
            };
            Ok(format!("{text}\n").into_bytes())
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                if batches.is_empty() {
                    writer.write(&flat(&RecordBatch::new_empty(answer.schema.clone()))?)?;
                }
                for b in batches {
                    writer.write(&flat(b)?)?;
                }
            }
            Ok(out)
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            writer.write_batches(&batches)?;
            writer.finish()?;
            let out = writer.into_inner();
            Ok(if out.is_empty() { b"[]".to_vec() } else { out })
        }
    }
}

/// `batch` with its nested columns (structs, lists, maps) as text, which CSV can hold.
fn flat(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

    let schema = batch.schema();
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
            let text: StringArray =
                (0..column.len()).map(|i| column.is_valid(i).then(|| formatter.value(i).to_string())).collect();
            fields.push(Field::new(field.name(), datafusion::arrow::datatypes::DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// The body `/v1/query` answers with: for JSON, `{"columns": [{"name", "type"}], "rows": [...],
/// "stats": {...}}`; for CSV and tables, the rows alone (the statistics go in headers).
pub fn render_reply(answer: &Answer, format: Format) -> Result<Vec<u8>, ArrowError> {
    if format != Format::Json {
        return render(answer, format);
    }
    let columns: Vec<serde_json::Value> = answer
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let mut out = br#"{"columns":"#.to_vec();
    serde_json::to_writer(&mut out, &columns).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    out.extend_from_slice(br#","rows":"#);
    out.extend(render(answer, Format::Json)?);
    out.extend_from_slice(br#","stats":"#);
    serde_json::to_writer(&mut out, &answer.stats).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    out.push(b'}');
    Ok(out)
}
