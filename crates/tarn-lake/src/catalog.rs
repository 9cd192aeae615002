//! Opening the catalog and finding or creating tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::io::LocalFsStorageFactory;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle, SqlCatalog,
    SqlCatalogBuilder,
};
use tarn_convert::TableSchema;

use crate::Result;
use crate::schema::to_iceberg_schema;

/// The catalog's name in `iceberg_tables.catalog_name` (pyiceberg opens it under any name).
pub(crate) const CATALOG_NAME: &str = "tarn";

/// The lake under one data directory: `catalog.db` (SQLite) and `warehouse/` (data and metadata).
pub struct Lake {
    pub(crate) catalog: SqlCatalog,
    dir: PathBuf,
}

impl Lake {
    pub async fn open(dir: &Path) -> Result<Lake> {
        std::fs::create_dir_all(dir.join("warehouse"))
            .map_err(|e| crate::Error::Other(format!("{}: {e}", dir.display())))?;
        let dir = dir.canonicalize().map_err(|e| crate::Error::Other(format!("{}: {e}", dir.display())))?;
        let props = HashMap::from([
            (SQL_CATALOG_PROP_URI.to_string(), format!("sqlite:{}?mode=rwc", dir.join("catalog.db").display())),
            (SQL_CATALOG_PROP_WAREHOUSE.to_string(), format!("file://{}", dir.join("warehouse").display())),
            (SQL_CATALOG_PROP_BIND_STYLE.to_string(), SqlBindStyle::QMark.to_string()),
        ]);
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(Arc::new(LocalFsStorageFactory))
            .load(CATALOG_NAME, props)
            .await?;
        Ok(Lake { catalog, dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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
        Ok(Some(self.catalog.load_table(&ident).await?))
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
