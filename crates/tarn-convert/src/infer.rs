//! Schema inference and evolution: what columns a batch of objects adds to a table.
//! Existing columns never change type; structs gain fields; new columns are typed by the policy
//! in the crate documentation.

use std::collections::{HashMap, HashSet};

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
    let objects: Vec<&Map<String, Value>> = rows.iter().collect();
    evolve_refs(schema, &objects, options)
}

fn evolve_refs(
    schema: &TableSchema,
    objects: &[&Map<String, Value>],
    options: &ConvertOptions,
) -> (TableSchema, Vec<String>) {
    let mut columns = schema.columns.clone();
    let mut added = Vec::new();
    add_new_columns(&mut columns, objects, &mut added, "", options, true);
    if let Some(rescue) = &options.rescue_column
        && !columns.iter().any(|c| &c.name == rescue)
    {
        columns.push(Column::new(rescue.clone(), ColumnType::String));
        added.push(rescue.clone());
    }
    (TableSchema { columns }, added)
}

/// The row shapes (paths of non-null values, with the nesting of objects and lists) already
/// folded into a schema by [`Shapes::evolve`]. Columns never change once created, so a row whose
/// shape an earlier call saw adds nothing and is not looked at again: evolving costs a hash per
/// row instead of a walk through the schema. Rows of shapes new to a call are all evolved
/// together, so types are inferred exactly as [`evolve`] does.
#[derive(Debug, Default, Clone)]
pub struct Shapes {
    known: HashSet<u128>,
}

impl Shapes {
    /// [`evolve`], skipping rows whose shape an earlier call already folded into `schema`'s
    /// lineage. Use one `Shapes` per table, with schemas that only grow.
    pub fn evolve(
        &mut self,
        schema: &TableSchema,
        rows: &[Map<String, Value>],
        options: &ConvertOptions,
    ) -> (TableSchema, Vec<String>) {
        let mut fresh_shapes = HashSet::new();
        let fresh: Vec<&Map<String, Value>> = rows
            .iter()
            .filter(|row| {
                let shape = shape_of(row);
                !self.known.contains(&shape) && {
                    fresh_shapes.insert(shape);
                    true
                }
            })
            .collect();
        let out = evolve_refs(schema, &fresh, options);
        self.known.extend(fresh_shapes);
        out
    }
}

/// Two independent 64-bit multiply-rotate hashes of a row's shape, fed eight bytes at a time, so
/// that distinct shapes collide with negligible probability.
struct ShapeHasher(u64, u64);

impl ShapeHasher {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        self.1 = (self.1 ^ w).wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(31);
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length goes in too, so "ab" and "ab\0" differ.
        self.word(u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56));
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Object(o) => {
                self.write(b"{");
                for (k, v) in o {
                    if !v.is_null() {
                        self.write(k.as_bytes());
                        self.write(b":");
                        self.value(v);
                    }
                }
                self.write(b"}");
            }
            Value::Array(items) => {
                self.write(b"[");
                let mut previous: Option<u128> = None;
                for item in items.iter().filter(|i| !i.is_null()) {
                    let mut h = ShapeHasher(0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4);
                    h.value(item);
                    let item_shape = (u128::from(h.0) << 64) | u128::from(h.1);
                    if previous != Some(item_shape) {
                        self.write(&item_shape.to_le_bytes());
                        previous = Some(item_shape);
                    }
                }
                self.write(b"]");
            }
            _ => self.write(b"."),
        }
    }
}

fn shape_of(row: &Map<String, Value>) -> u128 {
    let mut h = ShapeHasher(0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4);
    for (k, v) in row {
        if !v.is_null() {
            h.write(k.as_bytes());
            h.write(b":");
            h.value(v);
        }
    }
    (u128::from(h.0) << 64) | u128::from(h.1)
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
    fn shapes_evolve_exactly_like_evolve_and_skip_known_rows() {
        let batches = [
            json!([{"id": 1, "tags": [], "gps": {"lat": null}}, {"id": 2}]),
            // Same shapes as before, and new ones: a first non-empty list, a nested field, a
            // value in a field that was only null, mixed types in a new column.
            json!([{"id": 3, "tags": []}, {"id": 4, "tags": ["x"]}, {"id": 5, "gps": {"lat": 1.5}},
                   {"id": 6, "n": 1}, {"id": 7, "n": 2.5}]),
            json!([{"id": 8, "tags": ["y", "z"], "gps": {"lat": 2.0, "alt": 3}}, {"id": 9, "n": 4}]),
            json!([{"id": 10, "list": [{"a": 1}, {"a": 2}, {"a": 3, "b": true}]}]),
        ];
        let options = ConvertOptions::default();
        let (mut plain, mut shaped) = (TableSchema::default(), TableSchema::default());
        let mut shapes = Shapes::default();
        for batch in batches {
            let r = rows(batch);
            let (p, p_added) = evolve(&plain, &r, &options);
            let (q, q_added) = shapes.evolve(&shaped, &r, &options);
            assert_eq!((&p, &p_added), (&q, &q_added));
            (plain, shaped) = (p, q);
        }
        assert_eq!(plain.column("n").unwrap().ty, ColumnType::Double);
        // {"id", "n"} rows share one shape whatever their values: eight shapes in all.
        assert_eq!(shapes.known.len(), 8);
        // Rows seen before are not evolved again: an unchanged schema comes back.
        let again = rows(json!([{"id": 11, "tags": ["q"]}, {"id": 12, "n": 7}]));
        let (same, added) = shapes.evolve(&shaped, &again, &options);
        assert!(added.is_empty());
        assert_eq!(same, shaped);
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
