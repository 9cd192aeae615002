//! The OpenX JSON SerDe options, applied to object keys before columns are matched.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

/// How JSON keys become column names, and which columns are timestamps.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// OpenX's default: keys match columns whatever their case (columns are lower case).
    pub case_insensitive: bool,
    /// OpenX `ConvertDotsInJsonKeysToUnderscores`: `a.b` becomes the column `a_b`.
    pub dots_to_underscores: bool,
    /// OpenX `ColumnToJsonKeyMappings`: column name → the JSON key it is read from.
    pub column_to_key: HashMap<String, String>,
    /// Columns that are timestamps whatever their first values look like (epoch numbers too).
    pub timestamp_columns: Vec<String>,
    /// Where values that fit no column are kept; `None` sends such rows to the error output.
    pub rescue_column: Option<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            case_insensitive: true,
            dots_to_underscores: false,
            column_to_key: HashMap::new(),
            timestamp_columns: Vec::new(),
            rescue_column: Some("_rescued".into()),
        }
    }
}

impl ConvertOptions {
    fn column_name(&self, key: &str, key_to_column: &HashMap<&str, &str>) -> String {
        match key_to_column.get(key) {
            Some(column) => (*column).to_owned(),
            None => self.renamed(Cow::Borrowed(key)),
        }
    }

    /// A key with the dots and case options applied (not the column-to-key mappings), copied
    /// only when it changes.
    pub(crate) fn renamed(&self, key: Cow<'_, str>) -> String {
        let mut name =
            if self.dots_to_underscores && key.contains('.') { key.replace('.', "_") } else { key.into_owned() };
        if self.case_insensitive && name.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
            name = if name.is_ascii() { name.to_ascii_lowercase() } else { name.to_lowercase() };
        }
        name
    }

    /// Renames the keys of `object` (and of nested objects) to column names. When two keys land
    /// on one name the later value wins, as in OpenX.
    pub fn normalize(&self, object: Map<String, Value>) -> Map<String, Value> {
        let key_to_column: HashMap<&str, &str> =
            self.column_to_key.iter().map(|(c, k)| (k.as_str(), c.as_str())).collect();
        self.normalize_with(object, &key_to_column, true)
    }

    fn normalize_with(
        &self,
        object: Map<String, Value>,
        key_to_column: &HashMap<&str, &str>,
        top: bool,
    ) -> Map<String, Value> {
        let plain = !self.case_insensitive && !self.dots_to_underscores && (key_to_column.is_empty() || !top);
        object
            .into_iter()
            .map(|(k, v)| {
                let name = if plain {
                    k
                } else if top {
                    self.column_name(&k, key_to_column)
                } else {
                    self.column_name(&k, &HashMap::new())
                };
                (name, self.normalize_value(v, key_to_column))
            })
            .collect()
    }

    fn normalize_value(&self, v: Value, key_to_column: &HashMap<&str, &str>) -> Value {
        match v {
            Value::Object(o) => Value::Object(self.normalize_with(o, key_to_column, false)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| self.normalize_value(i, key_to_column)).collect())
            }
            other => other,
        }
    }

    /// A value inside a row with its objects' keys renamed as [`ConvertOptions::normalize`]
    /// renames nested keys (the column-to-key mappings apply only at the top).
    pub(crate) fn normalize_nested(&self, v: Value) -> Value {
        self.normalize_value(v, &HashMap::new())
    }

    /// The column (or nested field) name a JSON key becomes; `top`: a top-level key, to which
    /// the column-to-key mappings apply.
    pub fn name_of_key(&self, key: &str, top: bool) -> String {
        match self.column_to_key.iter().find(|(_, k)| top && k.as_str() == key) {
            Some((column, _)) => column.clone(),
            None => self.renamed(Cow::Borrowed(key)),
        }
    }

    pub fn is_timestamp_column(&self, name: &str) -> bool {
        self.timestamp_columns.iter().any(|c| c == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn openx_options_rename_keys() {
        let opts = ConvertOptions {
            dots_to_underscores: true,
            column_to_key: HashMap::from([("ts".to_string(), "@Timestamp".to_string())]),
            ..ConvertOptions::default()
        };
        let out =
            opts.normalize(obj(json!({"UserId": 1, "geo.lat": 2.5, "@Timestamp": "x", "Nested": {"InnerKey": true}})));
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["userid", "geo_lat", "ts", "nested"]);
        assert_eq!(out["nested"], json!({"innerkey": true}));
    }

    #[test]
    fn case_sensitive_keys_stay_as_they_are() {
        let opts = ConvertOptions { case_insensitive: false, ..ConvertOptions::default() };
        assert!(opts.normalize(obj(json!({"UserId": 1}))).contains_key("UserId"));
    }
}
