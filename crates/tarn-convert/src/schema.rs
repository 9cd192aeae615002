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
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema of converted batches: every column nullable (JSON fields may be absent).
    pub fn to_arrow(&self) -> Schema {
        Schema::new(fields(&self.columns))
    }
}
