//! One lake table as DataFusion scans it: the Parquet files of one snapshot, plus the rows
//! acknowledged on the segment's stream after that snapshot's checkpoint (the tail), which are
//! not in any file yet. Hive folder keys are columns; filters on them drop files before any is
//! opened, and DataFusion prunes row groups and pages of the rest by their statistics.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, StringViewArray, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Result, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::union::UnionExec;
use futures_util::StreamExt;
use tarn_crawl::FileFormat;
use tarn_lake::TableView;

use crate::folder_aggregates::KnownRows;
use crate::scan_store::{LAKE_URL, ScanStore};
use crate::struct_reads::{NarrowedFooters, StructLeaves, StructLeavesReaderFactory};
use tarn_lake::hive::{self, below_data};

/// Rows of a segment not yet in the table, in the table's data columns, with the folder their
/// flush will write them to (which gives their partition values).
#[derive(Debug, Clone)]
pub struct TailBatch {
    pub folder: String,
    pub batch: RecordBatch,
}

/// What the scans of one query did, summed over its tables.
#[derive(Debug, Default)]
pub struct ScanCounters {
    pub files_planned: AtomicU64,
    pub files_pruned: AtomicU64,
    pub tail_rows: AtomicU64,
}

/// A data file, by store key, with its partition values.
#[derive(Debug, Clone)]
struct File {
    key: String,
    size: u64,
    /// From the table's metadata (Iceberg manifests record it); unknown for crawled files.
    rows: Option<u64>,
    /// Values of the Hive folder columns.
    partition: Vec<Option<String>>,
    /// Values of the identity partition columns (as text), empty if unknown.
    identity: Vec<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct LakeTable {
    /// Data columns, then partition columns.
    schema: SchemaRef,
    data_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// Data columns an Iceberg identity partition gives each file one known value of.
    identity_fields: Vec<FieldRef>,
    files: Vec<File>,
    tail: Vec<RecordBatch>,
    counters: Arc<ScanCounters>,
    /// The query's reader of the lake (counting the bytes it returns).
    store: Arc<ScanStore>,
    /// For a crawled table of JSON or CSV files: their format.
    text: Option<FileFormat>,
    /// Struct columns of which the query reads only these fields (see `struct_reads`).
    struct_leaves: Option<Arc<StructLeaves>>,
}

/// Everything of `path` after the table's `data/` folder.
impl LakeTable {
    /// The table of `view`, its files read through `store`, with `tail` after its checkpoint.
    pub fn new(
        view: &TableView,
        store: &Arc<ScanStore>,
        lake: &tarn_store::Store,
        tail: Vec<TailBatch>,
        counters: Arc<ScanCounters>,
    ) -> Result<LakeTable> {
        let data_schema = Arc::new(with_view_types(&view.schema));
        let data_names: Vec<&str> = data_schema.fields().iter().map(|f| f.name().as_str()).collect();
        // A file's path below the table: below `data/` for Iceberg tables, below the crawled
        // folder for crawled ones.
        let location = view.location.trim_end_matches('/');
        let relative = |path: &str| -> String {
            match path.strip_prefix(location).filter(|r| r.starts_with('/')) {
                Some(r) => {
                    r.trim_start_matches('/').strip_prefix("data/").unwrap_or(r.trim_start_matches('/')).to_owned()
                }
                None => below_data(path).to_owned(),
            }
        };
        let folders = view
            .files
            .iter()
            .map(|f| relative(&f.path))
            .chain(tail.iter().map(|t| format!("{}/", t.folder.trim_end_matches('/'))));
        let folders: Vec<String> = folders.collect();
        // A table with an Iceberg partition spec has its partitions there; its folders are the
        // spec's paths, not columns of their own.
        let partition_cols = if view.spec_partitioned {
            Vec::new()
        } else {
            hive::partition_columns(folders.iter().map(String::as_str), &data_names)
        };
        let identity_fields: Vec<FieldRef> = view
            .identity_partitions
            .iter()
            .filter_map(|c| data_schema.field_with_name(c).ok())
            .filter(|f| f.data_type().is_primitive() || matches!(f.data_type(), DataType::Utf8View | DataType::Boolean))
            .map(|f| Arc::new(f.clone()))
            .collect();
        let partition_fields: Vec<FieldRef> =
            partition_cols.iter().map(|c| Arc::new(Field::new(c, DataType::Utf8View, true))).collect();
        let mut fields: Vec<FieldRef> = data_schema.fields().iter().cloned().collect();
        fields.extend(partition_fields.iter().cloned());
        let schema = Arc::new(Schema::new(fields));

        let mut files = Vec::with_capacity(view.files.len());
        for f in &view.files {
            let key = lake.key_of(&f.path).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "table {}.{}: data file {} is outside the lake's storage {}",
                    view.namespace,
                    view.name,
                    f.path,
                    lake.url("")
                ))
            })?;
            store.know_size(key, f.size);
            let partition = hive::partition_values(&relative(&f.path), &partition_cols);
            let identity = identity_fields
                .iter()
                .map(|field| {
                    let i = view.identity_partitions.iter().position(|c| c == field.name())?;
                    f.identity_values.get(i).cloned()
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default();
            // Only an Iceberg snapshot's manifests count rows; a crawled file's count is unknown.
            let rows = view.snapshot_id.map(|_| f.rows);
            files.push(File { key: key.to_owned(), size: f.size, rows, partition, identity });
        }
        let tail = tail
            .into_iter()
            .map(|t| with_partition_columns(&t, &partition_cols, &schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(LakeTable {
            schema,
            data_schema,
            partition_fields,
            identity_fields,
            files,
            tail,
            counters,
            store: store.clone(),
            text: None,
            struct_leaves: None,
        })
    }

    /// The table's files are JSON lines or CSV (a crawled table).
    pub fn with_text_files(mut self, format: FileFormat) -> LakeTable {
        self.text = Some(format);
        self
    }

    /// This table with its Parquet files read only for `leaves`' fields of its struct columns
    /// (see `struct_reads`); `None` when that changes nothing. A column is left whole where a
    /// path names no field of it, or where a field left out could not be filled with nulls (it is
    /// not nullable).
    pub(crate) fn with_struct_leaves(&self, leaves: &StructLeaves) -> Option<LakeTable> {
        if self.text.is_some() || self.files.is_empty() {
            return None;
        }
        let mut mine = StructLeaves::new();
        for (column, paths) in leaves {
            let Ok(field) = self.data_schema.field_with_name(column) else { continue };
            let DataType::Struct(fields) = field.data_type() else { continue };
            let Some(paths) = paths.iter().map(|p| struct_path(fields, p)).collect::<Option<BTreeSet<_>>>() else {
                continue;
            };
            if !paths.is_empty() && omitted_are_nullable(fields, &paths, &mut Vec::new()) {
                mine.insert(column.clone(), paths);
            }
        }
        if mine.is_empty() || self.struct_leaves.as_deref() == Some(&mine) {
            return None;
        }
        Some(LakeTable { struct_leaves: Some(Arc::new(mine)), ..self.clone() })
    }

    /// This table as a kept plan holds it (`plan_cache`): what planning depended on (columns,
    /// partition columns, file format, the struct fields the plan narrowed to), without the
    /// snapshot's files and tail, which the next run of the plan takes from its own load.
    pub(crate) fn planning_shape(&self) -> LakeTable {
        LakeTable { files: Vec::new(), tail: Vec::new(), ..self.clone() }
    }

    /// `fresh` (this query's load of the table) in the place of this planned table, narrowed to
    /// the same struct fields; `None` when the table changed in a way planning depended on (a
    /// column added or retyped, another partitioning, another file format).
    pub(crate) fn replanned_as(&self, fresh: &LakeTable) -> Option<LakeTable> {
        let same = self.schema == fresh.schema
            && self.partition_fields == fresh.partition_fields
            && self.identity_fields == fresh.identity_fields
            && self.text == fresh.text;
        same.then(|| LakeTable { struct_leaves: self.struct_leaves.clone(), ..fresh.clone() })
    }

    /// The bytes a scan with `filters` will read at most: its files left after partition
    /// pruning, and the tail in memory.
    pub(crate) fn planned_bytes(&self, state: &dyn Session, filters: &[Expr]) -> Result<u64> {
        let files: u64 = self.prune(state, filters)?.iter().map(|f| f.size).sum();
        let tail: usize = self.tail.iter().map(RecordBatch::get_array_memory_size).sum();
        Ok(files + tail as u64)
    }

    /// What the metadata tells about a scan of `files` before any is opened: their rows (exact
    /// when every file's count is known, which lets `count(*)` be answered from the manifests)
    /// and bytes.
    fn statistics(&self, files: &[File]) -> Statistics {
        let mut statistics = Statistics::new_unknown(&self.schema);
        let rows: Option<u64> = files.iter().map(|f| f.rows).sum();
        if let Some(rows) = rows.and_then(|r| usize::try_from(r).ok()) {
            statistics.num_rows = Precision::Exact(rows);
        }
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        statistics.total_byte_size = Precision::Inexact(usize::try_from(bytes).unwrap_or(usize::MAX));
        statistics
    }

    /// The files whose partition values pass every filter that only names partition columns
    /// (Hive folder columns, and identity-partitioned data columns where every file's value is
    /// known).
    fn prune(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<File>> {
        let identity_known = !self.identity_fields.is_empty() && self.files.iter().all(|f| !f.identity.is_empty());
        let mut fields: Vec<FieldRef> = self.partition_fields.clone();
        if identity_known {
            fields.extend(self.identity_fields.iter().cloned());
        }
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        let applicable: Vec<&Expr> = filters
            .iter()
            .filter(|e| {
                let refs = e.column_refs();
                !refs.is_empty() && refs.iter().all(|c| names.contains(&c.name.as_str()))
            })
            .collect();
        if applicable.is_empty() || self.files.is_empty() {
            return Ok(self.files.clone());
        }
        let mut columns: Vec<ArrayRef> = (0..self.partition_fields.len())
            .map(|i| {
                Arc::new(self.files.iter().map(|f| f.partition[i].clone()).collect::<StringViewArray>()) as ArrayRef
            })
            .collect();
        if identity_known {
            for (i, field) in self.identity_fields.iter().enumerate() {
                let text: ArrayRef =
                    Arc::new(self.files.iter().map(|f| f.identity[i].clone()).collect::<StringArray>());
                match datafusion::arrow::compute::cast(&text, field.data_type()) {
                    Ok(values) => columns.push(values),
                    // A value that does not read back as its column's type: no pruning.
                    Err(_) => return Ok(self.files.clone()),
                }
            }
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let mut keep = vec![true; self.files.len()];
        for filter in applicable {
            let predicate = state.create_physical_expr(filter.clone(), &df_schema)?;
            let result = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
            let result = result.as_boolean();
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= result.is_valid(i) && result.value(i);
            }
        }
        Ok(self.files.iter().zip(keep).filter(|(_, k)| *k).map(|(f, _)| f.clone()).collect())
    }
}

/// `path` cut after its first field that is not a struct (a map or a list is read whole below
/// it); `None` when a name is not a field.
fn struct_path(fields: &Fields, path: &[String]) -> Option<Vec<String>> {
    let mut cut = Vec::with_capacity(path.len());
    let mut fields = fields;
    for name in path {
        let field = fields.iter().find(|f| f.name() == name)?;
        cut.push(name.clone());
        match field.data_type() {
            DataType::Struct(inner) => fields = inner,
            _ => break,
        }
    }
    Some(cut)
}

/// Whether every field below `prefix` that none of `paths` reaches is nullable.
fn omitted_are_nullable(fields: &Fields, paths: &BTreeSet<Vec<String>>, prefix: &mut Vec<String>) -> bool {
    fields.iter().all(|field| {
        prefix.push(field.name().clone());
        let whole = paths.iter().any(|p| prefix.starts_with(p));
        let below = paths.iter().any(|p| p.len() > prefix.len() && p.starts_with(prefix));
        let ok = match field.data_type() {
            _ if whole => true,
            DataType::Struct(inner) if below => omitted_are_nullable(inner, paths, prefix),
            _ => field.is_nullable(),
        };
        prefix.pop();
        ok
    })
}

/// `schema` with top-level strings and binaries as view types, as DataFusion's Parquet reader
/// produces them. Fields inside structs stay as they are: the reader decodes those as written, and
/// asking for views there would cast every struct of every batch.
fn with_view_types(schema: &Schema) -> Schema {
    let view = |data_type: &DataType| match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        other => other.clone(),
    };
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_data_type(view(f.data_type()))))
            .collect::<Vec<_>>(),
    )
}

/// `batch` (data columns) with the partition values of its folder appended as constant columns.
fn with_partition_columns(tail: &TailBatch, partition_cols: &[String], schema: &SchemaRef) -> Result<RecordBatch> {
    let rows = tail.batch.num_rows();
    let values = hive::partition_values(&format!("{}/", tail.folder.trim_end_matches('/')), partition_cols);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields().iter().take(schema.fields().len() - partition_cols.len()) {
        let column = match tail.batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => c.clone(),
            Some(c) => datafusion::arrow::compute::cast(c, field.data_type())?,
            None => new_null_array(field.data_type(), rows),
        };
        columns.push(column);
    }
    for value in values {
        columns.push(ScalarValue::Utf8View(value).to_array_of_size(rows)?);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// JSON or CSV files of a crawled table, read one after the other into the table's schema.
#[derive(Debug)]
struct TextFiles {
    files: Vec<File>,
    format: FileFormat,
    store: Arc<ScanStore>,
    /// Data columns, then partition columns.
    schema: SchemaRef,
    data_schema: SchemaRef,
    batch_rows: usize,
}

impl TextFiles {
    async fn read(
        store: Arc<ScanStore>,
        format: FileFormat,
        file: File,
        schema: SchemaRef,
        data_schema: SchemaRef,
        batch_rows: usize,
    ) -> Result<Vec<RecordBatch>> {
        use object_store::ObjectStoreExt;
        let external = |e: String| datafusion::error::DataFusionError::Execution(format!("{}: {e}", file.key));
        let path = object_store::path::Path::from(file.key.as_str());
        let bytes = store.get(&path).await?.bytes().await?;
        let bytes = tarn_crawl::gunzip_if(&file.key, bytes).map_err(external)?;
        // Decoded in the files' own types, then cast to the scan's (strings as views).
        let plain = Schema::new(
            data_schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), plain_type(f.data_type()), true))
                .collect::<Vec<_>>(),
        );
        let batches = tarn_crawl::decode(format, &plain, &bytes, batch_rows).map_err(external)?;
        batches
            .into_iter()
            .map(|b| {
                let rows = b.num_rows();
                let mut columns = Vec::with_capacity(schema.fields().len());
                for (i, field) in data_schema.fields().iter().enumerate() {
                    columns.push(datafusion::arrow::compute::cast(b.column(i), field.data_type())?);
                }
                for value in &file.partition {
                    columns.push(ScalarValue::Utf8View(value.clone()).to_array_of_size(rows)?);
                }
                Ok(RecordBatch::try_new(schema.clone(), columns)?)
            })
            .collect()
    }
}

/// The type before [`with_view_types`].
fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Struct(fields) => DataType::Struct(
            fields.iter().map(|f| Arc::new(f.as_ref().clone().with_data_type(plain_type(f.data_type())))).collect(),
        ),
        other => other.clone(),
    }
}

impl PartitionStream for TextFiles {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (store, format, schema, data_schema, rows) =
            (self.store.clone(), self.format, self.schema.clone(), self.data_schema.clone(), self.batch_rows);
        let batches = futures_util::stream::iter(self.files.clone())
            .then(move |file| TextFiles::read(store.clone(), format, file, schema.clone(), data_schema.clone(), rows))
            .flat_map(|result| {
                futures_util::stream::iter(match result {
                    Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// `files` in `n` groups of about equal bytes (largest first into the lightest group).
fn balance(mut files: Vec<File>, n: usize) -> Vec<Vec<File>> {
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.key.cmp(&b.key)));
    let mut groups: Vec<(u64, Vec<File>)> = (0..n.max(1)).map(|_| (0, Vec::new())).collect();
    for f in files {
        let lightest = groups.iter_mut().min_by_key(|(bytes, _)| *bytes).expect("at least one group");
        lightest.0 += f.size;
        lightest.1.push(f);
    }
    groups.into_iter().map(|(_, g)| g).filter(|g| !g.is_empty()).collect()
}

#[async_trait]
impl TableProvider for LakeTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Partition filters drop files here; the rest go on to the Parquet scan's row group and
        // page pruning. A filter above the scan still checks every row (the tail included).
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.prune(state, filters)?;
        self.counters.files_planned.fetch_add(files.len() as u64, Ordering::Relaxed);
        self.counters.files_pruned.fetch_add((self.files.len() - files.len()) as u64, Ordering::Relaxed);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if let Some(format) = self.text
            && !files.is_empty()
        {
            let partitions = balance(files, state.config().target_partitions())
                .into_iter()
                .map(|group| {
                    Arc::new(TextFiles {
                        files: group,
                        format,
                        store: self.store.clone(),
                        schema: self.schema.clone(),
                        data_schema: self.data_schema.clone(),
                        batch_rows: state.config().batch_size(),
                    }) as Arc<dyn PartitionStream>
                })
                .collect();
            let exec = StreamingTableExec::try_new(self.schema.clone(), partitions, projection, [], false, limit)?;
            inputs.push(Arc::new(exec));
        } else if !files.is_empty() {
            let statistics = self.statistics(&files);
            let groups = balance(files, state.config().target_partitions())
                .into_iter()
                .map(|g| {
                    FileGroup::new(
                        g.into_iter()
                            .map(|f| {
                                let file = PartitionedFile::new(f.key, f.size).with_partition_values(
                                    f.partition.into_iter().map(ScalarValue::Utf8View).collect(),
                                );
                                match f.rows {
                                    Some(rows) => file.with_extensions(Arc::new(KnownRows(rows))),
                                    None => file,
                                }
                            })
                            .collect(),
                    )
                })
                .collect();
            let table_schema = TableSchema::new(self.data_schema.clone(), self.partition_fields.clone());
            // Footers and page indexes are cached across queries (files never change once written).
            let url = ObjectStoreUrl::parse(LAKE_URL)?;
            let reader = CachedParquetFileReaderFactory::new(
                self.store.clone(),
                state.runtime_env().cache_manager.get_file_metadata_cache(),
            );
            let reader: Arc<dyn ParquetFileReaderFactory> = match &self.struct_leaves {
                Some(leaves) => Arc::new(StructLeavesReaderFactory {
                    inner: Arc::new(reader),
                    leaves: leaves.clone(),
                    footers: state.config().get_extension::<NarrowedFooters>(),
                }),
                None => Arc::new(reader),
            };
            let source = ParquetSource::new(table_schema)
                .with_table_parquet_options(state.table_options().parquet.clone())
                .with_parquet_file_reader_factory(reader);
            let config = FileScanConfigBuilder::new(url, Arc::new(source))
                .with_statistics(statistics)
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        if !self.tail.is_empty() {
            let rows: usize = self.tail.iter().map(RecordBatch::num_rows).sum();
            self.counters.tail_rows.fetch_add(rows as u64, Ordering::Relaxed);
            inputs.push(MemorySourceConfig::try_new_exec(
                std::slice::from_ref(&self.tail),
                self.schema.clone(),
                projection.cloned(),
            )?);
        }
        if inputs.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(inputs)
    }
}
