//! Opening the catalog and finding or creating tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::io::{LocalFsStorageFactory, StorageFactory};
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle, SqlCatalog,
    SqlCatalogBuilder,
};
use tarn_convert::TableSchema;
use tarn_store::Store;

use crate::Result;
use crate::io::S3StorageFactory;
use crate::schema::to_iceberg_schema;

/// The catalog's name in `iceberg_tables.catalog_name` (pyiceberg opens it under any name).
pub(crate) const CATALOG_NAME: &str = "tarn";

/// The lake: the catalog (`catalog.db`, SQLite, in a local directory) and the store that holds
/// `warehouse/` (tables' data and metadata), `errors/` and `backup/`: the same local directory
/// by default, or an S3 location.
pub struct Lake {
    pub(crate) catalog: SqlCatalog,
    dir: PathBuf,
    store: Store,
    /// A connection of its own for [`Lake::listing`], opened on first use and kept.
    pub(crate) listing_connection: tokio::sync::Mutex<Option<sqlx::SqliteConnection>>,
}

impl Lake {
    /// The lake entirely under `dir`.
    pub async fn open(dir: &Path) -> Result<Lake> {
        Lake::open_with(dir, None).await
    }

    /// The lake with its catalog under `dir` and its files in `store` (`dir` too when `None`).
    pub async fn open_with(dir: &Path, store: Option<Store>) -> Result<Lake> {
        std::fs::create_dir_all(dir.join("warehouse"))
            .map_err(|e| crate::Error::Other(format!("{}: {e}", dir.display())))?;
        let dir = dir.canonicalize().map_err(|e| crate::Error::Other(format!("{}: {e}", dir.display())))?;
        let store = store.unwrap_or_else(|| Store::local(&dir));
        let factory: Arc<dyn StorageFactory> = match &store {
            Store::Local(_) => Arc::new(LocalFsStorageFactory),
            Store::S3 { s3, .. } => Arc::new(S3StorageFactory { s3: (**s3).clone() }),
        };
        let props = HashMap::from([
            (SQL_CATALOG_PROP_URI.to_string(), format!("sqlite:{}?mode=rwc", dir.join("catalog.db").display())),
            (SQL_CATALOG_PROP_WAREHOUSE.to_string(), store.url("warehouse")),
            (SQL_CATALOG_PROP_BIND_STYLE.to_string(), SqlBindStyle::QMark.to_string()),
        ]);
        let catalog = SqlCatalogBuilder::default().with_storage_factory(factory).load(CATALOG_NAME, props).await?;
        Ok(Lake { catalog, dir, store, listing_connection: Default::default() })
    }

    /// The directory of the catalog.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the lake's files are.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &SqlCatalog {
        &self.catalog
    }

    /// Loads `namespace.name` if it exists.
    pub async fn existing(&self, namespace: &str, name: &str) -> Result<Option<Table>> {
        let ident = TableIdent::new(NamespaceIdent::new(namespace.to_owned()), name.to_owned());
        if !self.catalog.namespace_exists(ident.namespace()).await? || !self.catalog.table_exists(&ident).await? {
            return Ok(None);
        }
        match self.catalog.load_table(&ident).await {
            Ok(table) => Ok(Some(table)),
            // Dropped between the check and the load (a concurrent DROP, a stopped CTAS cleaning up).
            Err(e) if matches!(e.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads `namespace.name`, creating the namespace and the table (from `schema`) if needed.
    pub async fn table(&self, namespace: &str, name: &str, schema: &TableSchema) -> Result<Table> {
        let ns = NamespaceIdent::new(namespace.to_owned());
        if !self.catalog.namespace_exists(&ns).await? {
            self.catalog.create_namespace(&ns, HashMap::new()).await?;
        }
        let ident = TableIdent::new(ns.clone(), name.to_owned());
        if self.catalog.table_exists(&ident).await? {
            return Ok(self.catalog.load_table(&ident).await?);
        }
        let creation = TableCreation::builder().name(name.to_owned()).schema(to_iceberg_schema(schema)?).build();
        Ok(self.catalog.create_table(&ns, creation).await?)
    }
}
