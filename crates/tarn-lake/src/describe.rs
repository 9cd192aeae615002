//! A table as `tarn describe`, `/v1/tables` and Athena's table metadata show it: columns in
//! Glue's type names with the schema version that added each, the Hive folders (partitions) with
//! their files, rows and bytes, the snapshots with what each committed, and the delivery
//! checkpoint. Everything comes from one metadata file.

use std::collections::BTreeMap;

use arrow_schema::DataType;
use iceberg::spec::FormatVersion;
use serde::Serialize;

use crate::Result;
use crate::catalog::Lake;
use crate::hive::{below_data, partition_pairs};
use crate::view::{MetadataCache, view_of};

#[derive(Debug, Clone, Serialize)]
pub struct TableDescription {
    pub namespace: String,
    pub name: String,
    pub location: String,
    pub format_version: u8,
    pub table_uuid: String,
    /// When the first metadata file was written (or the last, if the log was trimmed).
    pub created_ms: i64,
    pub last_updated_ms: i64,
    pub current_snapshot_id: Option<i64>,
    /// Schema versions the table went through.
    pub schema_versions: usize,
    /// The Iceberg id of the current schema (ids count from 0).
    pub current_schema_id: i32,
    pub columns: Vec<ColumnDescription>,
    /// The Hive folder keys of the data files (`year`, `month`, `day`, `hour`…), in path order.
    pub partition_keys: Vec<String>,
    pub partitions: Vec<PartitionDescription>,
    /// Oldest first.
    pub snapshots: Vec<SnapshotDescription>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Last delivered position per source shard, committed with the current snapshot.
    pub checkpoint: Option<BTreeMap<String, String>>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnDescription {
    pub name: String,
    /// Glue's (Hive's) type name: `string`, `bigint`, `timestamp`, `struct<fuel:double>`.
    pub type_name: String,
    pub nullable: bool,
    /// The first schema version (Iceberg schema id) that has this column.
    pub since_schema: i32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionDescription {
    /// `year=2026/month=11/day=22/hour=10`.
    pub folder: String,
    /// The values of [`TableDescription::partition_keys`] in this folder (empty where absent).
    pub values: Vec<String>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotDescription {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub timestamp_ms: i64,
    /// `append` (a delivery flush), `replace` (compaction)…
    pub operation: String,
    pub schema_id: Option<i32>,
    pub added_files: u64,
    pub added_rows: u64,
    pub total_rows: u64,
    pub total_files: u64,
}

impl Lake {
    /// `namespace.name` described, or `None` if there is no such table.
    pub async fn describe(
        &self,
        namespace: &str,
        name: &str,
        cache: &MetadataCache,
    ) -> Result<Option<TableDescription>> {
        let Some(table) = self.existing(namespace, name).await? else { return Ok(None) };
        let view = view_of(namespace, name, &table, cache).await?;
        let metadata = table.metadata();

        let mut schemas: Vec<_> = metadata.schemas_iter().collect();
        schemas.sort_by_key(|s| s.schema_id());
        let columns = view
            .schema
            .fields()
            .iter()
            .map(|f| ColumnDescription {
                name: f.name().clone(),
                type_name: hive_type(f.data_type()),
                nullable: f.is_nullable(),
                since_schema: schemas
                    .iter()
                    .find(|s| s.field_by_name(f.name()).is_some())
                    .map_or(metadata.current_schema_id(), |s| s.schema_id()),
            })
            .collect();

        let mut partition_keys: Vec<String> = Vec::new();
        let mut folders: BTreeMap<String, PartitionDescription> = BTreeMap::new();
        for file in &view.files {
            let relative = below_data(&file.path);
            let pairs = partition_pairs(relative);
            for (key, _) in &pairs {
                if !partition_keys.contains(key) {
                    partition_keys.push(key.clone());
                }
            }
            let folder = relative.rsplit_once('/').map_or("", |(folder, _)| folder).to_owned();
            let entry = folders.entry(folder.clone()).or_insert_with(|| PartitionDescription {
                folder,
                values: Vec::new(),
                files: 0,
                rows: 0,
                bytes: 0,
            });
            entry.files += 1;
            entry.rows += file.rows;
            entry.bytes += file.size;
        }
        let partitions = folders
            .into_values()
            .map(|mut p| {
                let pairs = partition_pairs(&format!("{}/", p.folder));
                p.values = partition_keys
                    .iter()
                    .map(|k| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default())
                    .collect();
                p
            })
            .collect();

        let number = |props: &std::collections::HashMap<String, String>, key: &str| {
            props.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let mut snapshots: Vec<SnapshotDescription> = metadata
            .snapshots()
            .map(|s| {
                let props = &s.summary().additional_properties;
                SnapshotDescription {
                    id: s.snapshot_id(),
                    parent_id: s.parent_snapshot_id(),
                    timestamp_ms: s.timestamp_ms(),
                    operation: s.summary().operation.as_str().to_owned(),
                    schema_id: s.schema_id(),
                    added_files: number(props, "added-data-files"),
                    added_rows: number(props, "added-records"),
                    total_rows: number(props, "total-records"),
                    total_files: number(props, "total-data-files"),
                }
            })
            .collect();
        snapshots.sort_by_key(|s| (s.timestamp_ms, s.id));

        let created_ms =
            metadata.metadata_log().iter().map(|m| m.timestamp_ms).min().unwrap_or(metadata.last_updated_ms());
        Ok(Some(TableDescription {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            location: view.location.clone(),
            format_version: match metadata.format_version() {
                FormatVersion::V1 => 1,
                FormatVersion::V2 => 2,
                _ => 3,
            },
            table_uuid: metadata.uuid().to_string(),
            created_ms,
            last_updated_ms: metadata.last_updated_ms(),
            current_snapshot_id: view.snapshot_id,
            schema_versions: schemas.len(),
            current_schema_id: metadata.current_schema_id(),
            columns,
            partition_keys,
            partitions,
            snapshots,
            files: view.files.len() as u64,
            rows: view.files.iter().map(|f| f.rows).sum(),
            bytes: view.files.iter().map(|f| f.size).sum(),
            checkpoint: view.checkpoint.clone(),
            properties: metadata.properties().iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }))
    }
}

/// Glue's (Hive's) name for an Arrow type, as Athena DDL and the Glue catalog write it.
pub fn hive_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => format!("decimal({p},{s})"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "binary".into()
        }
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("array<{}>", hive_type(f.data_type()))
        }
        DataType::Struct(fields) => {
            let members: Vec<String> =
                fields.iter().map(|f| format!("{}:{}", f.name(), hive_type(f.data_type()))).collect();
            format!("struct<{}>", members.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", hive_type(kv[0].data_type()), hive_type(kv[1].data_type()))
            }
            _ => "map<string,string>".into(),
        },
        other => other.to_string().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Field, Fields};

    use super::*;

    #[test]
    fn nested_types_read_as_glue_writes_them() {
        let gps = DataType::Struct(Fields::from(vec![
            Field::new("lat", DataType::Float64, true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]));
        assert_eq!(hive_type(&gps), "struct<lat:double,tags:array<string>>");
        assert_eq!(
            hive_type(&DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))),
            "timestamp"
        );
        assert_eq!(hive_type(&DataType::Int32), "int");
    }
}
