//! The engine over real lake tables written by `tarn-lake`, as delivery writes them.
//!
//! `reads` (pruning, schema versions, the tail, struct fields), `writes` (CREATE TABLE AS,
//! INSERT INTO, DROP TABLE), `kept_plans`, `folder_aggregates`; the helpers below are shared.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use iceberg::table::Table;
use tarn_convert::{ConvertOptions, TableSchema, convert, evolve, split_payload};
use tarn_lake::{Compression, FileGroup, Lake, TableView};

use crate::{Answer, Engine, EngineConfig, Format, PlanCacheCounts, QueryError, TailBatch, TailSource, render};

fn batch(json_rows: &[String], schema: &mut TableSchema) -> RecordBatch {
    let options = ConvertOptions::default();
    let rows: Vec<_> =
        json_rows.iter().flat_map(|r| split_payload(r.as_bytes()).0).map(|o| options.normalize(o)).collect();
    *schema = evolve(schema, &rows, &options).0;
    convert(schema, &rows, &options).unwrap().batch
}

fn vehicles(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!(r#"{{"Id":{i},"Vendor":"v{}","Gps":{{"Lat":{i}.5}},"Note":"{}"}}"#, i % 3, "x".repeat(40)))
        .collect()
}

fn engine(lake: Lake, tail: Option<Arc<dyn TailSource>>) -> Engine {
    Engine::new(Arc::new(lake), tail, EngineConfig { target_partitions: 2, ..EngineConfig::default() })
}

fn int(answer: &Answer, row: usize, col: usize) -> Option<i64> {
    let mut seen = 0;
    for b in &answer.batches {
        if row < seen + b.num_rows() {
            let a = b.column(col);
            let a = datafusion::arrow::compute::cast(a, &datafusion::arrow::datatypes::DataType::Int64).unwrap();
            let a = a.as_primitive::<Int64Type>();
            return a.is_valid(row - seen).then(|| a.value(row - seen));
        }
        seen += b.num_rows();
    }
    panic!("no row {row}")
}

async fn user_error(engine: &Engine, sql: &str) -> String {
    match engine.query(sql).await {
        Err(QueryError::User(m)) => m,
        other => panic!("{sql}: expected a user error, got {other:?}"),
    }
}

mod folder_aggregates;
mod kept_plans;
mod reads;
mod writes;

/// A segment's rows not yet delivered, as the server's stream reader gives them.
struct FixedTail(Vec<TailBatch>);

#[async_trait]
impl TailSource for FixedTail {
    async fn tail(&self, view: &TableView) -> Result<Vec<TailBatch>, String> {
        Ok(if view.name == "t" { self.0.clone() } else { Vec::new() })
    }
}

/// Commits `rows` into `folder` of `table` as one flush without a checkpoint; `file` prefixes its
/// file name. Returns the table at its new snapshot.
async fn commit(lake: &Lake, table: &Table, folder: &str, rows: RecordBatch, file: &str) -> Table {
    let groups = [FileGroup { folder: folder.into(), batches: vec![rows] }];
    lake.append(table, &groups, &BTreeMap::new(), Compression::Snappy, file).await.unwrap()
}

/// `raw.t` with ids 0..10 committed in hour 09, and in the tail one row of hour 10 (id 100,
/// vendor v9) converted without the table's other columns. Returns the table's schema too.
async fn file_and_tail(dir: &std::path::Path) -> (Engine, TableSchema) {
    let lake = Lake::open(dir).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, 10), &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    commit(&lake, &table, "year=2026/month=11/day=22/hour=09", rows, "a").await;
    let tail = batch(&[r#"{"Id":100,"Vendor":"v9"}"#.to_string()], &mut TableSchema::default());
    let tail = TailBatch { folder: "year=2026/month=11/day=22/hour=10".into(), batch: tail };
    (engine(lake, Some(Arc::new(FixedTail(vec![tail])))), schema)
}

/// `raw.vehicles` with ids 0..n (vendors v0, v1, v2) delivered as a segment would deliver it.
async fn lake_with_vehicles(dir: &std::path::Path, n: usize) -> Lake {
    let lake = Lake::open(dir).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, n), &mut schema);
    let table = lake.table("raw", "vehicles", &schema).await.unwrap();
    let checkpoint = BTreeMap::from([("shardId-000000000000".to_string(), "1".to_string())]);
    let groups = [FileGroup { folder: "year=2026/month=11/day=22/hour=10".into(), batches: vec![rows] }];
    lake.append(&table, &groups, &checkpoint, Compression::Snappy, "f").await.unwrap();
    lake
}

/// Rows whose `Status` struct holds a long, hardly compressible string beside small fields.
fn cars(n: u64) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|i| {
            let engine: String = (0..4)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("{state:016x}")
                })
                .collect();
            format!(
                r#"{{"Id":{i},"Status":{{"Engine":"{engine}","Fuel":{},"Doors":{{"Open":{},"Locked":{}}}}}}}"#,
                i % 100,
                i % 2 == 0,
                i % 3 == 0
            )
        })
        .collect()
}
