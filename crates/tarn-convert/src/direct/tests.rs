use std::collections::HashMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use serde_json::json;

use super::*;
use crate::{convert, evolve};

/// What the general path makes of `payloads`: split, normalize, convert with `schema`.
fn general(schema: &TableSchema, payloads: &[Vec<u8>], options: &ConvertOptions) -> Converted {
    let rows: Vec<Map<String, Value>> = payloads.iter().flat_map(|p| options.parse_objects(p).0).collect();
    convert(schema, &rows, options).unwrap()
}

fn direct(schema: &TableSchema, payloads: &[Vec<u8>], options: &ConvertOptions) -> Result<Converted, Refused> {
    let mut batch = DirectBatch::new(schema, options, true);
    for p in payloads {
        batch.append(p)?;
    }
    Ok(batch.finish().unwrap())
}

fn evolved(schema: &TableSchema, payloads: &[Vec<u8>], options: &ConvertOptions) -> TableSchema {
    let rows: Vec<Map<String, Value>> = payloads.iter().flat_map(|p| options.parse_objects(p).0).collect();
    evolve(schema, &rows, options).0
}

/// Both paths give the same batch, the same rescued values and the same conflicts.
fn assert_same(a: &Converted, b: &Converted, context: &str) {
    assert_eq!(a.batch.schema(), b.batch.schema(), "{context}");
    for (i, field) in a.batch.schema().fields().iter().enumerate() {
        if field.name() == "_rescued" {
            let (x, y) = (a.batch.column(i).as_string::<i32>(), b.batch.column(i).as_string::<i32>());
            for row in 0..x.len() {
                let parse = |s: &arrow_array::StringArray| {
                    s.is_valid(row).then(|| serde_json::from_str::<Value>(s.value(row)).unwrap())
                };
                assert_eq!(parse(x), parse(y), "{context}: rescued row {row}");
            }
        } else {
            assert_eq!(a.batch.column(i).to_data(), b.batch.column(i).to_data(), "{context}: column {}", field.name());
        }
    }
    let sorted = |c: &[(usize, String)]| {
        let mut c = c.to_vec();
        c.sort();
        c
    };
    assert_eq!(sorted(&a.conflicts), sorted(&b.conflicts), "{context}");
}

fn payloads(values: &[Value]) -> Vec<Vec<u8>> {
    values.iter().map(|v| serde_json::to_vec(v).unwrap()).collect()
}

#[test]
fn vehicles_convert_as_the_general_path_converts_them() {
    let first = payloads(&[
        json!({"VehicleId": "V1", "Speed": 42, "EventTime": "2026-11-22T10:00:00Z", "EngineOn": true,
               "Status": {"Fuel": 40.5, "Doors": {"Open": false}, "Alerts": ["low-fuel"]},
               "Gps": {"Lat": 48.1, "Lon": 11.5}, "Tags": [{"k": "a", "v": 1}]}),
        json!({"VehicleId": "V2", "Speed": 3.0, "Status": null, "Gps": {"Lat": -0.5}, "Tags": []}),
    ]);
    let later = payloads(&[
        // Values that fit after conversion, values that do not, absent and null fields.
        json!({"vehicleid": 7, "SPEED": "12", "EventTime": 1_795_330_800_123_i64, "EngineOn": "false",
               "Status": {"Fuel": 1, "Doors": "closed", "Alerts": "none"}, "Gps": [1, 2],
               "Tags": [{"k": 5, "v": "x"}, null, 3]}),
        json!({"VehicleId": {"Nested": [1, {"Deep": null}]}, "Speed": 1.5, "EventTime": "soon",
               "EngineOn": 1, "Status": {"Fuel": "n/a"}, "Tags": null}),
        json!({"VehicleId": 1e2, "Speed": 18_446_744_073_709_551_615_u64, "EventTime": 1.7e9,
               "Gps": {"Lat": "48.25", "Lon": 1e-3}}),
        json!({}),
    ]);
    for options in [
        ConvertOptions::default(),
        ConvertOptions { case_insensitive: false, ..ConvertOptions::default() },
        ConvertOptions {
            dots_to_underscores: true,
            column_to_key: HashMap::from([("speed".to_string(), "Velocity".to_string())]),
            timestamp_columns: vec!["eventtime".into()],
            ..ConvertOptions::default()
        },
    ] {
        let schema = evolved(&TableSchema::default(), &first, &options);
        let schema = evolved(&schema, &later, &options);
        for set in [&first, &later] {
            let want = general(&schema, set, &options);
            let got = direct(&schema, set, &options).unwrap();
            assert_same(&got, &want, &format!("{options:?}"));
        }
    }
}

#[test]
fn payloads_of_several_objects_and_escaped_keys() {
    let options = ConvertOptions::default();
    let set: Vec<Vec<u8>> = vec![
        b"{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n".to_vec(),
        br#"{"a":3}{"b":"y\u00e9\n"} {"\u0041":4,"A":5}"#.to_vec(),
        br#"{"b":"tab\there","a":-0}"#.to_vec(),
    ];
    let schema = evolved(&TableSchema::default(), &set, &options);
    assert_same(&direct(&schema, &set, &options).unwrap(), &general(&schema, &set, &options), "several");
    let got = direct(&schema, &set, &options).unwrap();
    assert_eq!(got.batch.num_rows(), 6);
}

#[test]
fn refuses_what_needs_the_general_path() {
    let options = ConvertOptions::default();
    let schema = evolved(&TableSchema::default(), &payloads(&[json!({"a": 1, "s": {"x": 1}})]), &options);
    let mut batch = DirectBatch::new(&schema, &options, true);
    assert_eq!(batch.append(br#"{"a":1}"#), Ok(1));
    assert_eq!(batch.append(b"{\"a\":2}\n42"), Err(Refused::Unreadable));
    assert_eq!(batch.append(b"{\"a\":"), Err(Refused::Unreadable));
    // Fields without a column that would not create one are passed over.
    assert_eq!(batch.append(br#"{"a":3,"n":null,"l":[null],"e":[]}"#), Ok(1));
    assert_eq!(batch.rows(), 2, "refused payloads add nothing");
    assert_eq!(batch.append(br#"{"a":4,"s":{"x":2,"y":"new"}}"#), Err(Refused::NewField));
    assert!(batch.finish().is_err(), "a batch with part of a refused record is not finished");

    // A declared schema ignores unknown fields.
    let mut declared = DirectBatch::new(&schema, &options, false);
    assert_eq!(declared.append(br#"{"a":4,"s":{"x":2,"y":"new"},"z":1}"#), Ok(1));
    assert_eq!(declared.finish().unwrap().batch.num_rows(), 1);

    // Without a rescue column a value that fits no column is the caller's to handle.
    let strict = ConvertOptions { rescue_column: None, ..ConvertOptions::default() };
    let schema = evolved(&TableSchema::default(), &payloads(&[json!({"a": 1})]), &strict);
    let mut batch = DirectBatch::new(&schema, &strict, true);
    assert_eq!(batch.append(br#"{"a":"one"}"#), Err(Refused::Conflict));
    // Or read as null, as the general path does.
    let set = payloads(&[json!({"a": "one"}), json!({"a": 2})]);
    let mut lenient = DirectBatch::new(&schema, &strict, true).nulls_for_misfits();
    for p in &set {
        lenient.append(p).unwrap();
    }
    assert_same(&lenient.finish().unwrap(), &general(&schema, &set, &strict), "lenient");
}

/// A small deterministic generator of awkward records: keys in several spellings, every kind of
/// value, nesting, and the same field with different types across records.
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn key(&mut self) -> String {
        ["id", "Id", "name", "at", "v.w", "n", "obj", "list", "flag", "x"][self.next(10) as usize].to_string()
    }

    fn value(&mut self, depth: u32) -> Value {
        match self.next(if depth > 2 { 11 } else { 13 }) {
            0 => Value::Null,
            1 => json!(self.next(1000) as i64 - 500),
            2 => json!(self.next(1000) as f64 / 8.0),
            3 => json!(["2026-11-22T10:00:00Z", "2026-11-22 10:00:00.123+01:00", "yesterday"][self.next(3) as usize]),
            4 => json!(["true", "false", "17", "2.5", "é\"\\\n", ""][self.next(6) as usize]),
            5 => json!(self.next(2) == 0),
            6 => json!(1_795_330_800_000_i64 + self.next(1000) as i64),
            7 => json!(u64::MAX - self.next(3)),
            8 => json!(-0.0),
            9 => json!(1e300),
            10 => json!(i64::MIN),
            11 => {
                let mut o = Map::new();
                for _ in 0..self.next(4) {
                    o.insert(self.key(), self.value(depth + 1));
                }
                Value::Object(o)
            }
            _ => Value::Array((0..self.next(4)).map(|_| self.value(depth + 1)).collect()),
        }
    }

    fn record(&mut self) -> Vec<u8> {
        let mut o = Map::new();
        for _ in 0..1 + self.next(6) {
            o.insert(self.key(), self.value(0));
        }
        let text = serde_json::to_vec(&Value::Object(o)).unwrap();
        if self.next(5) == 0 { [b" ".as_slice(), &text, b"\n"].concat() } else { text }
    }
}

#[test]
fn generated_records_convert_as_the_general_path_converts_them() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for options in [
        ConvertOptions::default(),
        ConvertOptions { dots_to_underscores: true, ..ConvertOptions::default() },
        ConvertOptions { case_insensitive: false, timestamp_columns: vec!["at".into()], ..ConvertOptions::default() },
    ] {
        let mut schema = TableSchema::default();
        for round in 0..40 {
            let set: Vec<Vec<u8>> = (0..30).map(|_| g.record()).collect();
            // First as the schema was: new fields are refused, never converted wrongly.
            if let Ok(got) = direct(&schema, &set, &options) {
                assert_same(&got, &general(&schema, &set, &options), &format!("round {round} before"));
            }
            schema = evolved(&schema, &set, &options);
            let got = direct(&schema, &set, &options).unwrap();
            assert_same(&got, &general(&schema, &set, &options), &format!("round {round}"));
        }
    }
}
