//! Builds an Arrow batch from objects and a table schema, column by column, following the type
//! policy in the crate documentation.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, ArrowPrimitiveType, ListArray, PrimitiveArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, Field};
use serde_json::{Map, Value};

use crate::keys::ConvertOptions;
use crate::schema::{Column, ColumnType, TableSchema, UTC};
use crate::split::kind;
use crate::time::{epoch_to_micros, parse_iso8601};

/// A converted batch and what had to be rescued.
#[derive(Debug)]
pub struct Converted {
    pub batch: RecordBatch,
    /// Rows (by index) with a value that fit no column. With a rescue column, the values are in
    /// it; without one, these rows should go to the error output instead (convert the rest again).
    pub conflicts: Vec<(usize, String)>,
}

/// A value at `row`, as seen from one column (`None`: the key is absent).
type Cell<'v> = (usize, Option<&'v Value>);

struct Rescue {
    per_row: Vec<Option<Map<String, Value>>>,
    conflicts: Vec<(usize, String)>,
}

impl Rescue {
    fn keep(&mut self, row: usize, path: &str, value: &Value, expected: &ColumnType) {
        self.per_row[row].get_or_insert_with(Map::new).insert(path.to_owned(), value.clone());
        self.conflicts.push((row, format!("field {path}: {} does not fit a {} column", kind(value), expected.name())));
    }
}

/// A primitive column: each present value is `parse`d, or rescued when it does not fit.
fn primitive<T: ArrowPrimitiveType>(
    ty: &ColumnType,
    cells: &[Cell<'_>],
    path: &str,
    rescue: &mut Rescue,
    parse: impl Fn(&Value) -> Option<T::Native>,
) -> PrimitiveArray<T> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(cells.len());
    for &(row, v) in cells {
        match v {
            None | Some(Value::Null) => b.append_null(),
            Some(value) => match parse(value) {
                Some(x) => b.append_value(x),
                None => {
                    rescue.keep(row, path, value, ty);
                    b.append_null()
                }
            },
        }
    }
    b.finish()
}

/// A value in a `long` column: integral numbers, and text that reads as one.
pub(crate) fn long_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
        }
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    }
}

/// A value in a `double` column: any number, and text that reads as one.
pub(crate) fn double_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
}

/// A value in a `timestamp` column: ISO-8601 text, or an epoch number.
pub(crate) fn timestamp_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_iso8601(s),
        Value::Number(n) => n.as_f64().and_then(epoch_to_micros),
        _ => None,
    }
}

fn build(ty: &ColumnType, cells: &[Cell<'_>], path: &str, rescue: &mut Rescue) -> Result<ArrayRef, ArrowError> {
    Ok(match ty {
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(cells.len());
            for &(row, v) in cells {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bool(x)) => b.append_value(*x),
                    Some(Value::String(s)) if s == "true" || s == "false" => b.append_value(s == "true"),
                    Some(other) => {
                        rescue.keep(row, path, other, ty);
                        b.append_null()
                    }
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Long => Arc::new(primitive::<Int64Type>(ty, cells, path, rescue, long_of)),
        ColumnType::Double => Arc::new(primitive::<Float64Type>(ty, cells, path, rescue, double_of)),
        ColumnType::String => {
            let mut b = StringBuilder::with_capacity(cells.len(), cells.len() * 16);
            for &(_, v) in cells {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::String(s)) => b.append_value(s),
                    Some(other) => b.append_value(other.to_string()),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp => {
            Arc::new(primitive::<TimestampMicrosecondType>(ty, cells, path, rescue, timestamp_of).with_timezone(UTC))
        }
        ColumnType::Struct(children) => {
            let mut valid = Vec::with_capacity(cells.len());
            let mut objects: Vec<Option<&Map<String, Value>>> = Vec::with_capacity(cells.len());
            for &(row, v) in cells {
                match v {
                    Some(Value::Object(o)) => {
                        valid.push(true);
                        objects.push(Some(o));
                    }
                    None | Some(Value::Null) => {
                        valid.push(false);
                        objects.push(None);
                    }
                    Some(other) => {
                        rescue.keep(row, path, other, ty);
                        valid.push(false);
                        objects.push(None);
                    }
                }
            }
            // One pass over each object's entries hands values to the children, matched by a
            // linear scan of the few child names (cheaper than a hashed lookup per child).
            let mut child_cells: Vec<Vec<Cell<'_>>> =
                children.iter().map(|_| cells.iter().map(|&(row, _)| (row, None)).collect()).collect();
            for (i, o) in objects.iter().enumerate() {
                for (key, value) in o.iter().flat_map(|o| o.iter()) {
                    if let Some(c) = children.iter().position(|c| c.name == *key) {
                        child_cells[c][i].1 = Some(value);
                    }
                }
            }
            let arrays = children
                .iter()
                .zip(&child_cells)
                .map(|(c, child)| build(&c.ty, child, &format!("{path}.{}", c.name), rescue))
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Vec<Field> = children.iter().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect();
            Arc::new(StructArray::try_new(fields.into(), arrays, Some(NullBuffer::from(valid)))?)
        }
        ColumnType::List(element) => {
            let mut valid = Vec::with_capacity(cells.len());
            let mut lengths = Vec::with_capacity(cells.len());
            let mut items: Vec<Cell<'_>> = Vec::new();
            for &(row, v) in cells {
                match v {
                    Some(Value::Array(a)) => {
                        valid.push(true);
                        lengths.push(a.len());
                        items.extend(a.iter().map(|i| (row, Some(i))));
                    }
                    None | Some(Value::Null) => {
                        valid.push(false);
                        lengths.push(0);
                    }
                    Some(other) => {
                        rescue.keep(row, path, other, ty);
                        valid.push(false);
                        lengths.push(0);
                    }
                }
            }
            let values = build(element, &items, &format!("{path}[]"), rescue)?;
            let field = Arc::new(Field::new("element", element.to_arrow(), true));
            Arc::new(ListArray::try_new(
                field,
                OffsetBuffer::from_lengths(lengths),
                values,
                Some(NullBuffer::from(valid)),
            )?)
        }
    })
}

/// Converts `rows` (already normalized by [`ConvertOptions::normalize`] and covered by
/// `schema`, see [`crate::evolve`]) into one batch. Keys without a column are ignored.
pub fn convert(
    schema: &TableSchema,
    rows: &[Map<String, Value>],
    options: &ConvertOptions,
) -> Result<Converted, ArrowError> {
    let mut rescue = Rescue { per_row: vec![None; rows.len()], conflicts: Vec::new() };
    let rescue_name = options.rescue_column.as_deref();
    let data_columns: Vec<&Column> = schema.columns.iter().filter(|c| Some(c.name.as_str()) != rescue_name).collect();
    // One pass over each row's entries hands every value to its column; names are matched by a
    // linear scan, cheaper than hashing each key for the handful of columns tables have.
    let mut cells: Vec<Vec<Cell<'_>>> =
        data_columns.iter().map(|_| (0..rows.len()).map(|i| (i, None)).collect()).collect();
    for (i, row) in rows.iter().enumerate() {
        for (key, value) in row {
            if let Some(c) = data_columns.iter().position(|c| c.name == *key) {
                cells[c][i].1 = Some(value);
            }
        }
    }
    let mut arrays = Vec::with_capacity(schema.columns.len());
    for (column, cells) in data_columns.iter().zip(&cells) {
        arrays.push((column.name.clone(), build(&column.ty, cells, &column.name, &mut rescue)?));
    }
    if let Some(name) = rescue_name {
        let mut b = StringBuilder::new();
        for kept in &rescue.per_row {
            match kept {
                Some(map) => b.append_value(Value::Object(map.clone()).to_string()),
                None => b.append_null(),
            }
        }
        arrays.push((name.to_owned(), Arc::new(b.finish())));
    }
    // Columns in schema order, the rescue column where the schema has it.
    let ordered: Vec<ArrayRef> = schema
        .columns
        .iter()
        .map(|c| arrays.iter().find(|(n, _)| *n == c.name).map(|(_, a)| a.clone()).expect("every column was built"))
        .collect();
    let arrow_schema = Arc::new(schema.to_arrow());
    let batch = if ordered.is_empty() {
        RecordBatch::try_new_with_options(
            arrow_schema,
            ordered,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?
    } else {
        RecordBatch::try_new(arrow_schema, ordered)?
    };
    Ok(Converted { batch, conflicts: rescue.conflicts })
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use serde_json::json;

    use super::*;
    use crate::evolve;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
    }

    fn run(schema: &TableSchema, r: &[Map<String, Value>]) -> (TableSchema, Converted) {
        let opts = ConvertOptions::default();
        let (s, _) = evolve(schema, r, &opts);
        let c = convert(&s, r, &opts).unwrap();
        (s, c)
    }

    #[test]
    fn nested_vehicle_records_convert_with_nulls_for_absent_fields() {
        let r = rows(json!([
            {"vin": "A1", "speed": 42, "at": "2024-05-01T10:00:00Z", "gps": {"lat": 48.1, "lon": 11.5}, "alerts": ["low-fuel"]},
            {"vin": "B2", "at": "2024-05-01T10:00:01.5Z", "gps": null, "alerts": []}
        ]));
        let (s, c) = run(&TableSchema::default(), &r);
        let b = &c.batch;
        assert_eq!((b.num_rows(), b.num_columns()), (2, s.columns.len()));
        assert!(c.conflicts.is_empty());
        let speed = b.column_by_name("speed").unwrap().as_primitive::<Int64Type>();
        assert_eq!((speed.value(0), speed.is_null(1)), (42, true));
        let at = b.column_by_name("at").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(1) - at.value(0), 1_500_000);
        let gps = b.column_by_name("gps").unwrap().as_struct();
        assert!(gps.is_valid(0) && gps.is_null(1));
        assert_eq!(gps.column_by_name("lat").unwrap().as_primitive::<Float64Type>().value(0), 48.1);
        let alerts = b.column_by_name("alerts").unwrap().as_list::<i32>();
        assert_eq!((alerts.value_length(0), alerts.value_length(1)), (1, 0));
        assert!(b.column_by_name("_rescued").unwrap().is_null(0));
    }

    #[test]
    fn conflicting_values_are_rescued_not_dropped() {
        let (s, _) = run(
            &TableSchema::default(),
            &rows(json!([{"speed": 1, "gps": {"lat": 1.0}, "at": "2024-01-01T00:00:00Z"}])),
        );
        let later = rows(json!([
            {"speed": "fast", "gps": "unknown", "at": "yesterday"},
            {"speed": 3.0, "gps": {"lat": "7"}, "at": 1700000000}
        ]));
        let (_, c) = run(&s, &later);
        let b = &c.batch;
        let speed = b.column_by_name("speed").unwrap().as_primitive::<Int64Type>();
        assert!(speed.is_null(0));
        assert_eq!(speed.value(1), 3, "an integral double fits a long column");
        let lat =
            b.column_by_name("gps").unwrap().as_struct().column_by_name("lat").unwrap().as_primitive::<Float64Type>();
        assert_eq!(lat.value(1), 7.0, "numeric text fits a double column");
        let at = b.column_by_name("at").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(1), 1_700_000_000_000_000, "epoch seconds fit a timestamp column");
        let rescued = b.column_by_name("_rescued").unwrap().as_string::<i32>();
        let kept: Value = serde_json::from_str(rescued.value(0)).unwrap();
        assert_eq!(kept, json!({"speed": "fast", "gps": "unknown", "at": "yesterday"}));
        assert!(rescued.is_null(1));
        assert_eq!(c.conflicts.len(), 3);
        assert!(c.conflicts.iter().all(|(row, _)| *row == 0));
    }

    #[test]
    fn string_columns_take_any_value_as_json_text() {
        let (s, _) = run(&TableSchema::default(), &rows(json!([{"note": "hi"}])));
        let (_, c) = run(&s, &rows(json!([{"note": {"a": [1, 2]}}, {"note": 5}])));
        let note = c.batch.column_by_name("note").unwrap().as_string::<i32>();
        assert_eq!((note.value(0), note.value(1)), (r#"{"a":[1,2]}"#, "5"));
        assert!(c.conflicts.is_empty());
    }
}
