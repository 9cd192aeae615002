//! The delivery checkpoint: the last delivered position of every source shard, read from the
//! newest snapshot that carries one.

use std::collections::BTreeMap;

use iceberg::Catalog;
use iceberg::spec::TableMetadata;
use iceberg::{NamespaceIdent, TableIdent};

use crate::catalog::Lake;
use crate::{Error, Result};

/// Snapshot summary property holding the checkpoint (a JSON object: shard → position).
pub const CHECKPOINT_PROPERTY: &str = "tarn.checkpoint";

impl Lake {
    /// The checkpoint committed with the table's data, or `None` for a table delivery never wrote.
    /// Snapshots without one (written by other engines) are passed over, back along the lineage.
    pub async fn checkpoint(&self, namespace: &str, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        let ident = TableIdent::new(NamespaceIdent::new(namespace.to_owned()), name.to_owned());
        let table = self.catalog.load_table(&ident).await?;
        checkpoint_of(table.metadata(), &format!("{namespace}.{name}"))
    }
}

impl Lake {
    /// [`Lake::checkpoint`], or `None` when there is no such table.
    pub async fn checkpoint_if_exists(&self, namespace: &str, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.existing(namespace, name).await? {
            Some(table) => checkpoint_of(table.metadata(), &format!("{namespace}.{name}")),
            None => Ok(None),
        }
    }
}

/// The checkpoint of the current snapshot of `metadata` (or of its nearest ancestor carrying one).
pub(crate) fn checkpoint_of(metadata: &TableMetadata, table: &str) -> Result<Option<BTreeMap<String, String>>> {
    let mut at = metadata.current_snapshot();
    while let Some(snapshot) = at {
        if let Some(text) = snapshot.summary().additional_properties.get(CHECKPOINT_PROPERTY) {
            let parsed = serde_json::from_str(text)
                .map_err(|e| Error::Checkpoint { table: table.to_owned(), message: e.to_string() })?;
            return Ok(Some(parsed));
        }
        at = snapshot.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
