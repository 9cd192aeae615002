//! Stopping a query stops its work.
//!
//! A query is cancelled by dropping its tasks, which only takes effect where a task yields to the
//! runtime. DataFusion's scans yield every so many batches, but a join can turn one input batch
//! into endless output batches (a cross join of a few small tables yields billions of rows), and
//! the operators above it keep polling without ever yielding: a stopped Athena query, or one whose
//! client went away, would keep both cores busy to the end. [`JoinsYield`] wraps the output of
//! every join in DataFusion's cooperative stream, which spends the task's budget per batch and
//! yields when it is used up.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PiecewiseMergeJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};

/// The physical optimizer rule (see the module's documentation); runs after DataFusion's own.
#[derive(Debug, Default)]
pub struct JoinsYield;

/// Whether `plan` can give many output batches for one input batch.
fn multiplies_batches(plan: &dyn ExecutionPlan) -> bool {
    let any = plan.as_any();
    any.is::<NestedLoopJoinExec>()
        || any.is::<CrossJoinExec>()
        || any.is::<HashJoinExec>()
        || any.is::<SortMergeJoinExec>()
        || any.is::<SymmetricHashJoinExec>()
        || any.is::<PiecewiseMergeJoinExec>()
}

impl PhysicalOptimizerRule for JoinsYield {
    fn name(&self) -> &str {
        "tarn_joins_yield"
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if multiplies_batches(node.as_ref()) {
                Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
