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
