//! Snapshot expiry with file removal: old snapshots leave the table's metadata (iceberg-rust's
//! expire action, which leaves files alone), then every file that only they referenced (data
//! files a compaction replaced, their manifests and manifest lists) is deleted. Files still
//! referenced by a kept snapshot are never touched.

use std::collections::HashSet;

use iceberg::spec::{ManifestList, TableMetadata};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, NamespaceIdent, TableIdent};

use crate::Result;
use crate::catalog::Lake;

/// What one expiry removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    pub snapshots: usize,
    pub files_deleted: usize,
}

/// Every file the table's snapshots use: manifest lists, manifests, live data files.
async fn referenced(table: &Table, metadata: &TableMetadata) -> Result<HashSet<String>> {
    let file_io = table.file_io();
    let mut files = HashSet::new();
    let mut manifests_seen = HashSet::new();
    for snapshot in metadata.snapshots() {
        files.insert(snapshot.manifest_list().to_owned());
        let bytes = file_io.new_input(snapshot.manifest_list())?.read().await?;
        let list = ManifestList::parse_with_version(&bytes, metadata.format_version())?;
        for mf in list.entries() {
            if !manifests_seen.insert(mf.manifest_path.clone()) {
                continue;
            }
            files.insert(mf.manifest_path.clone());
            // A deleted entry records a removal; the file it names is not in use.
            for e in mf.load_manifest(file_io).await?.entries().iter().filter(|e| e.is_alive()) {
                files.insert(e.data_file().file_path().to_owned());
            }
        }
    }
    Ok(files)
}

impl Lake {
    /// Expires the snapshots of `namespace.name` older than `older_than_ms` (keeping at least the
    /// newest `retain_last`) and deletes the files only they referenced.
    pub async fn expire(&self, namespace: &str, name: &str, older_than_ms: i64, retain_last: usize) -> Result<Expired> {
        let ident = TableIdent::new(NamespaceIdent::new(namespace.to_owned()), name.to_owned());
        let table = self.catalog.load_table(&ident).await?;
        let expirable = table.metadata().snapshots().filter(|s| s.timestamp_ms() < older_than_ms).count();
        if expirable == 0 || table.metadata().snapshots().count() <= retain_last {
            return Ok(Expired::default());
        }
        let before = referenced(&table, table.metadata()).await?;
        let snapshots_before = table.metadata().snapshots().count();
        let tx = Transaction::new(&table);
        let tx = tx.expire_snapshots().expire_older_than_ms(older_than_ms).retain_last(retain_last).apply(tx)?;
        let table = tx.commit(&self.catalog).await?;
        let after = referenced(&table, table.metadata()).await?;
        let mut report =
            Expired { snapshots: snapshots_before - table.metadata().snapshots().count(), files_deleted: 0 };
        for path in before.difference(&after) {
            table.file_io().delete(path).await?;
            report.files_deleted += 1;
        }
        Ok(report)
    }
}
