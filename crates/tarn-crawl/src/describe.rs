//! A crawled table as `tarn describe`, `/v1/tables` and Athena's metadata actions show it: the
//! same shape as an Iceberg table's description where the two have the same things (columns
//! with Glue's type names, partitions with files, rows and bytes), and what only a crawled
//! table has (its format, the crawl that found each column) instead of snapshots.

use std::collections::BTreeMap;

use serde::Serialize;
use tarn_lake::{hive, hive_type};

use crate::CrawledTable;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrawledDescription {
    pub namespace: String,
    pub name: String,
    /// Always `crawled`; an Iceberg table's description has no `kind`.
    pub kind: &'static str,
    /// `json`, `csv` or `parquet`.
    pub format: &'static str,
    /// The folder's URL in the lake's storage.
    pub location: String,
    pub created_ms: i64,
    pub last_updated_ms: i64,
    pub crawls: u32,
    pub columns: Vec<CrawledColumnDescription>,
    pub partition_keys: Vec<String>,
    pub partitions: Vec<CrawledPartition>,
    pub files: u64,
    /// Records counted by the crawls (files registered before they counted add nothing).
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrawledColumnDescription {
    pub name: String,
    /// Glue's (Hive's) type name; partition columns are `string`.
    pub type_name: String,
    pub nullable: bool,
    /// The crawl that found it (partition columns: the first).
    pub since_crawl: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrawledPartition {
    pub folder: String,
    pub values: Vec<String>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

impl CrawledTable {
    /// The description, with `location_url` the URL of the table's folder.
    pub fn describe(&self, location_url: String) -> Result<CrawledDescription, String> {
        let schema = self.data_schema()?;
        let mut columns: Vec<CrawledColumnDescription> = schema
            .fields()
            .iter()
            .zip(&self.columns)
            .map(|(field, column)| CrawledColumnDescription {
                name: column.name.clone(),
                type_name: hive_type(field.data_type()),
                nullable: true,
                since_crawl: column.since_crawl,
            })
            .collect();
        columns.extend(self.partition_keys.iter().map(|k| CrawledColumnDescription {
            name: k.clone(),
            type_name: "string".into(),
            nullable: true,
            since_crawl: 1,
        }));
        let mut partitions: BTreeMap<String, CrawledPartition> = BTreeMap::new();
        for file in &self.files {
            let relative = self.relative(&file.key);
            let folder = relative.rsplit_once('/').map_or("", |(folder, _)| folder).to_owned();
            let partition = partitions.entry(folder.clone()).or_insert_with(|| CrawledPartition {
                values: hive::partition_values(relative, &self.partition_keys)
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect(),
                folder,
                files: 0,
                rows: 0,
                bytes: 0,
            });
            partition.files += 1;
            partition.rows += file.rows.unwrap_or(0);
            partition.bytes += file.size;
        }
        let partitions: Vec<CrawledPartition> = partitions.into_values().collect();
        Ok(CrawledDescription {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            kind: "crawled",
            format: self.format.name(),
            location: location_url,
            created_ms: self.created_ms,
            last_updated_ms: self.updated_ms,
            crawls: self.crawls,
            columns,
            partition_keys: self.partition_keys.clone(),
            files: self.files.len() as u64,
            rows: partitions.iter().map(|p| p.rows).sum(),
            bytes: partitions.iter().map(|p| p.bytes).sum(),
            partitions,
        })
    }
}
