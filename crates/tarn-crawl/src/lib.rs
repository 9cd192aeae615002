//! The crawler, Glue's for Tarn: `tarn crawl <location>` registers the files other tools put in
//! the lake's storage (Parquet, JSON lines, CSV with a header; gzip'd when their name ends in
//! `.gz`) as tables of a layer, with a schema inferred from the files (timestamps typed, not left
//! as strings) and the `key=value` folders as partition columns. A re-run adds the new files, new
//! partitions and new columns; files are never rewritten or moved.
//!
//! A crawled table is not an Iceberg table (JSON and CSV cannot be Iceberg data files): its
//! definition is a JSON document under `<lake dir>/crawled/<layer>/<table>.json`, and queries
//! read its files as they are.
//!
//! Layout: `format` (file formats: schema inference and decoding; pure) · `registry` (the
//! definitions on disk) · `crawl` (listing, grouping into tables, merging schemas) ·
//! `describe` (a crawled table as the catalog shows it).

mod crawl;
mod describe;
mod format;
mod registry;

pub use crawl::{CrawlReport, TableReport, crawl};
pub use describe::{CrawledColumnDescription, CrawledDescription, CrawledPartition};
pub use format::{FileFormat, decode, gunzip_if, infer_schema, merge_type};
pub use registry::{load, load_all, remove, save};

use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

/// One column of a crawled table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawledColumn {
    pub name: String,
    /// The Arrow type, as Arrow writes it (`Int64`, `Timestamp(µs, "+00:00")`, `Struct(…)`).
    pub data_type: String,
    /// The crawl (1, 2, …) that found the column.
    pub since_crawl: u32,
}

/// One data file of a crawled table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawledFile {
    /// Relative to the lake's storage root.
    pub key: String,
    pub size: u64,
    /// Records in the file (Parquet's footer count, JSON objects, CSV rows); absent in
    /// definitions written before the crawler counted them.
    #[serde(default)]
    pub rows: Option<u64>,
}

/// A table the crawler registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawledTable {
    pub namespace: String,
    pub name: String,
    /// The folder of its files, relative to the lake's storage root (no trailing `/`).
    pub location: String,
    pub format: FileFormat,
    pub columns: Vec<CrawledColumn>,
    /// Hive folder keys, in the order first met; string columns after the data columns.
    pub partition_keys: Vec<String>,
    pub files: Vec<CrawledFile>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub crawls: u32,
}

impl CrawledTable {
    /// The data columns as an Arrow schema (every column nullable).
    pub fn data_schema(&self) -> Result<Schema, String> {
        let fields = self
            .columns
            .iter()
            .map(|c| {
                let data_type: DataType = c.data_type.parse().map_err(|e| {
                    format!("column {} of {}.{}: type {}: {e}", c.name, self.namespace, self.name, c.data_type)
                })?;
                Ok(Field::new(&c.name, data_type, true))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Schema::new(fields))
    }

    /// The part of `key` below the table's folder.
    pub fn relative<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(&self.location).map_or(key, |r| r.trim_start_matches('/'))
    }

    /// The distinct partition folders (below the table's folder).
    pub fn partition_folders(&self) -> Vec<String> {
        let mut folders: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| self.relative(&f.key).rsplit_once('/').map(|(folder, _)| folder.to_owned()))
            .collect();
        folders.sort();
        folders.dedup();
        folders
    }
}
