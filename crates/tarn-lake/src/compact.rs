//! Compaction: the small data files of a folder rewritten into one, committed as one Iceberg
//! snapshot with operation `replace` (the old files marked deleted, every other file carried as
//! existing), so readers see each row exactly once before and after.
//!
//! iceberg-rust 0.10.1 has no rewrite action, and a rewrite must never be committed as an append
//! (that would duplicate rows). So the commit is built here from its public spec types: the new
//! data file, a manifest, a manifest list, a snapshot and the next metadata file, then swapped in
//! with the SQL catalog's compare-and-swap on the metadata location (the same `UPDATE ... WHERE
//! metadata_location = <current>` the catalog itself uses). When a concurrent commit (delivery)
//! wins the swap, the commit is rebuilt on the new snapshot, reusing the rewritten data files.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use iceberg::spec::{
    DataContentType, DataFile, ManifestEntryRef, ManifestFile, ManifestList, ManifestListWriter, ManifestWriterBuilder,
    Operation, Snapshot, Summary,
};
use iceberg::table::Table;
use iceberg::{Catalog, MetadataLocation, NamespaceIdent, TableIdent};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::Connection;

use crate::append::write_data_files;
use crate::catalog::Lake;
use crate::checkpoint::CHECKPOINT_PROPERTY;
use crate::{Compression, Error, Result};

/// One run reads at most this many times `small_bytes` per folder.
const MAX_INPUT_FILES_OF_SMALL: u64 = 4;

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compacted {
    pub folders: usize,
    pub files_in: usize,
    pub files_out: usize,
    pub rows: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// When compaction rewrites a folder.
#[derive(Debug, Clone, Copy)]
pub struct CompactionPolicy {
    /// Files below this size are small.
    pub small_bytes: u64,
    /// A folder is rewritten once it holds this many small files.
    pub min_files: usize,
    pub compression: Compression,
}

/// The folder of a data file path, relative to nothing: everything before the last `/`.
fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The live entries of a table's current snapshot, by manifest.
pub(crate) struct Manifests {
    pub(crate) entries: Vec<(ManifestFile, Vec<ManifestEntryRef>)>,
}

impl Manifests {
    pub(crate) async fn of(table: &Table) -> Result<Option<Manifests>> {
        let metadata = table.metadata();
        let Some(current) = metadata.current_snapshot() else { return Ok(None) };
        let file_io = table.file_io();
        let list_bytes = file_io.new_input(current.manifest_list())?.read().await?;
        let list = ManifestList::parse_with_version(&list_bytes, metadata.format_version())?;
        let mut entries = Vec::new();
        for mf in list.entries() {
            let manifest = mf.load_manifest(file_io).await?;
            entries.push((mf.clone(), manifest.entries().to_vec()));
        }
        Ok(Some(Manifests { entries }))
    }

    pub(crate) fn alive(&self) -> impl Iterator<Item = &ManifestEntryRef> {
        self.entries.iter().flat_map(|(_, e)| e.iter()).filter(|e| e.is_alive())
    }
}

/// How many times a rewrite is committed on top of newer snapshots before it gives up.
const COMMIT_ATTEMPTS: usize = 8;

/// What a commit attempt found.
enum Attempt {
    Committed,
    /// Another commit came first; the table must be reloaded and the rewrite rebased.
    Lost,
    /// A replaced file is no longer live (another rewrite or expiry took it): give up.
    Stale,
}

/// Data files rewritten, not yet committed.
pub(crate) struct Rewrite {
    ident: TableIdent,
    replaced: HashSet<String>,
    new_files: Vec<DataFile>,
    report: Compacted,
}

impl Lake {
    /// Rewrites every folder of `namespace.name` holding at least `policy.min_files` small data
    /// files into one file per folder, in one `replace` snapshot. `Ok(None)`: nothing to do.
    ///
    /// The rewrite (reading and writing data files, the slow part) happens once; its commit is
    /// rebuilt on top of whatever committed meanwhile (delivery only appends, so the replaced
    /// files are still live) and retried, so compaction can run beside delivery. Fails with a
    /// retryable conflict only if the replaced files changed or the table stays too busy.
    pub async fn compact(&self, namespace: &str, name: &str, policy: CompactionPolicy) -> Result<Option<Compacted>> {
        let ident = TableIdent::new(NamespaceIdent::new(namespace.to_owned()), name.to_owned());
        match self.rewrite(ident, policy).await? {
            Some(rewrite) => self.commit_with_rebase(rewrite).await.map(Some),
            None => Ok(None),
        }
    }

    /// Picks the small files and writes their rows into new files, uncommitted.
    pub(crate) async fn rewrite(&self, ident: TableIdent, policy: CompactionPolicy) -> Result<Option<Rewrite>> {
        let table = self.catalog.load_table(&ident).await?;
        let Some(manifests) = Manifests::of(&table).await? else { return Ok(None) };
        // Small live data files, by folder.
        let mut small: BTreeMap<String, Vec<ManifestEntryRef>> = BTreeMap::new();
        for e in manifests.alive() {
            let f = e.data_file();
            if f.content_type() == DataContentType::Data && f.file_size_in_bytes() < policy.small_bytes {
                small.entry(folder_of(f.file_path()).to_owned()).or_default().push(e.clone());
            }
        }
        // Smallest first, and at most `MAX_INPUT_FILES_OF_SMALL` files' worth of bytes per folder, so
        // one run stays short and its output is not itself small for long.
        for files in small.values_mut() {
            files.sort_by_key(|e| e.data_file().file_size_in_bytes());
            let budget = policy.small_bytes * MAX_INPUT_FILES_OF_SMALL;
            let mut taken = 0u64;
            files.retain(|e| {
                taken += e.data_file().file_size_in_bytes();
                taken <= budget
            });
        }
        small.retain(|_, files| files.len() >= policy.min_files.max(2));
        if small.is_empty() {
            return Ok(None);
        }
        let replaced: HashSet<String> =
            small.values().flatten().map(|e| e.data_file().file_path().to_owned()).collect();

        let mut report = Compacted { folders: small.len(), ..Compacted::default() };
        let metadata = table.metadata();
        let file_io = table.file_io();
        let data_root = format!("{}/data", metadata.location().trim_end_matches('/'));
        let prefix = format!("compact-{:016x}", rand_id());
        let mut new_files = Vec::new();
        for (folder, entries) in &small {
            let mut batches = Vec::new();
            for e in entries {
                let f = e.data_file();
                report.files_in += 1;
                report.bytes_in += f.file_size_in_bytes();
                report.rows += f.record_count();
                let bytes = file_io.new_input(f.file_path())?.read().await?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .map_err(|e| Error::Other(format!("{}: {e}", f.file_path())))?
                    .build()
                    .map_err(|e| Error::Other(format!("{}: {e}", f.file_path())))?;
                for batch in reader {
                    batches.push(batch?);
                }
            }
            let relative = folder.strip_prefix(&data_root).unwrap_or("").trim_start_matches('/');
            let written = write_data_files(&table, relative, &batches, policy.compression, &prefix).await?;
            report.files_out += written.len();
            report.bytes_out += written.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
            new_files.extend(written);
        }

        Ok(Some(Rewrite { ident, replaced, new_files, report }))
    }

    /// Commits a rewrite on the table as it is now, rebuilt on each newer snapshot that wins the
    /// race, up to `COMMIT_ATTEMPTS` times. On failure the rewritten files are removed.
    pub(crate) async fn commit_with_rebase(&self, rewrite: Rewrite) -> Result<Compacted> {
        let Rewrite { ident, replaced, new_files, report } = rewrite;
        let mut table = None;
        for _ in 0..COMMIT_ATTEMPTS {
            let t = self.catalog.load_table(&ident).await?;
            let Some(manifests) = Manifests::of(&t).await? else { break };
            let attempt = self.commit_rewrite(&ident, &t, &manifests, &replaced, &new_files, &report).await?;
            table = Some(t);
            match attempt {
                Attempt::Committed => return Ok(report),
                Attempt::Stale => break,
                Attempt::Lost => continue,
            }
        }
        // Nothing references the rewritten files: remove them.
        if let Some(t) = table {
            for f in &new_files {
                let _ = t.file_io().delete(f.file_path()).await;
            }
        }
        Err(Error::Conflict(format!("{ident} changed while it was compacted")))
    }

    /// Commits `new_files` in place of `replaced` on top of `table`'s current snapshot, whose
    /// live entries are `manifests`: one manifest for the touched manifests' entries (new files
    /// added, replaced ones deleted, the rest existing with their sequence numbers), untouched
    /// manifests as they are, a manifest list, a `replace` snapshot and the next metadata file,
    /// swapped in with the catalog's compare-and-swap.
    async fn commit_rewrite(
        &self,
        ident: &TableIdent,
        table: &Table,
        manifests: &Manifests,
        replaced: &HashSet<String>,
        new_files: &[DataFile],
        report: &Compacted,
    ) -> Result<Attempt> {
        let live: HashSet<&str> = manifests.alive().map(|e| e.data_file().file_path()).collect();
        if !replaced.iter().all(|p| live.contains(p.as_str())) {
            return Ok(Attempt::Stale);
        }
        let metadata = table.metadata();
        let Some(current) = metadata.current_snapshot() else { return Ok(Attempt::Stale) };
        let file_io = table.file_io();
        let snapshot_id = loop {
            let id = (rand_id() >> 1) as i64;
            if id > 0 && metadata.snapshot_by_id(id).is_none() {
                break id;
            }
        };
        let sequence_number = metadata.last_sequence_number() + 1;
        let location = metadata.location().trim_end_matches('/');
        let uuid = format!("{:032x}", rand_id() as u128 | ((rand_id() as u128) << 64));
        let manifest_path = format!("{location}/metadata/{uuid}-m0.avro");
        let mut writer = ManifestWriterBuilder::new(
            file_io.new_output(&manifest_path)?,
            Some(snapshot_id),
            metadata.current_schema().clone(),
            metadata.default_partition_spec().as_ref().clone(),
        )
        .build_v2_data();
        for f in new_files.iter().cloned() {
            writer.add_file(f, sequence_number)?;
        }
        let mut kept = Vec::new();
        for (mf, entries) in &manifests.entries {
            let touched = entries.iter().any(|e| replaced.contains(e.data_file().file_path()));
            if !touched {
                kept.push(mf.clone());
                continue;
            }
            for e in entries.iter().filter(|e| e.is_alive()) {
                let seq = e.sequence_number().unwrap_or(0);
                if replaced.contains(e.data_file().file_path()) {
                    writer.add_delete_file(e.data_file().clone(), seq, e.file_sequence_number)?;
                } else {
                    let snap = e.snapshot_id().unwrap_or(current.snapshot_id());
                    writer.add_existing_file(e.data_file().clone(), snap, seq, e.file_sequence_number)?;
                }
            }
        }
        kept.push(writer.write_manifest_file().await?);
        let list_path = format!("{location}/metadata/snap-{snapshot_id}-1-{uuid}.avro");
        let mut list_writer = ManifestListWriter::v2(
            file_io.new_output(&list_path)?.writer().await?,
            snapshot_id,
            Some(current.snapshot_id()),
            sequence_number,
        );
        list_writer.add_manifests(kept.into_iter())?;
        list_writer.close().await?;

        let mut properties = std::collections::HashMap::from([
            ("added-data-files".to_string(), report.files_out.to_string()),
            ("deleted-data-files".to_string(), report.files_in.to_string()),
            ("added-records".to_string(), report.rows.to_string()),
            ("deleted-records".to_string(), report.rows.to_string()),
            ("added-files-size".to_string(), report.bytes_out.to_string()),
            ("removed-files-size".to_string(), report.bytes_in.to_string()),
        ]);
        // The delivery checkpoint does not move: the same rows, in other files.
        if let Some(cp) = current.summary().additional_properties.get(CHECKPOINT_PROPERTY) {
            properties.insert(CHECKPOINT_PROPERTY.to_string(), cp.clone());
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| Error::Other(e.to_string()))?
            .as_millis() as i64;
        let snapshot = Snapshot::builder()
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(Some(current.snapshot_id()))
            .with_sequence_number(sequence_number)
            .with_timestamp_ms(now_ms.max(current.timestamp_ms() + 1))
            .with_manifest_list(list_path.clone())
            .with_summary(Summary { operation: Operation::Replace, additional_properties: properties })
            .with_schema_id(metadata.current_schema_id())
            .build();
        let current_location =
            table.metadata_location().ok_or_else(|| Error::Other("table without a metadata location".into()))?;
        let next = metadata
            .clone()
            .into_builder(Some(current_location.to_owned()))
            .set_branch_snapshot(snapshot, "main")?
            .build()?
            .metadata;
        let next_location = MetadataLocation::from_str(current_location)?.with_next_version();
        next.write_to(file_io, &next_location).await?;

        if self.swap_metadata(ident, current_location, &next_location.to_string()).await? {
            return Ok(Attempt::Committed);
        }
        // Someone committed first: this attempt's metadata is referenced by nothing.
        for path in [manifest_path, list_path, next_location.to_string()] {
            let _ = file_io.delete(&path).await;
        }
        Ok(Attempt::Lost)
    }

    /// The SQL catalog's compare-and-swap: point the table at `next` if it still points at
    /// `current`. Returns whether it did.
    async fn swap_metadata(&self, ident: &TableIdent, current: &str, next: &str) -> Result<bool> {
        let url = format!("sqlite:{}?mode=rw", self.dir().join("catalog.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.map_err(|e| Error::Other(e.to_string()))?;
        let result = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        )
        .bind(next)
        .bind(current)
        .bind(crate::catalog::CATALOG_NAME)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .bind(current)
        .execute(&mut conn)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
        Ok(result.rows_affected() == 1)
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures_util::TryStreamExt;
    use tarn_convert::{ConvertOptions, TableSchema, convert, evolve, split_payload};

    use super::*;
    use crate::FileGroup;

    fn batch(from: usize, n: usize, schema: &mut TableSchema) -> arrow_array::RecordBatch {
        let options = ConvertOptions::default();
        let rows: Vec<_> = (from..from + n)
            .flat_map(|i| split_payload(format!(r#"{{"Id":{i},"Gps":{{"Lat":{i}.5}}}}"#).as_bytes()).0)
            .map(|o| options.normalize(o))
            .collect();
        *schema = evolve(schema, &rows, &options).0;
        convert(schema, &rows, &options).unwrap().batch
    }

    async fn ids(table: &iceberg::table::Table) -> Vec<i64> {
        let scan = table.scan().select(["id"]).build().unwrap();
        let batches: Vec<_> = scan.to_arrow().await.unwrap().try_collect().await.unwrap();
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().clone();
                a.values().to_vec()
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn small_files_of_a_folder_become_one_in_a_replace_snapshot_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).await.unwrap();
        let mut schema = TableSchema::default();
        let first = batch(0, 10, &mut schema);
        let mut table = lake.table("raw", "t", &schema).await.unwrap();
        let mut groups = vec![first];
        for i in 1..5 {
            groups.push(batch(i * 10, 10, &mut schema));
        }
        for (i, b) in groups.into_iter().enumerate() {
            let cp = BTreeMap::from([("s".to_string(), format!("{}", (i + 1) * 10))]);
            let group = [FileGroup { folder: "hour=07".into(), batches: vec![b] }];
            table = lake.append(&table, &group, &cp, Compression::Snappy, &format!("f{i}")).await.unwrap();
        }
        // One file alone in another folder: not compacted.
        let cp = BTreeMap::from([("s".to_string(), "60".to_string())]);
        let other = [FileGroup { folder: "hour=08".into(), batches: vec![batch(50, 10, &mut schema)] }];
        lake.append(&table, &other, &cp, Compression::Snappy, "g").await.unwrap();

        let policy = CompactionPolicy { small_bytes: 1 << 20, min_files: 3, compression: Compression::Zstd };
        let done = lake.compact("raw", "t", policy).await.unwrap().unwrap();
        assert_eq!((done.folders, done.files_in, done.files_out, done.rows), (1, 5, 1, 50));
        assert_eq!(lake.compact("raw", "t", policy).await.unwrap(), None, "nothing left to do");

        let table = lake.table("raw", "t", &TableSchema::default()).await.unwrap();
        assert_eq!(ids(&table).await, (0..60).collect::<Vec<i64>>(), "every row exactly once");
        let current = table.metadata().current_snapshot().unwrap();
        assert_eq!(current.summary().operation, Operation::Replace);
        assert_eq!(lake.checkpoint("raw", "t").await.unwrap(), Some(cp.clone()), "the checkpoint stays");
        let files = crate::append::live_files(&table).await;
        assert_eq!(files.iter().filter(|f| f.contains("/hour=07/")).count(), 1);
        assert_eq!(files.iter().filter(|f| f.contains("/hour=08/")).count(), 1);

        // Expiring the old snapshots deletes the replaced files, and only them.
        let replaced_file =
            table.metadata().snapshots().next().map(|_| dir.path().join("warehouse/raw/t/data/hour=07")).unwrap();
        let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
        assert_eq!(count(&replaced_file), 6, "5 replaced + 1 new, before expiry");
        let expired = lake.expire("raw", "t", i64::MAX, 1).await.unwrap();
        assert_eq!(expired.snapshots, 6);
        assert_eq!(count(&replaced_file), 1, "only the compacted file is left");
        assert!(expired.files_deleted >= 5);
        let table = lake.table("raw", "t", &TableSchema::default()).await.unwrap();
        assert_eq!(ids(&table).await, (0..60).collect::<Vec<i64>>());
        assert_eq!(lake.checkpoint("raw", "t").await.unwrap(), Some(cp.clone()));

        // Delivery appends on top of the replace snapshot as before.
        let cp = BTreeMap::from([("s".to_string(), "70".to_string())]);
        let more = [FileGroup { folder: "hour=07".into(), batches: vec![batch(60, 10, &mut schema)] }];
        let table = lake.append(&table, &more, &cp, Compression::Snappy, "h").await.unwrap();
        assert_eq!(ids(&table).await, (0..70).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn a_rewrite_is_rebased_on_deliveries_that_committed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).await.unwrap();
        let mut schema = TableSchema::default();
        batch(0, 1, &mut schema);
        let mut table = lake.table("raw", "t", &schema).await.unwrap();
        async fn append(lake: &Lake, table: Table, from: usize, schema: &mut TableSchema) -> Table {
            let cp = BTreeMap::from([("s".to_string(), format!("{}", from + 10))]);
            let group = [FileGroup { folder: "hour=07".into(), batches: vec![batch(from, 10, schema)] }];
            lake.append(&table, &group, &cp, Compression::Snappy, &format!("f{from}")).await.unwrap()
        }
        for i in 0..3 {
            table = append(&lake, table, i * 10, &mut schema).await;
        }
        let policy = CompactionPolicy { small_bytes: 1 << 20, min_files: 3, compression: Compression::Snappy };
        let ident = table.identifier().clone();
        let rewrite = lake.rewrite(ident.clone(), policy).await.unwrap().unwrap();
        // Two deliveries commit while the rewrite was being written.
        table = append(&lake, table, 30, &mut schema).await;
        append(&lake, table, 40, &mut schema).await;
        let done = lake.commit_with_rebase(rewrite).await.unwrap();
        assert_eq!((done.files_in, done.rows), (3, 30));
        let table = lake.catalog.load_table(&ident).await.unwrap();
        assert_eq!(ids(&table).await, (0..50).collect::<Vec<i64>>(), "every row exactly once");
        assert_eq!(table.metadata().current_snapshot().unwrap().summary().operation, Operation::Replace);
        let cp = BTreeMap::from([("s".to_string(), "50".to_string())]);
        assert_eq!(lake.checkpoint("raw", "t").await.unwrap(), Some(cp), "the newest delivery's checkpoint");

        // A rewrite of files another rewrite already replaced is stale: refused, its files removed.
        let table = append(&lake, table, 50, &mut schema).await;
        let policy = CompactionPolicy { min_files: 2, ..policy };
        let first = lake.rewrite(ident.clone(), policy).await.unwrap().unwrap();
        let second = lake.rewrite(ident.clone(), policy).await.unwrap().unwrap();
        let second_files: Vec<String> = second.new_files.iter().map(|f| f.file_path().to_owned()).collect();
        lake.commit_with_rebase(first).await.unwrap();
        assert!(matches!(lake.commit_with_rebase(second).await, Err(Error::Conflict(_))));
        for f in second_files {
            assert!(!table.file_io().exists(&f).await.unwrap(), "{f} should have been removed");
        }
        let table = lake.catalog.load_table(&ident).await.unwrap();
        assert_eq!(ids(&table).await, (0..60).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn the_swap_refuses_a_stale_metadata_location() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).await.unwrap();
        let mut schema = TableSchema::default();
        batch(0, 1, &mut schema);
        let table = lake.table("raw", "t", &schema).await.unwrap();
        let ident = table.identifier().clone();
        assert!(!lake.swap_metadata(&ident, "file:///not/the/current.json", "file:///x.json").await.unwrap());
        let current = table.metadata_location().unwrap();
        assert!(lake.swap_metadata(&ident, current, current).await.unwrap());
    }
}
