//! SQL over the lake. DataFusion plans and runs each statement over every table of the catalog
//! (a namespace is a schema: `SELECT … FROM layer.table`); each table is one Iceberg snapshot's
//! Parquet files plus the rows its segment acknowledged after that snapshot's checkpoint, so a
//! query sees a record about as soon as it is acknowledged, exactly once.
//!
//! Layout: `engine` (a statement → an [`Answer`] with rows, elapsed time and bytes scanned) ·
//! `table` (one table's scan: partition pruning, Parquet, the tail) · `tarn_lake::hive` (folder
//! keys as columns) · `struct_reads` (reading only the struct fields a query uses) ·
//! `plan_cache` (optimized plans kept per statement) · `folder_aggregates` (grouping by
//! folder columns without a lookup per row) · `yield_points` (a stopped query stops
//! working) · `statement` (which statements write, and their table options) · `write` (CREATE
//! TABLE AS, INSERT INTO, DROP TABLE into lake tables) · `athena` (answers as Athena's typed
//! text) · `scan_store` (the lake's files for DataFusion, counting bytes) · `render` (text, CSV
//! and JSON output).

mod athena;
mod engine;
mod folder_aggregates;
mod plan_cache;
mod render;
mod scan_store;
mod statement;
mod struct_reads;
mod table;
mod write;
mod yield_points;

pub use async_trait::async_trait;
pub use athena::{TextColumn, TextResults, athena_type, text_results};
pub use engine::{ATHENA_CATALOG, Answer, CATALOG, Engine, EngineConfig, QueryError, Stats, TailSource};
pub use plan_cache::PlanCacheCounts;
pub use render::{Format, render, render_reply};
pub use table::TailBatch;

#[cfg(test)]
mod tests;
