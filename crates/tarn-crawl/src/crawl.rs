//! One crawl of a location: list its files, group them into tables (each sub-folder that is not
//! a `key=value` partition folder is a table of its own, as Glue's crawler does; otherwise the
//! location is one table), read the schema of each file not seen before, and merge: new columns
//! are added, a column whose values changed type is widened (numbers to double, anything else to
//! string), new partition folders are listed. Files are only read, never moved or rewritten.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow_schema::DataType;
use serde::Serialize;
use tarn_lake::hive;
use tarn_store::Store;

use crate::format::{FileFormat, gunzip_if, infer_schema, merge_type};
use crate::{CrawledColumn, CrawledFile, CrawledTable, registry};

/// What one crawl did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrawlReport {
    pub location: String,
    pub tables: Vec<TableReport>,
    /// Files the crawler passed over (unknown format, hidden, or of another format than their
    /// table's), the first 20 of them.
    pub skipped: Vec<String>,
    pub skipped_count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub format: String,
    pub created: bool,
    pub files_added: u64,
    pub files: u64,
    pub partitions_added: Vec<String>,
    pub columns_added: Vec<String>,
    /// Columns whose type had to be widened to hold the new files' values.
    pub columns_widened: Vec<String>,
    /// Files that could not be read (with why); they are left out until a later crawl reads them.
    pub unreadable: Vec<String>,
}

/// A listed file: key, size, format.
type Found = (String, u64, FileFormat);

/// A layer or table name as the catalog takes it: lower case, `a-z0-9_`.
fn table_name(text: &str) -> String {
    let name: String =
        text.trim().to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if name.is_empty() { "crawled".into() } else { name }
}

/// Crawls the files under `location` (a folder of the lake's storage, relative to its root) into
/// tables of `namespace`; `table` names the single table the whole location becomes.
pub async fn crawl(
    store: &Store,
    lake_dir: &Path,
    location: &str,
    namespace: &str,
    table: Option<&str>,
    now_ms: i64,
) -> Result<CrawlReport, String> {
    if namespace.is_empty() || !namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("layer {namespace:?}: use a-z, 0-9 and _"));
    }
    let prefix = location.trim_matches('/').to_owned();
    let listing =
        store.list(&format!("{prefix}/")).await.map_err(|e| format!("cannot list {}: {e}", store.url(&prefix)))?;
    if listing.is_empty() {
        return Err(format!("no files under {}", store.url(&prefix)));
    }
    let base = prefix.rsplit('/').next().unwrap_or(&prefix);
    let mut report =
        CrawlReport { location: store.url(&prefix), tables: Vec::new(), skipped: Vec::new(), skipped_count: 0 };
    let skip = |report: &mut CrawlReport, key: &str| {
        report.skipped_count += 1;
        if report.skipped.len() < 20 {
            report.skipped.push(key.to_owned());
        }
    };
    // Table name → (its folder, its files with their formats).
    let mut groups: BTreeMap<String, (String, Vec<Found>)> = BTreeMap::new();
    for object in listing {
        let relative = object.key[prefix.len()..].trim_start_matches('/');
        let Some((format, _)) = FileFormat::of_key(relative) else {
            skip(&mut report, &object.key);
            continue;
        };
        let first = relative.split_once('/').map(|(first, _)| first).filter(|f| !f.contains('='));
        let (name, folder) = match (table, first) {
            (Some(t), _) => (table_name(t), prefix.clone()),
            (None, Some(first)) => (table_name(first), format!("{prefix}/{first}")),
            (None, None) => (table_name(base), prefix.clone()),
        };
        let group = groups.entry(name).or_insert_with(|| (folder, Vec::new()));
        group.1.push((object.key.clone(), object.size, format));
    }
    for (name, (folder, files)) in groups {
        let existing = registry::load(lake_dir, namespace, &name)?;
        let format = match &existing {
            Some(t) => t.format,
            None => {
                let mut counts: BTreeMap<&str, (usize, FileFormat)> = BTreeMap::new();
                for (_, _, f) in &files {
                    counts.entry(f.name()).or_insert((0, *f)).0 += 1;
                }
                counts.values().max_by_key(|(n, _)| *n).map(|(_, f)| *f).expect("a group has files")
            }
        };
        let mut table = existing.clone().unwrap_or_else(|| CrawledTable {
            namespace: namespace.to_owned(),
            name: name.clone(),
            location: folder.clone(),
            format,
            columns: Vec::new(),
            partition_keys: Vec::new(),
            files: Vec::new(),
            created_ms: now_ms,
            updated_ms: now_ms,
            crawls: 0,
        });
        if table.location != folder {
            return Err(format!(
                "{namespace}.{name} was crawled from {}; crawl that location again, or name another table",
                store.url(&table.location)
            ));
        }
        table.crawls += 1;
        let mut entry = TableReport {
            table: format!("{namespace}.{name}"),
            format: format.name().into(),
            created: existing.is_none(),
            files_added: 0,
            files: 0,
            partitions_added: Vec::new(),
            columns_added: Vec::new(),
            columns_widened: Vec::new(),
            unreadable: Vec::new(),
        };
        let folders_before: BTreeSet<String> = table.partition_folders().into_iter().collect();
        for (key, size, file_format) in files {
            if file_format != format {
                skip(&mut report, &key);
                continue;
            }
            if table.files.iter().any(|f| f.key == key && f.size == size) {
                continue;
            }
            let (schema, rows) = match read_schema(store, &key, format).await {
                Ok(read) => read,
                Err(e) => {
                    entry.unreadable.push(format!("{key}: {e}"));
                    continue;
                }
            };
            for field in schema.fields() {
                match table.columns.iter_mut().find(|c| c.name == *field.name()) {
                    Some(column) => {
                        let had: DataType = column.data_type.parse().map_err(|e| format!("{e}"))?;
                        let merged = merge_type(&had, field.data_type());
                        if merged != had {
                            column.data_type = merged.to_string();
                            if !entry.columns_widened.contains(&column.name) {
                                entry.columns_widened.push(column.name.clone());
                            }
                        }
                    }
                    None => {
                        table.columns.push(CrawledColumn {
                            name: field.name().clone(),
                            data_type: field.data_type().to_string(),
                            since_crawl: table.crawls,
                        });
                        entry.columns_added.push(field.name().clone());
                    }
                }
            }
            table.files.retain(|f| f.key != key);
            table.files.push(CrawledFile { key, size, rows: Some(rows) });
            entry.files_added += 1;
        }
        table.files.sort_by(|a, b| a.key.cmp(&b.key));
        let data_columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let relatives: Vec<&str> = table.files.iter().map(|f| table.relative(&f.key)).collect();
        table.partition_keys = hive::partition_columns(relatives, &data_columns);
        entry.partitions_added =
            table.partition_folders().into_iter().filter(|f| !f.is_empty() && !folders_before.contains(f)).collect();
        entry.files = table.files.len() as u64;
        table.updated_ms = now_ms;
        if !table.files.is_empty() {
            registry::save(lake_dir, &table)?;
        }
        report.tables.push(entry);
    }
    Ok(report)
}

/// A file's schema and record count.
async fn read_schema(store: &Store, key: &str, format: FileFormat) -> Result<(arrow_schema::Schema, u64), String> {
    let bytes = store.get(key).await.map_err(|e| format!("cannot read: {e}"))?;
    let bytes = gunzip_if(key, bytes)?;
    infer_schema(format, &bytes)
}

#[cfg(test)]
mod tests;
