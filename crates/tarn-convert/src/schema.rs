//! The table schema the converter works with: Iceberg's types that JSON can carry.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

/// Arrow's time zone for Iceberg `timestamptz` (as iceberg-rust writes it).
pub const UTC: &str = "+00:00";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Long,
    Double,
    String,
    /// Microseconds since the epoch, UTC.
    Timestamp,
    Struct(Vec<Column>),
    List(Box<ColumnType>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Column {
        Column { name: name.into(), ty }
    }
}

/// Columns in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSchema {
    pub columns: Vec<Column>,
}

impl ColumnType {
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::Long => "long",
            ColumnType::Double => "double",
            ColumnType::String => "string",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Struct(_) => "struct",
            ColumnType::List(_) => "list",
        }
    }

    pub fn to_arrow(&self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Long => DataType::Int64,
            ColumnType::Double => DataType::Float64,
            ColumnType::String => DataType::Utf8,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Struct(children) => DataType::Struct(fields(children)),
            ColumnType::List(element) => DataType::List(Arc::new(Field::new("element", element.to_arrow(), true))),
        }
    }
}

fn fields(columns: &[Column]) -> Fields {
    columns.iter().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect()
}

impl TableSchema {
    /// A schema declared as JSON: `{"name": "string", "speed": "long", "status": {"fuel":
    /// "double"}, "alerts": ["string"]}`. Types: string, long (bigint, int), double (float),
    /// boolean, timestamp; an object is a struct, a one-element array a list.
    pub fn from_declared(declared: &serde_json::Value) -> Result<TableSchema, String> {
        fn ty(path: &str, v: &serde_json::Value) -> Result<ColumnType, String> {
            Ok(match v {
                serde_json::Value::String(t) => match t.to_ascii_lowercase().as_str() {
                    "string" => ColumnType::String,
                    "long" | "bigint" | "int" | "integer" => ColumnType::Long,
                    "double" | "float" => ColumnType::Double,
                    "boolean" | "bool" => ColumnType::Boolean,
                    "timestamp" | "timestamptz" => ColumnType::Timestamp,
                    other => {
                        return Err(format!(
                            "column {path}: unknown type {other:?}; use string, long, double, boolean, timestamp, {{...}} or [type]"
                        ));
                    }
                },
                serde_json::Value::Object(fields) => ColumnType::Struct(columns(path, fields)?),
                serde_json::Value::Array(items) if items.len() == 1 => {
                    ColumnType::List(Box::new(ty(&format!("{path}[]"), &items[0])?))
                }
                _ => return Err(format!("column {path}: a type is a name, a {{...}} struct or a [type] list")),
            })
        }
        fn columns(prefix: &str, fields: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Column>, String> {
            fields
                .iter()
                .map(|(name, v)| {
                    let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                    Ok(Column::new(name.clone(), ty(&path, v)?))
                })
                .collect()
        }
        match declared {
            serde_json::Value::Object(fields) if !fields.is_empty() => {
                Ok(TableSchema { columns: columns("", fields)? })
            }
            _ => Err("a declared schema is a table of column names and types".into()),
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema of converted batches: every column nullable (JSON fields may be absent).
    pub fn to_arrow(&self) -> Schema {
        Schema::new(fields(&self.columns))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn declared_schemas_read_names_structs_and_lists() {
        let s = TableSchema::from_declared(&json!({"id": "string", "speed": "bigint", "gps": {"lat": "double"}, "tags": ["string"], "at": "timestamp"}))
            .unwrap();
        assert_eq!(s.column("speed").unwrap().ty, ColumnType::Long);
        assert_eq!(s.column("gps").unwrap().ty, ColumnType::Struct(vec![Column::new("lat", ColumnType::Double)]));
        assert_eq!(s.column("tags").unwrap().ty, ColumnType::List(Box::new(ColumnType::String)));
        assert!(TableSchema::from_declared(&json!({"a": "decimal"})).unwrap_err().contains("column a"));
        assert!(TableSchema::from_declared(&json!({"a": {"b": ["x", "y"]}})).unwrap_err().contains("column a.b"));
        assert!(TableSchema::from_declared(&json!({})).is_err());
    }
}
