//! Optimized logical plans kept per statement. Dashboards and Athena clients send the same SQL
//! again and again; parsing it, planning it and running DataFusion's logical optimizer took
//! 0.3-1.4 ms of server time per query, more than scanning one hour of a table. A kept plan is
//! reused with each query's own load of its tables (this query's snapshot, tail and byte
//! counters), so it never reads stale data: only how the statement was planned is kept.
//!
//! A plan is kept only when running it again must give what planning it again would:
//! - every table it reads is a lake table, and on reuse each still has the columns, partition
//!   columns and file format it was planned with (otherwise the statement is planned again);
//! - every function it calls is immutable: the optimizer folds `now()` and `current_date` into
//!   constants and `random()` must not be;
//! - it is a query, not EXPLAIN or DESCRIBE (whose output shows the plan or catalog).
//!
//! The key is the statement's text and its default schema (unqualified names resolve there).
//! Physical planning (partition pruning, statistics, file groups) stays per query.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::prelude::SessionContext;

use crate::table::LakeTable;

/// Longest statement kept (longer ones are planned every time: they are rarely repeated, and the
/// key holds the whole text).
const MAX_KEPT_SQL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    default_schema: String,
    sql: String,
}

/// A statement's optimized plan, its tables reduced to their planning shape.
struct KeptPlan {
    plan: LogicalPlan,
    /// The answer's columns.
    schema: SchemaRef,
    /// The tables the plan reads, as it names them.
    tables: Vec<TableReference>,
}

/// A plan taken from the cache, its tables this query's.
pub(crate) struct ReusedPlan {
    pub plan: LogicalPlan,
    pub schema: SchemaRef,
}

/// The engine's kept plans (at most `capacity`; 0 keeps none).
pub(crate) struct PlanCache {
    capacity: usize,
    plans: Mutex<HashMap<PlanKey, Arc<KeptPlan>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often statements found a kept plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanCacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub kept: u64,
}

impl PlanCache {
    pub(crate) fn new(capacity: usize) -> PlanCache {
        PlanCache { capacity, plans: Mutex::default(), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    pub(crate) fn counts(&self) -> PlanCacheCounts {
        PlanCacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            kept: self.lock().len() as u64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PlanKey, Arc<KeptPlan>>> {
        self.plans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether statements of `sql`'s length are kept at all.
    fn keeps(&self, sql: &str) -> bool {
        self.capacity > 0 && sql.len() <= MAX_KEPT_SQL_BYTES
    }

    /// The kept plan of `sql` with `ctx`'s tables in it, or `None` (plan it): none is kept, or a
    /// table it reads is gone or changed shape (the kept plan is then dropped, to be planned and
    /// kept again). The cache never fails a statement: whatever goes wrong here, the statement is
    /// planned as if nothing had been kept.
    pub(crate) async fn reuse(&self, ctx: &SessionContext, default_schema: &str, sql: &str) -> Option<ReusedPlan> {
        if !self.keeps(sql) {
            return None;
        }
        let key = PlanKey { default_schema: default_schema.to_owned(), sql: sql.to_owned() };
        let kept = self.lock().get(&key).cloned();
        let reused = match &kept {
            Some(kept) => kept.with_tables_of(ctx).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "a kept plan could not be reused; planning the statement");
                None
            }),
            None => None,
        };
        match reused {
            Some(reused) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(reused)
            }
            None => {
                if kept.is_some() {
                    self.lock().remove(&key);
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `optimized`, the plan of `sql` (`unoptimized` is what the SQL planner made of it, in
    /// which `now()` is still a call), if it may be reused (see the module's documentation).
    pub(crate) fn keep(
        &self,
        default_schema: &str,
        sql: &str,
        unoptimized: &LogicalPlan,
        optimized: &LogicalPlan,
        schema: &SchemaRef,
    ) {
        if !self.keeps(sql) {
            return;
        }
        let kept = match KeptPlan::of(unoptimized, optimized, schema) {
            Ok(Some(kept)) => kept,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "the plan is not kept");
                return;
            }
        };
        let mut plans = self.lock();
        if plans.len() >= self.capacity {
            // Not least recently used, but bounded: a full cache makes room by forgetting one plan.
            if let Some(victim) = plans.keys().next().cloned() {
                plans.remove(&victim);
            }
        }
        let key = PlanKey { default_schema: default_schema.to_owned(), sql: sql.to_owned() };
        plans.insert(key, Arc::new(kept));
    }
}

impl KeptPlan {
    /// `optimized` with its tables reduced to their planning shape, or `None` if the plan may
    /// not be reused.
    fn of(unoptimized: &LogicalPlan, optimized: &LogicalPlan, schema: &SchemaRef) -> Result<Option<KeptPlan>> {
        if !reusable(unoptimized)? || !reusable(optimized)? {
            return Ok(None);
        }
        let mut tables = Vec::new();
        let mut seen = HashSet::new();
        let plan = optimized
            .clone()
            .transform_up_with_subqueries(|node| {
                let LogicalPlan::TableScan(mut scan) = node else { return Ok(Transformed::no(node)) };
                let provider = source_as_provider(&scan.source)?;
                let Some(table) = provider.as_any().downcast_ref::<LakeTable>() else {
                    return datafusion::common::plan_err!("a kept plan reads lake tables only");
                };
                scan.source = provider_as_source(Arc::new(table.planning_shape()));
                if seen.insert(scan.table_name.clone()) {
                    tables.push(scan.table_name.clone());
                }
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            })?
            .data;
        Ok(Some(KeptPlan { plan, schema: schema.clone(), tables }))
    }

    /// This plan with `ctx`'s loads of its tables in it; `None` when a table is gone or changed
    /// shape.
    async fn with_tables_of(&self, ctx: &SessionContext) -> Result<Option<ReusedPlan>> {
        let mut fresh = HashMap::new();
        for name in &self.tables {
            // A table that is gone: planning again gives the user the error.
            let Ok(provider) = ctx.table_provider(name.clone()).await else { return Ok(None) };
            fresh.insert(name.clone(), provider);
        }
        let mut changed = false;
        let plan = self
            .plan
            .clone()
            .transform_up_with_subqueries(|node| {
                let LogicalPlan::TableScan(mut scan) = node else { return Ok(Transformed::no(node)) };
                let planned = source_as_provider(&scan.source)?;
                let now = fresh.get(&scan.table_name).and_then(|p| p.as_any().downcast_ref::<LakeTable>());
                let replanned = match (planned.as_any().downcast_ref::<LakeTable>(), now) {
                    (Some(planned), Some(now)) => planned.replanned_as(now),
                    _ => None,
                };
                match replanned {
                    Some(table) => scan.source = provider_as_source(Arc::new(table)),
                    None => changed = true,
                }
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            })?
            .data;
        Ok((!changed).then(|| ReusedPlan { plan, schema: self.schema.clone() }))
    }
}

/// Whether running `plan` again gives what planning its statement again would.
fn reusable(plan: &LogicalPlan) -> Result<bool> {
    let mut reusable = true;
    plan.apply_with_subqueries(|node| {
        let query_node = matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Repartition(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Subquery(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Unnest(_)
                | LogicalPlan::RecursiveQuery(_)
        );
        let lake_scan = match node {
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source)?.as_any().is::<LakeTable>(),
            _ => true,
        };
        let mut immutable = true;
        node.apply_expressions(|e| {
            e.apply(|e| {
                immutable &= match e {
                    Expr::ScalarFunction(f) => f.func.signature().volatility == Volatility::Immutable,
                    Expr::ScalarVariable(..) | Expr::Placeholder(_) => false,
                    _ => true,
                };
                Ok(if immutable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
            })
        })?;
        reusable = query_node && lake_scan && immutable;
        Ok(if reusable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    })?;
    Ok(reusable)
}
