//! Grouping by folder columns without grouping each row. `GROUP BY hour` over a lake table
//! groups on a value that is the same for every row of a file (its folder's), yet DataFusion's
//! partial aggregation looks each row's value up in its group map: a quarter of the per-hour
//! query's CPU. This physical rule turns a partial aggregation grouped only by folder columns,
//! directly over a table's Parquet scan, into one ungrouped partial aggregation per distinct
//! folder value (its files only), each given its folder values as constants: the same rows
//! reach the final aggregation, which groups the few partial rows as before.
//!
//! Ungrouped aggregation emits a row even for no input, where grouped aggregation emits none, so
//! the rule applies only when every folder value's files are known to hold rows and all of them
//! are read: the scan has no filter or limit, and the table recorded each file's row count
//! ([`KnownRows`], from the Iceberg manifests).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

/// A data file's row count as the table's metadata records it, carried on its
/// `PartitionedFile` (the Parquet reader ignores extensions it does not know).
#[derive(Debug, Clone, Copy)]
pub struct KnownRows(pub u64);

/// The rule (see the module's documentation).
#[derive(Debug, Default)]
pub struct FolderAggregates;

impl PhysicalOptimizerRule for FolderAggregates {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match per_folder(&node)? {
            Some(replaced) => Ok(Transformed::yes(replaced)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "tarn_folder_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` as one ungrouped partial aggregation per folder value, or `None` where the rule does
/// not apply.
fn per_folder(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(aggregate) = node.as_any().downcast_ref::<AggregateExec>() else { return Ok(None) };
    let group_by = aggregate.group_expr();
    if *aggregate.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || group_by.expr().is_empty()
        || aggregate.limit_options().is_some()
    {
        return Ok(None);
    }
    let Some(scan) = aggregate.input().as_any().downcast_ref::<DataSourceExec>() else { return Ok(None) };
    let Some(config) = scan.data_source().as_any().downcast_ref::<FileScanConfig>() else { return Ok(None) };
    if config.limit.is_some() || config.file_source().filter().is_some() {
        return Ok(None);
    }
    // Which folder column (by its place among the table's) each grouping column is.
    let scanned = scan.schema();
    let folder_columns = config.table_partition_cols();
    let mut folder_of_group = Vec::with_capacity(group_by.expr().len());
    for (expr, _) in group_by.expr() {
        let Some(column) = expr.as_any().downcast_ref::<Column>() else { return Ok(None) };
        let name = scanned.field(column.index()).name();
        let Some(k) = folder_columns.iter().position(|f| f.name() == name) else { return Ok(None) };
        if config.file_schema().field_with_name(name).is_ok() {
            return Ok(None);
        }
        folder_of_group.push(k);
    }
    // The files of each distinct folder value, in order of first appearance.
    let mut order: Vec<Vec<ScalarValue>> = Vec::new();
    let mut files: HashMap<Vec<ScalarValue>, Vec<PartitionedFile>> = HashMap::new();
    for file in config.file_groups.iter().flat_map(|g| g.iter()) {
        let key: Vec<ScalarValue> = folder_of_group.iter().map(|&k| file.partition_values[k].clone()).collect();
        if !files.contains_key(&key) {
            order.push(key.clone());
        }
        files.entry(key).or_default().push(file.clone());
    }
    let holds_rows = |group: &[PartitionedFile]| {
        group.iter().any(|f| {
            f.extensions.as_ref().and_then(|e| e.downcast_ref::<KnownRows>()).is_some_and(|KnownRows(n)| *n > 0)
        })
    };
    if order.len() < 2 || !files.values().all(|g| holds_rows(g)) {
        return Ok(None);
    }
    let grouped_schema = node.schema();
    let mut inputs = Vec::with_capacity(order.len());
    for key in order {
        let mut one = config.clone();
        one.file_groups = vec![FileGroup::new(files.remove(&key).expect("every key has files"))];
        let ungrouped = Arc::new(AggregateExec::try_new(
            AggregateMode::Partial,
            PhysicalGroupBy::new_single(Vec::new()),
            aggregate.aggr_expr().to_vec(),
            aggregate.filter_expr().to_vec(),
            DataSourceExec::from_data_source(one),
            aggregate.input_schema(),
        )?);
        // The grouped aggregation's columns: the folder values, then the aggregates' states.
        let states = ungrouped.schema();
        let mut columns: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::with_capacity(grouped_schema.fields().len());
        for (value, (_, name)) in key.into_iter().zip(group_by.expr()) {
            columns.push((Arc::new(Literal::new(value)), name.clone()));
        }
        for (i, state) in states.fields().iter().enumerate() {
            columns.push((Arc::new(Column::new(state.name(), i)), state.name().clone()));
        }
        inputs.push(Arc::new(ProjectionExec::try_new(columns, ungrouped)?) as Arc<dyn ExecutionPlan>);
    }
    Ok(Some(UnionExec::try_new(inputs)?))
}
