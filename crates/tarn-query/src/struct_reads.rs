//! Reading only the fields of a struct column that a query uses.
//!
//! DataFusion 53 reads a struct column whole even when a query names one of its fields
//! (`avg(status.fuel)` decodes every leaf of `status`). Two parts narrow the read:
//!
//! - [`NarrowStructReads`], a logical optimizer rule run last: where a lake table's struct column
//!   is only ever used through field access (`get_field`) anywhere in the plan, it records those
//!   field paths on the table's scan.
//! - [`StructLeavesReaderFactory`]: the scan's Parquet reader hands DataFusion the file's footer
//!   with the other leaves of those structs left out, so they are neither read nor decoded (and do
//!   not count as bytes scanned). DataFusion then sees files whose structs lack those fields and
//!   fills them with nulls, which nothing in the query looks at. Narrowed footers are kept across
//!   queries in [`NarrowedFooters`] (decoding and re-encoding the footer's Arrow schema for every
//!   file of every query was a few percent of a query's CPU).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Fields, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::{ARROW_SCHEMA_META_KEY, encode_arrow_schema, parquet_to_arrow_schema};
use datafusion::parquet::file::metadata::{
    FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataBuilder, RowGroupMetaData,
};
use datafusion::parquet::schema::types::{SchemaDescriptor, Type, TypePtr};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::table::LakeTable;

/// For each struct column to narrow, the field paths the query uses (each path keeps everything
/// below it).
pub type StructLeaves = BTreeMap<String, BTreeSet<Vec<String>>>;

/// The field names of `get_field(column, 'a', 'b', ...)` (nested calls flattened), with the column.
fn field_access(expr: &Expr) -> Option<(&str, Vec<String>)> {
    let Expr::ScalarFunction(ScalarFunction { func, args }) = expr else { return None };
    if func.name() != "get_field" || args.len() < 2 {
        return None;
    }
    let mut names = Vec::with_capacity(args.len() - 1);
    for arg in &args[1..] {
        match arg {
            Expr::Literal(
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)),
                _,
            ) => names.push(s.clone()),
            _ => return None,
        }
    }
    match &args[0] {
        Expr::Column(c) => Some((c.name.as_str(), names)),
        inner => {
            let (column, mut path) = field_access(inner)?;
            path.extend(names);
            Some((column, path))
        }
    }
}

/// How a plan uses columns, by name: whole (`full`) or only through field paths (`paths`).
#[derive(Default)]
struct Uses {
    full: HashSet<String>,
    paths: StructLeaves,
}

impl Uses {
    fn expression(&mut self, expr: &Expr) {
        // The visit cannot fail.
        let _ = expr.apply(|e| {
            if let Some((column, path)) = field_access(e) {
                self.paths.entry(column.to_owned()).or_default().insert(path);
                return Ok(TreeNodeRecursion::Jump);
            }
            match e {
                Expr::Column(c) | Expr::OuterReferenceColumn(_, c) => {
                    self.full.insert(c.name.clone());
                }
                // What a subquery returns is used whole by the expression around it.
                Expr::ScalarSubquery(s) | Expr::Exists(datafusion::logical_expr::expr::Exists { subquery: s, .. }) => {
                    self.outputs(&s.subquery)
                }
                Expr::InSubquery(i) => self.outputs(&i.subquery.subquery),
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }

    /// The columns `plan` returns leave the plan whole.
    fn outputs(&mut self, plan: &LogicalPlan) {
        self.full.extend(plan.schema().fields().iter().map(|f| f.name().clone()));
    }
}

/// Whether columns only pass through `plan` by name or are read by its expressions (so the walk
/// over expressions sees every use). Other nodes (a union matches columns by position, an unnest
/// or an extension uses columns in ways not written as expressions) stop the rule.
fn follows_names(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::TableScan(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::Repartition(_)
    )
}

/// The optimizer rule (see the module's documentation). Runs last; applies to the whole plan.
#[derive(Debug, Default)]
pub struct NarrowStructReads;

impl OptimizerRule for NarrowStructReads {
    fn name(&self) -> &str {
        "tarn_narrow_struct_reads"
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let mut uses = Uses::default();
        let mut supported = true;
        uses.outputs(&plan);
        plan.apply_with_subqueries(|node| {
            if !follows_names(node) {
                supported = false;
                return Ok(TreeNodeRecursion::Stop);
            }
            if let LogicalPlan::Subquery(s) = node {
                uses.outputs(&s.subquery);
            }
            node.apply_expressions(|e| {
                uses.expression(e);
                Ok(TreeNodeRecursion::Continue)
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        if !supported {
            return Ok(Transformed::no(plan));
        }
        let narrowed: StructLeaves = uses.paths.into_iter().filter(|(column, _)| !uses.full.contains(column)).collect();
        if narrowed.is_empty() {
            return Ok(Transformed::no(plan));
        }
        plan.transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(mut scan) = node else { return Ok(Transformed::no(node)) };
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.as_any().downcast_ref::<LakeTable>() else {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            };
            match table.with_struct_leaves(&narrowed) {
                Some(table) => {
                    scan.source = provider_as_source(Arc::new(table));
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
            }
        })
    }
}

/// `metadata` with the leaves of `leaves`' struct columns that no path reaches left out; `None`
/// when nothing is left out. A struct none of whose leaves a path reaches (a field the file does
/// not have) stays whole. The Arrow schema stored in the footer is narrowed the same way, so the
/// reader keeps the types it gives the remaining fields.
pub fn narrow_metadata(metadata: &ParquetMetaData, leaves: &StructLeaves) -> Result<Option<ParquetMetaData>> {
    let file = metadata.file_metadata();
    let descr = file.schema_descr();
    let wanted = |parts: &[String]| -> bool {
        match leaves.get(&parts[0]) {
            None => true,
            Some(paths) => paths.iter().any(|p| parts.len() > p.len() && parts[1..=p.len()] == p[..]),
        }
    };
    let mut keep: Vec<bool> = descr.columns().iter().map(|c| wanted(c.path().parts())).collect();
    // A struct with no leaf left keeps them all.
    for root in leaves.keys() {
        let of_root: Vec<usize> =
            (0..descr.num_columns()).filter(|&i| descr.column(i).path().parts()[0] == *root).collect();
        if of_root.iter().all(|&i| !keep[i]) {
            of_root.iter().for_each(|&i| keep[i] = true);
        }
    }
    if keep.iter().all(|k| *k) {
        return Ok(None);
    }
    let mut next_leaf = 0;
    let root = prune_type(&descr.root_schema_ptr(), &keep, &mut next_leaf)
        .ok_or_else(|| DataFusionError::Internal("a file schema with no column left".into()))?;
    let arrow_hint = match file.key_value_metadata() {
        Some(kv) if kv.iter().any(|kv| kv.key == ARROW_SCHEMA_META_KEY) => {
            let full = parquet_to_arrow_schema(descr, file.key_value_metadata())?;
            Some(encode_arrow_schema(&prune_arrow_schema(&full, &root)))
        }
        _ => None,
    };
    let narrowed = Arc::new(SchemaDescriptor::new(root));
    let kept: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    let key_values = file.key_value_metadata().map(|kv| {
        kv.iter()
            .map(|kv| match (&arrow_hint, kv.key == ARROW_SCHEMA_META_KEY) {
                (Some(hint), true) => KeyValue::new(kv.key.clone(), hint.clone()),
                _ => kv.clone(),
            })
            .collect::<Vec<_>>()
    });
    let orders = file.column_orders().map(|o| kept.iter().map(|&i| o[i]).collect());
    let file_metadata = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_owned),
        key_values,
        narrowed.clone(),
        orders,
    );
    let mut row_groups = Vec::with_capacity(metadata.num_row_groups());
    for rg in metadata.row_groups() {
        let mut builder = RowGroupMetaData::builder(narrowed.clone())
            .set_num_rows(rg.num_rows())
            .set_total_byte_size(rg.total_byte_size())
            .set_column_metadata(kept.iter().map(|&i| rg.column(i).clone()).collect());
        if let Some(ordinal) = rg.ordinal() {
            builder = builder.set_ordinal(ordinal);
        }
        if let Some(offset) = rg.file_offset() {
            builder = builder.set_file_offset(offset);
        }
        row_groups.push(builder.build()?);
    }
    fn pick<T: Clone>(per_column: &[T], kept: &[usize]) -> Vec<T> {
        kept.iter().map(|&i| per_column[i].clone()).collect()
    }
    let builder = ParquetMetaDataBuilder::new(file_metadata)
        .set_row_groups(row_groups)
        .set_column_index(metadata.column_index().map(|ci| ci.iter().map(|rg| pick(rg, &kept)).collect()))
        .set_offset_index(metadata.offset_index().map(|oi| oi.iter().map(|rg| pick(rg, &kept)).collect()));
    Ok(Some(builder.build()))
}

/// `node` with only the leaves `keep` marks (leaves numbered depth first from `next_leaf`);
/// `None` when none is left.
fn prune_type(node: &TypePtr, keep: &[bool], next_leaf: &mut usize) -> Option<TypePtr> {
    if !node.is_group() {
        let i = *next_leaf;
        *next_leaf += 1;
        return keep[i].then(|| node.clone());
    }
    let children = node.get_fields();
    let fields: Vec<TypePtr> = children.iter().filter_map(|f| prune_type(f, keep, next_leaf)).collect();
    if fields.is_empty() {
        return None;
    }
    let unchanged = fields.len() == children.len() && fields.iter().zip(children).all(|(a, b)| Arc::ptr_eq(a, b));
    if unchanged {
        return Some(node.clone());
    }
    let info = node.get_basic_info();
    let mut builder = Type::group_type_builder(info.name())
        .with_converted_type(info.converted_type())
        .with_logical_type(info.logical_type_ref().cloned())
        .with_id(info.has_id().then(|| info.id()))
        .with_fields(fields);
    if info.has_repetition() {
        builder = builder.with_repetition(info.repetition());
    }
    // Rebuilding a group that was valid with fewer children cannot fail.
    Some(Arc::new(builder.build().ok()?))
}

/// `schema` (the Arrow schema of a whole file) with only the struct fields `root` (the file's
/// narrowed Parquet schema) still has. Pruning only ever removes fields of structs, whose
/// Parquet groups have the same field names.
fn prune_arrow_schema(schema: &Schema, root: &TypePtr) -> Schema {
    fn prune(fields: &Fields, group: &TypePtr) -> Fields {
        let children = group.get_fields();
        fields
            .iter()
            .filter_map(|field| {
                let child = children.iter().find(|c| c.name() == field.name())?;
                match field.data_type() {
                    DataType::Struct(inner) if child.is_group() => {
                        let inner = prune(inner, child);
                        Some(Arc::new(field.as_ref().clone().with_data_type(DataType::Struct(inner))))
                    }
                    _ => Some(field.clone()),
                }
            })
            .collect()
    }
    Schema::new_with_metadata(prune(schema.fields(), root), schema.metadata().clone())
}

/// Most narrowed footers [`NarrowedFooters`] keeps; when full it starts over.
const NARROWED_FOOTERS_KEPT: usize = 4096;

/// Footers already narrowed, by file and struct leaves, shared by all queries (an engine's session
/// template carries it as a config extension). Files never change once written, and each entry
/// keeps the footer it was narrowed from: it is used only while the metadata cache still hands out
/// that same footer.
#[derive(Debug, Default)]
pub struct NarrowedFooters {
    entries: Mutex<HashMap<(String, Arc<StructLeaves>), NarrowedFooter>>,
}

#[derive(Debug)]
struct NarrowedFooter {
    from: Arc<ParquetMetaData>,
    /// `None`: narrowing leaves this file's footer as it is.
    narrowed: Option<Arc<ParquetMetaData>>,
}

impl NarrowedFooters {
    /// `metadata` of the file at `location` narrowed to `leaves`, from the cache when it holds it.
    fn narrow(
        &self,
        location: &str,
        leaves: &Arc<StructLeaves>,
        metadata: Arc<ParquetMetaData>,
    ) -> Result<Arc<ParquetMetaData>> {
        let key = (location.to_owned(), leaves.clone());
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = entries.get(&key).filter(|e| Arc::ptr_eq(&e.from, &metadata)) {
                return Ok(entry.narrowed.clone().unwrap_or(metadata));
            }
        }
        let narrowed = narrow_metadata(&metadata, leaves)?.map(Arc::new);
        let answer = narrowed.clone().unwrap_or_else(|| metadata.clone());
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= NARROWED_FOOTERS_KEPT {
            entries.clear();
        }
        entries.insert(key, NarrowedFooter { from: metadata, narrowed });
        Ok(answer)
    }
}

/// Opens a table's files through `inner`, their footers narrowed to `leaves` (through `footers`
/// when the session has that cache).
#[derive(Debug)]
pub struct StructLeavesReaderFactory {
    pub inner: Arc<dyn ParquetFileReaderFactory>,
    pub leaves: Arc<StructLeaves>,
    pub footers: Option<Arc<NarrowedFooters>>,
}

impl ParquetFileReaderFactory for StructLeavesReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let location = file.object_meta.location.to_string();
        let inner = self.inner.create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(StructLeavesReader { inner, location, leaves: self.leaves.clone(), footers: self.footers.clone() }))
    }
}

struct StructLeavesReader {
    inner: Box<dyn AsyncFileReader + Send>,
    location: String,
    leaves: Arc<StructLeaves>,
    footers: Option<Arc<NarrowedFooters>>,
}

impl AsyncFileReader for StructLeavesReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = self.inner.get_metadata(options).await?;
            let narrowed = match &self.footers {
                Some(footers) => footers.narrow(&self.location, &self.leaves, metadata),
                None => narrow_metadata(&metadata, &self.leaves).map(|n| n.map(Arc::new).unwrap_or(metadata)),
            };
            narrowed.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, StructArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::metadata::ParquetMetaDataReader;

    /// The footer of a one-row file with `status: {engine: utf8, fuel: f64}`.
    fn footer() -> Arc<ParquetMetaData> {
        let status = StructArray::from(vec![
            (Arc::new(Field::new("engine", DataType::Utf8, true)), Arc::new(StringArray::from(vec!["on"])) as ArrayRef),
            (
                Arc::new(Field::new("fuel", DataType::Float64, true)),
                Arc::new(Float64Array::from(vec![1.5])) as ArrayRef,
            ),
        ]);
        let batch = RecordBatch::try_from_iter([("status", Arc::new(status) as ArrayRef)]).unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        Arc::new(ParquetMetaDataReader::new().parse_and_finish(&Bytes::from(bytes)).unwrap())
    }

    fn leaves(field: &str) -> Arc<StructLeaves> {
        Arc::new(StructLeaves::from([("status".to_owned(), BTreeSet::from([vec![field.to_owned()]]))]))
    }

    fn leaf_names(metadata: &ParquetMetaData) -> Vec<String> {
        metadata.file_metadata().schema_descr().columns().iter().map(|c| c.path().string()).collect()
    }

    #[test]
    fn narrowed_footers_are_kept_per_file_and_fields_and_only_for_the_footer_they_came_from() {
        let footers = NarrowedFooters::default();
        let file = footer();
        let fuel = footers.narrow("a.parquet", &leaves("fuel"), file.clone()).unwrap();
        assert_eq!(leaf_names(&fuel), ["status.fuel"]);
        // The same file and fields: the same narrowed footer, not a new one.
        let again = footers.narrow("a.parquet", &leaves("fuel"), file.clone()).unwrap();
        assert!(Arc::ptr_eq(&fuel, &again));
        // Other fields of the same file are narrowed on their own.
        let engine = footers.narrow("a.parquet", &leaves("engine"), file.clone()).unwrap();
        assert_eq!(leaf_names(&engine), ["status.engine"]);
        // A footer the metadata cache loaded anew (the old one evicted) is narrowed anew.
        let reloaded = footers.narrow("a.parquet", &leaves("fuel"), footer()).unwrap();
        assert!(!Arc::ptr_eq(&fuel, &reloaded));
        assert_eq!(leaf_names(&reloaded), ["status.fuel"]);
        // A field the file lacks keeps the struct whole, and that answer is the footer itself.
        let whole = footers.narrow("a.parquet", &leaves("doors"), file.clone()).unwrap();
        assert!(Arc::ptr_eq(&whole, &file));
    }
}
