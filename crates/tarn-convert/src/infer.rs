//! Schema inference and evolution: what columns a batch of objects adds to a table.
//! Existing columns never change type; structs gain fields; new columns are typed by the policy
//! in the crate documentation.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::keys::ConvertOptions;
use crate::schema::{Column, ColumnType, TableSchema};
use crate::time::parse_iso8601;

/// The type one value shows; `None` for null (and lists holding only nulls).
fn infer(v: &Value, timestamp: bool) -> Option<ColumnType> {
    Some(match v {
        Value::Null => return None,
        _ if timestamp => ColumnType::Timestamp,
        Value::Bool(_) => ColumnType::Boolean,
        Value::Number(n) if n.is_i64() => ColumnType::Long,
        Value::Number(_) => ColumnType::Double,
        Value::String(s) if parse_iso8601(s).is_some() => ColumnType::Timestamp,
        Value::String(_) => ColumnType::String,
        Value::Array(items) => ColumnType::List(Box::new(items.iter().filter_map(|i| infer(i, false)).reduce(merge)?)),
        Value::Object(o) => {
            let mut children = Vec::new();
            add_new_columns(&mut children, &[o], &mut Vec::new(), "", &ConvertOptions::default(), false);
            ColumnType::Struct(children)
        }
    })
}

/// The type of a new column whose values in one batch differ in type.
fn merge(a: ColumnType, b: ColumnType) -> ColumnType {
    use ColumnType::*;
    match (a, b) {
        (a, b) if a == b => a,
        (Long, Double) | (Double, Long) => Double,
        (Struct(mut x), Struct(y)) => {
            for c in y {
                match x.iter_mut().find(|e| e.name == c.name) {
                    Some(existing) => existing.ty = merge(existing.ty.clone(), c.ty),
                    None => x.push(c),
                }
            }
            Struct(x)
        }
        (List(x), List(y)) => List(Box::new(merge(*x, *y))),
        _ => String,
    }
}

/// The values of each key across `objects` that could change `columns` (keys without a column,
/// or with a struct or list column), keys in order of first appearance.
fn values_by_key<'v>(objects: &[&'v Map<String, Value>], columns: &[Column]) -> Vec<(&'v str, Vec<&'v Value>)> {
    let mut order: Vec<(&str, Vec<&Value>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for o in objects {
        for (k, v) in o.iter() {
            let settled = columns
                .iter()
                .find(|c| c.name == *k)
                .is_some_and(|c| !matches!(c.ty, ColumnType::Struct(_) | ColumnType::List(_)));
            if settled || v.is_null() {
                continue;
            }
            let i = *index.entry(k.as_str()).or_insert_with(|| {
                order.push((k.as_str(), Vec::new()));
                order.len() - 1
            });
            order[i].1.push(v);
        }
    }
    order
}

fn add_new_columns(
    columns: &mut Vec<Column>,
    objects: &[&Map<String, Value>],
    added: &mut Vec<String>,
    prefix: &str,
    options: &ConvertOptions,
    top: bool,
) {
    for (key, values) in values_by_key(objects, columns) {
        let path = format!("{prefix}{key}");
        match columns.iter_mut().find(|c| c.name == key) {
            Some(existing) => evolve_nested(&mut existing.ty, &values, added, &path, options),
            None => {
                let timestamp = top && options.is_timestamp_column(key);
                if let Some(ty) = values.iter().filter_map(|v| infer(v, timestamp)).reduce(merge) {
                    columns.push(Column::new(key, ty));
                    added.push(path);
                }
            }
        }
    }
}

/// Adds fields that appeared inside an existing struct column (or a list of structs).
fn evolve_nested(
    ty: &mut ColumnType,
    values: &[&Value],
    added: &mut Vec<String>,
    path: &str,
    options: &ConvertOptions,
) {
    match ty {
        ColumnType::Struct(children) => {
            let objects: Vec<&Map<String, Value>> = values.iter().filter_map(|v| v.as_object()).collect();
            add_new_columns(children, &objects, added, &format!("{path}."), options, false);
        }
        ColumnType::List(element) => {
            let items: Vec<&Value> = values.iter().filter_map(|v| v.as_array()).flatten().collect();
            evolve_nested(element, &items, added, &format!("{path}.element"), options);
        }
        _ => {}
    }
}

/// Extends `schema` with what `rows` show: new top-level columns, and new fields in existing
/// structs. Returns the new schema and the dotted paths of what was added, in order.
pub fn evolve(
    schema: &TableSchema,
    rows: &[Map<String, Value>],
    options: &ConvertOptions,
) -> (TableSchema, Vec<String>) {
    let mut columns = schema.columns.clone();
    let mut added = Vec::new();
    let objects: Vec<&Map<String, Value>> = rows.iter().collect();
    add_new_columns(&mut columns, &objects, &mut added, "", options, true);
    if let Some(rescue) = &options.rescue_column
        && !columns.iter().any(|c| &c.name == rescue)
    {
        columns.push(Column::new(rescue.clone(), ColumnType::String));
        added.push(rescue.clone());
    }
    (TableSchema { columns }, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
    }

    fn no_rescue() -> ConvertOptions {
        ConvertOptions { rescue_column: None, ..ConvertOptions::default() }
    }

    #[test]
    fn infers_nested_structs_lists_and_timestamps() {
        let r = rows(
            json!([{"id": 1, "at": "2024-01-02T03:04:05Z", "gps": {"lat": 1.5, "lon": 2}, "tags": ["a"], "ok": true}]),
        );
        let (s, added) = evolve(&TableSchema::default(), &r, &no_rescue());
        assert_eq!(added, ["id", "at", "gps", "tags", "ok"]);
        assert_eq!(s.column("id").unwrap().ty, ColumnType::Long);
        assert_eq!(s.column("at").unwrap().ty, ColumnType::Timestamp, "ISO-8601 text is a timestamp, not a string");
        assert_eq!(
            s.column("gps").unwrap().ty,
            ColumnType::Struct(vec![Column::new("lat", ColumnType::Double), Column::new("lon", ColumnType::Long)])
        );
        assert_eq!(s.column("tags").unwrap().ty, ColumnType::List(Box::new(ColumnType::String)));
    }

    #[test]
    fn mixed_types_in_a_new_column_follow_the_policy() {
        let r = rows(
            json!([{"n": 1, "t": "2024-01-02T03:04:05Z", "x": 1, "o": {"a": 1}}, {"n": 2.5, "t": "soon", "x": "one", "o": 5}]),
        );
        let (s, _) = evolve(&TableSchema::default(), &r, &no_rescue());
        assert_eq!(s.column("n").unwrap().ty, ColumnType::Double);
        assert_eq!(s.column("t").unwrap().ty, ColumnType::String);
        assert_eq!(s.column("x").unwrap().ty, ColumnType::String);
        assert_eq!(s.column("o").unwrap().ty, ColumnType::String);
    }

    #[test]
    fn existing_columns_keep_their_type_and_structs_grow() {
        let (s, _) = evolve(&TableSchema::default(), &rows(json!([{"v": 1, "s": {"a": 1}}])), &no_rescue());
        let (s2, added) = evolve(&s, &rows(json!([{"v": 1.5, "s": {"a": 2, "b": "new"}, "w": null}])), &no_rescue());
        assert_eq!(s2.column("v").unwrap().ty, ColumnType::Long);
        assert_eq!(added, ["s.b"], "a column seen only as null waits for a typed value");
        let (s3, added) = evolve(&s2, &rows(json!([{"w": "now"}])), &no_rescue());
        assert_eq!((added.as_slice(), s3.columns.len()), (["w".to_string()].as_slice(), 3));
    }

    #[test]
    fn declared_timestamp_columns_take_epoch_numbers_and_the_rescue_column_is_added() {
        let opts = ConvertOptions { timestamp_columns: vec!["ts".into()], ..ConvertOptions::default() };
        let (s, added) = evolve(&TableSchema::default(), &rows(json!([{"ts": 1700000000}])), &opts);
        assert_eq!(s.column("ts").unwrap().ty, ColumnType::Timestamp);
        assert_eq!(added, ["ts", "_rescued"]);
    }
}
