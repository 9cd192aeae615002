//! The converter's [`TableSchema`] as an Iceberg schema, with field ids assigned in order.

use std::sync::Arc;

use iceberg::spec::{ListType, NestedField, PrimitiveType, Schema, StructType, Type};
use tarn_convert::{Column, ColumnType, TableSchema};

use crate::Result;

fn to_type(ty: &ColumnType, next_id: &mut i32) -> Type {
    match ty {
        ColumnType::Boolean => Type::Primitive(PrimitiveType::Boolean),
        ColumnType::Long => Type::Primitive(PrimitiveType::Long),
        ColumnType::Double => Type::Primitive(PrimitiveType::Double),
        ColumnType::String => Type::Primitive(PrimitiveType::String),
        ColumnType::Timestamp => Type::Primitive(PrimitiveType::Timestamptz),
        ColumnType::Struct(children) => Type::Struct(StructType::new(fields(children, next_id))),
        ColumnType::List(element) => {
            let id = take(next_id);
            let element = NestedField::list_element(id, to_type(element, next_id), false);
            Type::List(ListType::new(Arc::new(element)))
        }
    }
}

fn take(next_id: &mut i32) -> i32 {
    let id = *next_id;
    *next_id += 1;
    id
}

fn fields(columns: &[Column], next_id: &mut i32) -> Vec<Arc<NestedField>> {
    // Ids of one level first, then the nested ones, as Iceberg's reference implementation does.
    let ids: Vec<i32> = columns.iter().map(|_| take(next_id)).collect();
    columns
        .iter()
        .zip(ids)
        .map(|(c, id)| Arc::new(NestedField::optional(id, &c.name, to_type(&c.ty, next_id))))
        .collect()
}

/// An Iceberg schema for a new table: every column optional (JSON fields may be absent).
pub fn to_iceberg_schema(schema: &TableSchema) -> Result<Schema> {
    let mut next_id = 1;
    Ok(Schema::builder().with_fields(fields(&schema.columns, &mut next_id)).build()?)
}

/// The converter's view of a table's current schema, so that delivery, after a restart or on a
/// table declared elsewhere, evolves from what the table has. Types JSON cannot carry (maps,
/// decimals, dates, ...) read back as strings, which is how the converter would fill them.
pub fn from_iceberg_schema(schema: &Schema) -> TableSchema {
    TableSchema { columns: columns_of(schema.as_struct()) }
}

fn columns_of(st: &StructType) -> Vec<Column> {
    st.fields().iter().map(|f| Column::new(f.name.clone(), from_type(&f.field_type))).collect()
}

fn from_type(ty: &Type) -> ColumnType {
    match ty {
        Type::Primitive(PrimitiveType::Boolean) => ColumnType::Boolean,
        Type::Primitive(PrimitiveType::Long | PrimitiveType::Int) => ColumnType::Long,
        Type::Primitive(PrimitiveType::Double | PrimitiveType::Float) => ColumnType::Double,
        Type::Primitive(PrimitiveType::Timestamptz | PrimitiveType::Timestamp) => ColumnType::Timestamp,
        Type::Primitive(_) | Type::Map(_) => ColumnType::String,
        Type::Struct(st) => ColumnType::Struct(columns_of(st)),
        Type::List(list) => ColumnType::List(Box::new(from_type(&list.element_field.field_type))),
    }
}

/// A column the table lacks: its parent's dotted Iceberg name (`None` at the root), its name and
/// type (nested field ids are placeholders; the schema update assigns real ones).
#[derive(Debug, Clone, PartialEq)]
pub struct MissingColumn {
    pub parent: Option<String>,
    pub name: String,
    pub ty: Type,
}

/// What `wanted` has that `table` does not, top-level and inside structs (also structs in lists).
pub fn missing_columns(table: &Schema, wanted: &TableSchema) -> Vec<MissingColumn> {
    let mut out = Vec::new();
    missing_in(table.as_struct(), &wanted.columns, None, &mut out);
    out
}

fn missing_in(have: &StructType, want: &[Column], parent: Option<&str>, out: &mut Vec<MissingColumn>) {
    for column in want {
        let path = match parent {
            Some(p) => format!("{p}.{}", column.name),
            None => column.name.clone(),
        };
        match have.fields().iter().find(|f| f.name == column.name) {
            None => out.push(MissingColumn {
                parent: parent.map(str::to_owned),
                name: column.name.clone(),
                ty: to_type(&column.ty, &mut 1_000_000),
            }),
            Some(existing) => missing_nested(&existing.field_type, &column.ty, &path, out),
        }
    }
}

fn missing_nested(have: &Type, want: &ColumnType, path: &str, out: &mut Vec<MissingColumn>) {
    match (have, want) {
        (Type::Struct(st), ColumnType::Struct(children)) => missing_in(st, children, Some(path), out),
        (Type::List(list), ColumnType::List(element)) => {
            missing_nested(&list.element_field.field_type, element, &format!("{path}.element"), out)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle(extra_status: bool, extra_top: bool) -> TableSchema {
        let mut status = vec![Column::new("fuel", ColumnType::Double)];
        if extra_status {
            status.push(Column::new("engine_on", ColumnType::Boolean));
        }
        let mut columns = vec![
            Column::new("id", ColumnType::String),
            Column::new("at", ColumnType::Timestamp),
            Column::new("status", ColumnType::Struct(status.clone())),
            Column::new("history", ColumnType::List(Box::new(ColumnType::Struct(status)))),
        ];
        if extra_top {
            columns.push(Column::new("speed", ColumnType::Long));
        }
        TableSchema { columns }
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let schema = vehicle(true, true);
        assert_eq!(from_iceberg_schema(&to_iceberg_schema(&schema).unwrap()), schema);
    }

    #[test]
    fn finds_new_columns_at_the_root_in_structs_and_in_list_elements() {
        let table = to_iceberg_schema(&vehicle(false, false)).unwrap();
        let missing = missing_columns(&table, &vehicle(true, true));
        let found: Vec<(Option<&str>, &str)> = missing.iter().map(|m| (m.parent.as_deref(), m.name.as_str())).collect();
        assert_eq!(found, [(Some("status"), "engine_on"), (Some("history.element"), "engine_on"), (None, "speed")]);
        assert!(missing_columns(&table, &vehicle(false, false)).is_empty());
    }
}
