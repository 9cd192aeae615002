//! The engine over real lake tables written by `tarn-lake`, as delivery writes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use tarn_convert::{ConvertOptions, TableSchema, convert, evolve, split_payload};
use tarn_lake::{Compression, FileGroup, Lake, TableView};

use crate::{Answer, Engine, EngineConfig, Format, QueryError, TailBatch, TailSource, render};

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
    Engine::new(Arc::new(lake), tail, EngineConfig { target_partitions: 2, include_tail: true })
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

#[tokio::test]
async fn a_query_on_one_hour_of_a_day_reads_only_that_hours_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    batch(&vehicles(0, 1), &mut schema);
    let table = lake.table("raw", "vehicles", &schema).await.unwrap();
    let mut groups = Vec::new();
    for hour in 0..24 {
        let rows = batch(&vehicles(hour * 500, 500), &mut schema);
        groups.push(FileGroup { folder: format!("year=2026/month=11/day=22/hour={hour:02}"), batches: vec![rows] });
    }
    let checkpoint = BTreeMap::from([("shardId-000000000000".to_string(), "1".to_string())]);
    lake.append(&table, &groups, &checkpoint, Compression::Snappy, "f").await.unwrap();
    let engine = engine(lake, None);

    let all = engine.query("SELECT count(*), sum(id), count(DISTINCT hour) FROM raw.vehicles").await.unwrap();
    assert_eq!(int(&all, 0, 0), Some(12_000));
    assert_eq!(int(&all, 0, 1), Some((0..12_000).sum()));
    assert_eq!(int(&all, 0, 2), Some(24));
    let full = engine.query("SELECT * FROM raw.vehicles").await.unwrap();
    assert_eq!(full.stats.rows, 12_000);
    assert_eq!((full.stats.files_scanned, full.stats.files_pruned), (24, 0));

    let hour = engine
        .query("SELECT * FROM raw.vehicles WHERE year = '2026' AND month = '11' AND day = '22' AND hour = '05'")
        .await
        .unwrap();
    assert_eq!(hour.stats.rows, 500);
    assert_eq!((hour.stats.files_scanned, hour.stats.files_pruned), (1, 23));
    assert!(
        hour.stats.bytes_scanned * 20 <= full.stats.bytes_scanned,
        "one hour read {} bytes of the day's {}",
        hour.stats.bytes_scanned,
        full.stats.bytes_scanned
    );
    let ids = engine.query("SELECT min(id), max(id) FROM raw.vehicles WHERE hour = '05'").await.unwrap();
    assert_eq!((int(&ids, 0, 0), int(&ids, 0, 1)), (Some(2_500), Some(2_999)));

    // EXPLAIN shows the one file the scan kept.
    let plan = engine.query("EXPLAIN SELECT id FROM raw.vehicles WHERE hour = '05'").await.unwrap();
    let text = String::from_utf8(render(&plan, Format::Table).unwrap()).unwrap();
    assert!(text.contains("hour=05") && !text.contains("hour=06"), "{text}");
}

#[tokio::test]
async fn files_written_before_a_column_or_struct_field_existed_read_it_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let old = batch(&[r#"{"Id":1,"Gps":{"Lat":1.5}}"#.to_string()], &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let cp = BTreeMap::new();
    let table = lake
        .append(&table, &[FileGroup { folder: "hour=01".into(), batches: vec![old] }], &cp, Compression::Snappy, "a")
        .await
        .unwrap();
    let new = batch(&[r#"{"Id":2,"Speed":80,"Gps":{"Lat":2.5,"Lon":7}}"#.to_string()], &mut schema);
    let table = lake.evolve(&table, &schema).await.unwrap();
    lake.append(&table, &[FileGroup { folder: "hour=02".into(), batches: vec![new] }], &cp, Compression::Zstd, "b")
        .await
        .unwrap();
    let engine = engine(lake, None);
    let answer = engine.query("SELECT id, speed, gps.lon, gps.lat > 2 FROM raw.t ORDER BY id").await.unwrap();
    assert_eq!(answer.stats.rows, 2);
    assert_eq!((int(&answer, 0, 0), int(&answer, 0, 1), int(&answer, 0, 2)), (Some(1), None, None));
    assert_eq!((int(&answer, 1, 0), int(&answer, 1, 1), int(&answer, 1, 2)), (Some(2), Some(80), Some(7)));
    let json = String::from_utf8(render(&answer, Format::Json).unwrap()).unwrap();
    assert!(json.starts_with("[{\"id\":1"), "{json}");
    // CSV cannot hold a struct: it is written as text.
    let structs = engine.query("SELECT id, gps FROM raw.t ORDER BY id").await.unwrap();
    let csv = String::from_utf8(render(&structs, Format::Csv).unwrap()).unwrap();
    assert_eq!(csv, "id,gps\n1,\"{lat: 1.5, lon: }\"\n2,\"{lat: 2.5, lon: 7}\"\n");
}

/// A segment's rows not yet delivered, as the server's stream reader gives them.
struct FixedTail(Vec<TailBatch>);

#[async_trait]
impl TailSource for FixedTail {
    async fn tail(&self, view: &TableView) -> Result<Vec<TailBatch>, String> {
        Ok(if view.name == "t" { self.0.clone() } else { Vec::new() })
    }
}

#[tokio::test]
async fn the_tail_of_a_segment_is_read_beside_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, 10), &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let group = FileGroup { folder: "year=2026/month=11/day=22/hour=09".into(), batches: vec![rows] };
    lake.append(&table, &[group], &BTreeMap::new(), Compression::Snappy, "a").await.unwrap();
    // The tail has the table's columns but one (as when its batch was converted earlier).
    let mut tail_schema = TableSchema::default();
    let tail = batch(&[r#"{"Id":100,"Vendor":"v9"}"#.to_string()], &mut tail_schema);
    let tail = TailBatch { folder: "year=2026/month=11/day=22/hour=10".into(), batch: tail };
    let engine = engine(lake, Some(Arc::new(FixedTail(vec![tail]))));

    let answer = engine.query("SELECT id, hour, note IS NULL FROM raw.t WHERE vendor = 'v9'").await.unwrap();
    assert_eq!(answer.stats.rows, 1);
    assert_eq!(answer.stats.tail_rows, 1);
    assert_eq!(int(&answer, 0, 0), Some(100));
    let text = String::from_utf8(render(&answer, Format::Csv).unwrap()).unwrap();
    assert_eq!(text, "id,hour,raw.t.note IS NULL\n100,10,true\n");
    let hour = engine.query("SELECT count(*) FROM raw.t WHERE hour = '09'").await.unwrap();
    assert_eq!(int(&hour, 0, 0), Some(10), "partition filters apply to the tail too");
}

#[tokio::test]
async fn statements_that_change_or_leave_the_lake_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(Lake::open(dir.path()).await.unwrap(), None);
    let ddl = user_error(&engine, "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'").await;
    assert!(ddl.contains("DDL not supported"), "{ddl}");
    assert!(user_error(&engine, "SELECT * FROM raw.nope").await.contains("raw.nope"));
    assert!(user_error(&engine, "SELEC 1").await.contains("SELEC"));
    let one = engine.query("SELECT 1 + 1 AS two").await.unwrap();
    assert_eq!(int(&one, 0, 0), Some(2));
    assert_eq!(one.stats.bytes_scanned, 0);
}
