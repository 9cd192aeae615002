//! What a query sees of a table: one snapshot's schema, live data files and delivery checkpoint,
//! all from the same metadata file, so the checkpoint is the exact boundary between the rows in
//! the files and the rows still in the stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow_schema::{Field, Schema, SchemaRef};
use iceberg::spec::{DataContentType, ManifestList, Transform};
use iceberg::{Catalog, NamespaceIdent};

use tarn_convert::TableSchema;

use crate::catalog::Lake;
use crate::checkpoint::checkpoint_of;
use crate::schema::from_iceberg_schema;
use crate::{Error, Result};

/// A live data file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// As the metadata records it (`file:///…`, `s3://bucket/…`).
    pub path: String,
    pub size: u64,
    pub rows: u64,
    /// The file's values of the table's identity partition columns
    /// ([`TableView::identity_partitions`]) as text, `None` for a null value; empty when the
    /// file was written under another partition spec (its values are then unknown).
    pub identity_values: Vec<Option<String>>,
}

/// One snapshot of a table, as a reader needs it.
#[derive(Debug, Clone)]
pub struct TableView {
    pub namespace: String,
    pub name: String,
    /// The table's current schema in Arrow, without Iceberg's field-id metadata.
    pub schema: SchemaRef,
    /// The same schema as delivery converts records to it.
    pub table_schema: TableSchema,
    /// `None` for a table without a snapshot yet.
    pub snapshot_id: Option<i64>,
    pub files: Vec<LiveFile>,
    /// The delivery checkpoint committed with these files (shard → last delivered position).
    pub checkpoint: Option<BTreeMap<String, String>>,
    /// The table's root location.
    pub location: String,
    /// Whether the table has an Iceberg partition spec (tables SQL creates may; segments'
    /// tables keep their partitions in Hive-style folders instead).
    pub spec_partitioned: bool,
    /// Columns the current partition spec takes as they are (identity transforms): each file's
    /// value of them is known without opening it.
    pub identity_partitions: Vec<String>,
}

/// What never changes once written, kept across queries: the live files of each manifest (by
/// path) and the view of each metadata file (by its location; a commit writes a new one).
#[derive(Default)]
pub struct MetadataCache {
    files: Mutex<HashMap<String, Arc<Vec<LiveFile>>>>,
    views: Mutex<HashMap<String, Arc<TableView>>>,
}

impl MetadataCache {
    const MAX_MANIFESTS: usize = 100_000;
    const MAX_VIEWS: usize = 10_000;

    fn get(&self, path: &str) -> Option<Arc<Vec<LiveFile>>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).get(path).cloned()
    }

    fn put(&self, path: &str, files: Arc<Vec<LiveFile>>) {
        let mut map = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_MANIFESTS {
            map.clear();
        }
        map.insert(path.to_owned(), files);
    }

    fn view(&self, metadata_location: &str) -> Option<Arc<TableView>> {
        self.views.lock().unwrap_or_else(|p| p.into_inner()).get(metadata_location).cloned()
    }

    fn put_view(&self, metadata_location: &str, view: Arc<TableView>) {
        let mut map = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_VIEWS {
            map.clear();
        }
        map.insert(metadata_location.to_owned(), view);
    }
}

/// The catalog's namespaces and tables at one moment, each table with the location of its current
/// metadata file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// namespace → table → metadata location; namespaces without tables map to nothing.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

fn without_metadata(schema: &Schema) -> Schema {
    fn strip(field: &Field) -> Field {
        use arrow_schema::DataType;
        let data_type = match field.data_type() {
            DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| strip(f)).collect()),
            DataType::List(item) => DataType::List(Arc::new(strip(item))),
            DataType::LargeList(item) => DataType::LargeList(Arc::new(strip(item))),
            DataType::Map(entries, sorted) => DataType::Map(Arc::new(strip(entries)), *sorted),
            other => other.clone(),
        };
        Field::new(field.name(), data_type, field.is_nullable())
    }
    Schema::new(schema.fields().iter().map(|f| strip(f)).collect::<Vec<_>>())
}

impl Lake {
    /// The namespaces of the catalog, sorted.
    pub async fn namespaces(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> =
            self.catalog.list_namespaces(None).await?.into_iter().map(|ns| ns.to_url_string()).collect();
        names.sort();
        Ok(names)
    }

    /// The tables of `namespace`, sorted.
    pub async fn tables(&self, namespace: &str) -> Result<Vec<String>> {
        let ns = NamespaceIdent::new(namespace.to_owned());
        if !self.catalog.namespace_exists(&ns).await? {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = self.catalog.list_tables(&ns).await?.into_iter().map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    /// Every namespace and table of the catalog with where its metadata is: one read of the
    /// catalog (the same tables pyiceberg's SQL catalog keeps), on a connection kept open for it.
    pub async fn listing(&self) -> Result<Listing> {
        use sqlx::{Connection, Row};
        let failed = |e: sqlx::Error| Error::Other(format!("cannot list the catalog's tables: {e}"));
        let mut connection = self.listing_connection.lock().await;
        if connection.is_none() {
            let url = format!("sqlite:{}?mode=ro", self.dir().join("catalog.db").display());
            *connection = Some(sqlx::SqliteConnection::connect(&url).await.map_err(failed)?);
        }
        let Some(conn) = connection.as_mut() else { unreachable!("opened above") };
        let rows = sqlx::query(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables \
             WHERE catalog_name = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) \
             UNION ALL SELECT DISTINCT namespace, NULL, NULL FROM iceberg_namespace_properties WHERE catalog_name = ?",
        )
        .bind(crate::catalog::CATALOG_NAME)
        .bind(crate::catalog::CATALOG_NAME)
        .fetch_all(&mut *conn)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // A broken connection is opened again on the next call.
                *connection = None;
                return Err(failed(e));
            }
        };
        let mut listing = Listing::default();
        for row in rows {
            let namespace: String = row.try_get(0).map_err(failed)?;
            let tables = listing.namespaces.entry(namespace).or_default();
            let table: Option<String> = row.try_get(1).map_err(failed)?;
            let location: Option<String> = row.try_get(2).map_err(failed)?;
            if let (Some(table), Some(location)) = (table, location) {
                tables.insert(table, location);
            }
        }
        Ok(listing)
    }

    /// The snapshot of `namespace.name` whose metadata file is `metadata_location` (as a
    /// [`Listing`] gives it), from `cache` when that file was read before. `None` if the table
    /// is gone.
    pub async fn view_at(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
        cache: &MetadataCache,
    ) -> Result<Option<Arc<TableView>>> {
        if let Some(view) = cache.view(metadata_location) {
            return Ok(Some(view));
        }
        let Some(table) = self.existing(namespace, name).await? else { return Ok(None) };
        let view = Arc::new(view_of(namespace, name, &table, cache).await?);
        // Under the location actually read (newer than the listing's if a commit came between).
        if let Some(location) = table.metadata_location() {
            cache.put_view(location, view.clone());
        }
        Ok(Some(view))
    }

    /// The current snapshot of `namespace.name`, or `None` if there is no such table.
    pub async fn view(&self, namespace: &str, name: &str, cache: &MetadataCache) -> Result<Option<TableView>> {
        let Some(table) = self.existing(namespace, name).await? else { return Ok(None) };
        view_of(namespace, name, &table, cache).await.map(Some)
    }
}

/// The current snapshot of a loaded table.
pub(crate) async fn view_of(
    namespace: &str,
    name: &str,
    table: &iceberg::table::Table,
    cache: &MetadataCache,
) -> Result<TableView> {
    let metadata = table.metadata();
    let arrow = iceberg::arrow::schema_to_arrow_schema(metadata.current_schema())?;
    let mut view = TableView {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        schema: Arc::new(without_metadata(&arrow)),
        table_schema: from_iceberg_schema(metadata.current_schema()),
        snapshot_id: None,
        files: Vec::new(),
        checkpoint: checkpoint_of(metadata, &format!("{namespace}.{name}"))?,
        location: metadata.location().to_owned(),
        spec_partitioned: !metadata.default_partition_spec().is_unpartitioned(),
        identity_partitions: Vec::new(),
    };
    let spec = metadata.default_partition_spec();
    let schema = metadata.current_schema();
    // (position in the partition tuple, source type) of each identity field.
    let mut identity = Vec::new();
    for (i, field) in spec.fields().iter().enumerate() {
        if field.transform == Transform::Identity
            && let Some(source) = schema.field_by_id(field.source_id)
        {
            view.identity_partitions.push(source.name.clone());
            identity.push((i, source.field_type.as_ref().clone()));
        }
    }
    let Some(current) = metadata.current_snapshot() else { return Ok(view) };
    view.snapshot_id = Some(current.snapshot_id());
    let file_io = table.file_io();
    let list_bytes = file_io.new_input(current.manifest_list())?.read().await?;
    let list = ManifestList::parse_with_version(&list_bytes, metadata.format_version())?;
    for manifest_file in list.entries() {
        let files = match cache.get(&manifest_file.manifest_path) {
            Some(files) => files,
            None => {
                let manifest = manifest_file.load_manifest(file_io).await?;
                let mut files = Vec::new();
                for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                    if entry.content_type() != DataContentType::Data {
                        return Err(Error::Other(format!(
                            "table {namespace}.{name} has delete files, which Tarn cannot read yet"
                        )));
                    }
                    let file = entry.data_file();
                    files.push(LiveFile {
                        path: file.file_path().to_owned(),
                        size: file.file_size_in_bytes(),
                        rows: file.record_count(),
                        identity_values: if manifest_file.partition_spec_id == spec.spec_id() {
                            identity
                                .iter()
                                .map(|(i, ty)| {
                                    file.partition()
                                        .fields()
                                        .get(*i)
                                        .and_then(|v| v.as_ref())
                                        .map(|v| Transform::Identity.to_human_string(ty, Some(v)))
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                    });
                }
                let files = Arc::new(files);
                cache.put(&manifest_file.manifest_path, files.clone());
                files
            }
        };
        view.files.extend(files.iter().cloned());
    }
    Ok(view)
}
