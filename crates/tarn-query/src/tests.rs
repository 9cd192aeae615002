//! The engine over real lake tables written by `tarn-lake`, as delivery writes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
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
    // So small a scan runs on one partition (the engine has two): no repartitioning, no merge.
    let plan = engine
        .query("EXPLAIN SELECT vendor, count(*) FROM raw.vehicles WHERE hour = '05' GROUP BY vendor")
        .await
        .unwrap();
    let text = String::from_utf8(render(&plan, Format::Table).unwrap()).unwrap();
    assert!(!text.contains("RepartitionExec") && !text.contains("partitions=2"), "{text}");
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
async fn count_comes_from_the_manifests_and_each_commit_is_seen_by_the_next_query() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, 10), &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let group = FileGroup { folder: "year=2026/month=11/day=22/hour=09".into(), batches: vec![rows] };
    lake.append(&table, &[group], &BTreeMap::new(), Compression::Snappy, "a").await.unwrap();
    let tail = batch(&[r#"{"Id":100,"Vendor":"v9"}"#.to_string()], &mut TableSchema::default());
    let tail = TailBatch { folder: "year=2026/month=11/day=22/hour=10".into(), batch: tail };
    let engine = engine(lake, Some(Arc::new(FixedTail(vec![tail]))));

    let count = engine.query("SELECT count(*) FROM raw.t").await.unwrap();
    assert_eq!(int(&count, 0, 0), Some(11), "the file's rows and the tail's");
    let plan = engine.query("EXPLAIN SELECT count(*) FROM raw.t").await.unwrap();
    let text = String::from_utf8(render(&plan, Format::Table).unwrap()).unwrap();
    assert!(!text.contains("DataSourceExec"), "count(*) should need no file: {text}");
    let filtered = engine.query("SELECT count(*) FROM raw.t WHERE vendor = 'v1'").await.unwrap();
    assert_eq!(int(&filtered, 0, 0), Some(3), "a filtered count reads the files");

    // Another commit (as delivery makes while queries run): the next query sees it.
    let lake = engine.lake().clone();
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let more = batch(&vehicles(10, 5), &mut schema);
    let group = FileGroup { folder: "year=2026/month=11/day=22/hour=11".into(), batches: vec![more] };
    lake.append(&table, &[group], &BTreeMap::new(), Compression::Snappy, "b").await.unwrap();
    let count = engine.query("SELECT count(*), max(id) FROM raw.t WHERE id < 100").await.unwrap();
    assert_eq!((int(&count, 0, 0), int(&count, 0, 1)), (Some(15), Some(14)));
    let count = engine.query("SELECT count(*) FROM raw.t").await.unwrap();
    assert_eq!(int(&count, 0, 0), Some(16));
    // A table made by someone else's commit to the catalog appears, and one dropped goes away.
    lake.table("other", "fresh", &schema).await.unwrap();
    assert_eq!(int(&engine.query("SELECT count(*) FROM other.fresh").await.unwrap(), 0, 0), Some(0));
    engine.query("DROP TABLE other.fresh").await.unwrap();
    assert!(user_error(&engine, "SELECT * FROM other.fresh").await.contains("fresh"));
}

#[tokio::test]
async fn statements_that_change_or_leave_the_lake_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(Lake::open(dir.path()).await.unwrap(), None);
    let ddl = user_error(&engine, "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'").await;
    assert!(ddl.contains("CREATE EXTERNAL TABLE is not supported"), "{ddl}");
    let view = user_error(&engine, "CREATE VIEW v AS SELECT 1").await;
    assert!(view.contains("DDL not supported"), "{view}");
    assert!(user_error(&engine, "SELECT * FROM raw.nope").await.contains("raw.nope"));
    assert!(user_error(&engine, "SELEC 1").await.contains("SELEC"));
    let one = engine.query("SELECT 1 + 1 AS two").await.unwrap();
    assert_eq!(int(&one, 0, 0), Some(2));
    assert_eq!(one.stats.bytes_scanned, 0);
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

fn parquet_codec(path: &str) -> String {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path.strip_prefix("file://").unwrap_or(path)).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    format!("{:?}", reader.metadata().row_group(0).column(0).compression())
}

#[tokio::test]
async fn create_table_as_select_flattens_repartitions_and_compresses_into_an_iceberg_table() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(lake_with_vehicles(dir.path(), 300).await, None);
    let created = engine
        .query(
            "CREATE TABLE curated.by_vendor WITH (format = 'PARQUET', partitioned_by = ARRAY['vendor'], \
             write_compression = 'ZSTD') AS SELECT id, gps.lat AS lat, vendor FROM raw.vehicles",
        )
        .await
        .unwrap();
    assert_eq!(int(&created, 0, 0), Some(300));
    assert_eq!((created.stats.rows_written, created.stats.files_written), (300, 3));
    assert!(created.stats.bytes_scanned > 0 && created.stats.bytes_written > 0);

    let view = engine.lake().view("curated", "by_vendor", &Default::default()).await.unwrap().unwrap();
    let mut folders: Vec<&str> =
        view.files.iter().map(|f| tarn_lake::hive::below_data(&f.path).rsplit_once('/').unwrap().0).collect();
    folders.sort();
    assert_eq!(folders, ["vendor=v0", "vendor=v1", "vendor=v2"]);
    assert!(parquet_codec(&view.files[0].path).starts_with("ZSTD"), "{}", parquet_codec(&view.files[0].path));
    assert_eq!(view.identity_partitions, ["vendor"]);

    // The flattened columns, no folder columns of their own, and one vendor's file read alone.
    let star = engine.query("SELECT * FROM curated.by_vendor LIMIT 1").await.unwrap();
    let names: Vec<&str> = star.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "lat", "vendor"]);
    let one = engine.query("SELECT count(*), sum(id) FROM curated.by_vendor WHERE vendor = 'v1'").await.unwrap();
    assert_eq!(int(&one, 0, 0), Some(100));
    assert_eq!(int(&one, 0, 1), Some((0..300).filter(|i| i % 3 == 1).sum()));
    assert_eq!((one.stats.files_scanned, one.stats.files_pruned), (1, 2));
    let lat = engine.query("SELECT lat FROM curated.by_vendor WHERE id = 7").await.unwrap();
    let lat = lat.batches.iter().find(|b| b.num_rows() > 0).unwrap().column(0).clone();
    assert_eq!(lat.as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(0), 7.5);

    let again = user_error(&engine, "CREATE TABLE curated.by_vendor AS SELECT 1 AS x").await;
    assert!(again.contains("already exists"), "{again}");
    let skipped = engine.query("CREATE TABLE IF NOT EXISTS curated.by_vendor AS SELECT 1 AS x").await.unwrap();
    assert_eq!(skipped.stats.rows_written, 0);
}

#[tokio::test]
async fn insert_into_appends_by_position_or_named_columns_and_casts_to_the_tables_types() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(lake_with_vehicles(dir.path(), 30).await, None);
    engine
        .query("CREATE TABLE curated.small (id bigint, vendor string, seen timestamp) PARTITIONED BY (vendor)")
        .await
        .unwrap();
    let empty = engine.query("SELECT count(*) FROM curated.small").await.unwrap();
    assert_eq!(int(&empty, 0, 0), Some(0));

    let inserted = engine.query("INSERT INTO curated.small SELECT id, vendor, NULL FROM raw.vehicles").await.unwrap();
    assert_eq!(int(&inserted, 0, 0), Some(30));
    // Named columns, VALUES with narrower types (int to bigint), a string timestamp.
    engine
        .query("INSERT INTO curated.small (vendor, id, seen) VALUES ('v9', 1000, '2026-11-22T10:00:00Z')")
        .await
        .unwrap();
    engine.query("INSERT INTO curated.small (id) VALUES (1001)").await.unwrap();
    let all = engine.query("SELECT count(*), sum(id), count(seen), count(vendor) FROM curated.small").await.unwrap();
    assert_eq!(int(&all, 0, 0), Some(32));
    assert_eq!(int(&all, 0, 1), Some((0..30).sum::<i64>() + 2001));
    assert_eq!((int(&all, 0, 2), int(&all, 0, 3)), (Some(1), Some(31)));
    let nine = engine.query("SELECT id FROM curated.small WHERE vendor = 'v9'").await.unwrap();
    assert_eq!((int(&nine, 0, 0), nine.stats.files_pruned), (Some(1000), 4));

    let count = user_error(&engine, "INSERT INTO curated.small SELECT id FROM raw.vehicles").await;
    assert!(count.contains("3 target columns but the query gives 1"), "{count}");
    let bad = user_error(&engine, "INSERT INTO curated.small (id) VALUES ('not a number')").await;
    assert!(bad.contains("cannot be written"), "{bad}");
    let missing = user_error(&engine, "INSERT INTO curated.nope VALUES (1)").await;
    assert!(missing.contains("does not exist"), "{missing}");
    let after = engine.query("SELECT count(*) FROM curated.small").await.unwrap();
    assert_eq!(int(&after, 0, 0), Some(32), "failed statements leave the table as it was");
}

#[tokio::test]
async fn spark_style_partition_transforms_and_table_properties() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(lake_with_vehicles(dir.path(), 48).await, None);
    engine
        .query(
            "CREATE TABLE curated.hourly PARTITIONED BY (day(at), bucket(4, id)) STORED AS PARQUET \
             TBLPROPERTIES ('write.parquet.compression-codec' = 'gzip', 'owner' = 'etl') \
             AS SELECT id, to_timestamp(id * 3600) AS at FROM raw.vehicles",
        )
        .await
        .unwrap();
    let view = engine.lake().view("curated", "hourly", &Default::default()).await.unwrap().unwrap();
    let days: std::collections::BTreeSet<&str> =
        view.files.iter().map(|f| tarn_lake::hive::below_data(&f.path).split('/').next().unwrap()).collect();
    assert_eq!(days.into_iter().collect::<Vec<_>>(), ["at_day=1970-01-01", "at_day=1970-01-02"]);
    assert!(parquet_codec(&view.files[0].path).starts_with("GZIP"));
    let table = engine.lake().existing("curated", "hourly").await.unwrap().unwrap();
    assert_eq!(table.metadata().properties().get("owner").map(String::as_str), Some("etl"));
    let sum = engine.query("SELECT count(*), sum(id) FROM curated.hourly").await.unwrap();
    assert_eq!((int(&sum, 0, 0), int(&sum, 0, 1)), (Some(48), Some((0..48).sum())));
}

#[tokio::test]
async fn a_statement_that_fails_leaves_no_table_and_drop_table_removes_one() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_vehicles(dir.path(), 30).await;
    let engine = Engine::new(
        Arc::new(lake),
        None,
        EngineConfig { target_partitions: 2, max_write_partitions: 5, ..EngineConfig::default() },
    );
    let many =
        user_error(&engine, "CREATE TABLE t.many WITH (partitioned_by = ARRAY['id']) AS SELECT id FROM raw.vehicles")
            .await;
    assert!(many.contains("more than 5 partitions"), "{many}");
    let column =
        user_error(&engine, "CREATE TABLE t.col WITH (partitioned_by = ARRAY['nope']) AS SELECT 1 AS id").await;
    assert!(column.contains("no such column"), "{column}");
    for bad in [
        "CREATE TABLE t.x WITH (format = 'ORC') AS SELECT 1 AS a",
        "CREATE TABLE t.x WITH (write_compression = 'LZO') AS SELECT 1 AS a",
        "CREATE TABLE t.x WITH (external_location = 's3://b/p/') AS SELECT 1 AS a",
        "CREATE TABLE t.x WITH (colour = 'blue') AS SELECT 1 AS a",
        "INSERT OVERWRITE TABLE raw.vehicles SELECT * FROM raw.vehicles",
    ] {
        user_error(&engine, bad).await;
    }
    assert!(engine.lake().tables("t").await.unwrap().is_empty());

    engine.query("CREATE TABLE t.kept AS SELECT id FROM raw.vehicles").await.unwrap();
    let location = engine.lake().view("t", "kept", &Default::default()).await.unwrap().unwrap().files[0].path.clone();
    engine.query("DROP TABLE t.kept").await.unwrap();
    assert!(engine.lake().existing("t", "kept").await.unwrap().is_none());
    assert!(!std::path::Path::new(location.strip_prefix("file://").unwrap()).exists(), "files go with the table");
    assert!(user_error(&engine, "DROP TABLE t.kept").await.contains("does not exist"));
    engine.query("DROP TABLE IF EXISTS t.kept").await.unwrap();
    let segment = user_error(&engine, "DROP TABLE raw.vehicles").await;
    assert!(segment.contains("table of a segment"), "{segment}");
}

#[tokio::test]
async fn writes_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_vehicles(dir.path(), 3).await;
    let engine = Engine::new(Arc::new(lake), None, EngineConfig { allow_writes: false, ..EngineConfig::default() });
    let refused = user_error(&engine, "CREATE TABLE t.x AS SELECT 1 AS a").await;
    assert!(refused.contains("allow_writes"), "{refused}");
    assert!(engine.query("SELECT count(*) FROM raw.vehicles").await.is_ok());
}

/// Parquet files under `root` whose path names the table `name`.
fn parquet_files_of(root: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet")
                && path.components().any(|c| c.as_os_str() == name)
            {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_create_table_as_leaves_no_table_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_vehicles(dir.path(), 30).await;
    let engine = Arc::new(engine(lake, None));
    let running = engine.clone();
    // Far more rows than it can write before it is stopped.
    let statement = tokio::spawn(async move {
        running
            .query(
                "CREATE TABLE t.big AS SELECT value AS id, repeat('x', 200) AS pad FROM generate_series(1, 500000000)",
            )
            .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while engine.lake().existing("t", "big").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the table was never created");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Let it write for a while, then stop it as StopQueryExecution does (the task is aborted).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!statement.is_finished(), "the statement should still be writing");
    statement.abort();
    assert!(statement.await.unwrap_err().is_cancelled());
    loop {
        let gone = engine.lake().existing("t", "big").await.unwrap().is_none();
        if gone && parquet_files_of(dir.path(), "big").is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a stopped CTAS left its table or files behind");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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

#[tokio::test]
async fn a_query_naming_fields_of_a_struct_reads_only_those_fields() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&cars(2_000), &mut schema);
    let table = lake.table("raw", "cars", &schema).await.unwrap();
    let group = FileGroup { folder: "hour=01".into(), batches: vec![rows] };
    lake.append(&table, &[group], &BTreeMap::new(), Compression::Snappy, "a").await.unwrap();
    let engine = engine(lake, None);
    let fuel_sum: i64 = (0..2_000).map(|i| i % 100).sum();

    let fuel = engine.query("SELECT sum(status.fuel) FROM raw.cars").await.unwrap();
    assert_eq!(int(&fuel, 0, 0), Some(fuel_sum));
    let both = engine.query("SELECT sum(status.fuel), max(length(status.engine)) FROM raw.cars").await.unwrap();
    assert_eq!((int(&both, 0, 0), int(&both, 0, 1)), (Some(fuel_sum), Some(64)));
    assert!(
        fuel.stats.bytes_scanned * 4 < both.stats.bytes_scanned,
        "the fuel alone read {} bytes, with the engine {}",
        fuel.stats.bytes_scanned,
        both.stats.bytes_scanned
    );
    // Sent again, both reuse their plans (the footers are cached now); the fuel still reads alone.
    let fuel_again = engine.query("SELECT sum(status.fuel) FROM raw.cars").await.unwrap();
    let both_again = engine.query("SELECT sum(status.fuel), max(length(status.engine)) FROM raw.cars").await.unwrap();
    assert_eq!(engine.plan_cache_counts().hits, 2);
    assert_eq!(int(&fuel_again, 0, 0), Some(fuel_sum));
    assert!(fuel_again.stats.bytes_scanned * 4 < both_again.stats.bytes_scanned);

    // A field of a struct inside the struct, in a filter the decoder applies.
    let open = engine.query("SELECT count(*), sum(status.fuel) FROM raw.cars WHERE status.doors.open").await.unwrap();
    let open_fuel: i64 = (0..2_000).filter(|i| i % 2 == 0).map(|i| i % 100).sum();
    assert_eq!((int(&open, 0, 0), int(&open, 0, 1)), (Some(1_000), Some(open_fuel)));
    assert!(open.stats.bytes_scanned * 4 < both.stats.bytes_scanned);

    // The whole struct beside one of its fields comes back whole.
    let whole = engine.query("SELECT status, status.fuel FROM raw.cars WHERE id = 7").await.unwrap();
    let json = String::from_utf8(render(&whole, Format::Json).unwrap()).unwrap();
    assert!(json.contains(r#""engine":""#) && json.contains(r#""locked":false"#), "{json}");
    // So does a struct renamed by a subquery, read through its new name.
    let renamed = engine.query("SELECT max(length(s.engine)) FROM (SELECT status AS s FROM raw.cars)").await.unwrap();
    assert_eq!(int(&renamed, 0, 0), Some(64));
    // A union matches its inputs' columns by position.
    let union = engine
        .query(
            "SELECT sum(v) FROM (SELECT status.fuel AS v FROM raw.cars \
             UNION ALL SELECT CAST(status.doors.locked AS INT) AS v FROM raw.cars)",
        )
        .await
        .unwrap();
    assert_eq!(int(&union, 0, 0), Some(fuel_sum + (0..2_000).filter(|i| i % 3 == 0).count() as i64));
}

#[tokio::test]
async fn a_statement_sent_again_reuses_its_plan_over_the_tables_as_they_are_now() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, 10), &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let group = FileGroup { folder: "hour=01".into(), batches: vec![rows] };
    let table = lake.append(&table, &[group], &BTreeMap::new(), Compression::Snappy, "a").await.unwrap();
    let tail = batch(&[r#"{"Id":100,"Vendor":"v1"}"#.to_string()], &mut TableSchema::default());
    let tail = TailBatch { folder: "hour=09".into(), batch: tail };
    let engine = engine(lake, Some(Arc::new(FixedTail(vec![tail]))));
    let counts = |hits, misses, kept| PlanCacheCounts { hits, misses, kept };

    let sql = "SELECT count(*), max(id) FROM raw.t WHERE vendor = 'v1' AND hour <> '05'";
    let first = engine.query(sql).await.unwrap();
    assert_eq!((int(&first, 0, 0), int(&first, 0, 1)), (Some(4), Some(100)), "three in the file, one in the tail");
    assert_eq!(engine.plan_cache_counts(), counts(0, 1, 1));
    let again = engine.query(sql).await.unwrap();
    assert_eq!(engine.plan_cache_counts(), counts(1, 1, 1));
    assert_eq!((int(&again, 0, 0), int(&again, 0, 1)), (Some(4), Some(100)));
    assert_eq!(again.stats.tail_rows, 1, "the reused plan reads this query's tail");
    assert!(again.stats.bytes_scanned > 0, "and counts its bytes");

    // Another commit: the kept plan reads the new snapshot, its partition filter prunes it.
    let lake = engine.lake().clone();
    let more = batch(&vehicles(10, 6), &mut schema);
    let table = lake
        .append(
            &table,
            &[FileGroup { folder: "hour=05".into(), batches: vec![more.clone()] }],
            &BTreeMap::new(),
            Compression::Snappy,
            "b",
        )
        .await
        .unwrap();
    let table = lake
        .append(
            &table,
            &[FileGroup { folder: "hour=06".into(), batches: vec![more] }],
            &BTreeMap::new(),
            Compression::Snappy,
            "c",
        )
        .await
        .unwrap();
    let third = engine.query(sql).await.unwrap();
    assert_eq!(engine.plan_cache_counts().hits, 2);
    assert_eq!((int(&third, 0, 0), int(&third, 0, 1)), (Some(6), Some(100)), "hour 06 adds ids 10 and 13");
    assert_eq!((third.stats.files_scanned, third.stats.files_pruned), (2, 1));

    // A new column: the statement is planned again and `*` has it.
    let star = "SELECT * FROM raw.t WHERE id = 3";
    assert!(engine.query(star).await.unwrap().schema.field_with_name("speed").is_err());
    let newer = batch(&[r#"{"Id":3,"Speed":80}"#.to_string()], &mut schema);
    let table = lake.evolve(&table, &schema).await.unwrap();
    lake.append(
        &table,
        &[FileGroup { folder: "hour=07".into(), batches: vec![newer] }],
        &BTreeMap::new(),
        Compression::Snappy,
        "d",
    )
    .await
    .unwrap();
    let before = engine.plan_cache_counts();
    let evolved = engine.query(star).await.unwrap();
    assert!(evolved.schema.field_with_name("speed").is_ok(), "{:?}", evolved.schema);
    assert_eq!(evolved.stats.rows, 2);
    assert_eq!(engine.plan_cache_counts().hits, before.hits, "a changed table is planned again");
    engine.query(star).await.unwrap();
    assert_eq!(engine.plan_cache_counts().hits, before.hits + 1, "and its new plan kept");

    // An unqualified name resolves in each query's default schema.
    lake.table("other", "t", &schema).await.unwrap();
    let count = "SELECT count(*) FROM t";
    assert_eq!(int(&engine.query_in(count, Some("raw")).await.unwrap(), 0, 0), Some(24));
    // (No files; the test's tail source gives every table named `t` its one row.)
    assert_eq!(int(&engine.query_in(count, Some("other")).await.unwrap(), 0, 0), Some(1));
    assert_eq!(int(&engine.query_in(count, Some("raw")).await.unwrap(), 0, 0), Some(24));

    // A table dropped: the statement fails as it would unplanned.
    engine.query("DROP TABLE other.t").await.unwrap();
    assert!(user_error(&engine, "SELECT count(*) FROM other.t").await.contains("other.t"));

    // Plans with the time or chance in them, and EXPLAIN, are not kept.
    let before = engine.plan_cache_counts();
    for sql in ["SELECT now() AS t", "SELECT id FROM raw.t WHERE random() < 2", "EXPLAIN SELECT id FROM raw.t"] {
        engine.query(sql).await.unwrap();
        engine.query(sql).await.unwrap();
    }
    assert_eq!(engine.plan_cache_counts().hits, before.hits);
    assert_eq!(engine.plan_cache_counts().kept, before.kept);
}

#[tokio::test]
async fn no_plan_is_kept_when_kept_plans_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_with_vehicles(dir.path(), 10).await;
    let engine = Engine::new(Arc::new(lake), None, EngineConfig { kept_plans: 0, ..EngineConfig::default() });
    for _ in 0..2 {
        assert_eq!(int(&engine.query("SELECT count(*) FROM raw.vehicles").await.unwrap(), 0, 0), Some(10));
    }
    assert_eq!(engine.plan_cache_counts(), PlanCacheCounts::default());
}

#[tokio::test]
async fn grouping_by_a_folder_column_aggregates_each_folders_files_without_a_lookup_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    // Three hours of 8,000 rows whose hardly compressible strings make the files over 1 MiB in
    // all, so the query runs on two partitions with a partial and a final aggregation.
    let rows: Vec<String> = cars(24_000);
    let mut groups = Vec::new();
    for (h, chunk) in rows.chunks(8_000).enumerate() {
        let b = batch(chunk, &mut schema);
        groups.push(FileGroup { folder: format!("hour=0{}", h + 1), batches: vec![b] });
    }
    let table = lake.table("raw", "cars", &schema).await.unwrap();
    lake.append(&table, &groups, &BTreeMap::new(), Compression::Snappy, "a").await.unwrap();
    let engine = engine(lake, None);

    let sql = "SELECT hour, count(*) AS n, sum(status.fuel) AS fuel, max(id) AS top FROM raw.cars GROUP BY hour ORDER BY hour";
    let plan = engine.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let text = String::from_utf8(render(&plan, Format::Table).unwrap()).unwrap();
    assert!(text.contains("mode=Partial, gby=[]"), "each folder's files aggregated without grouping: {text}");
    let answer = engine.query(sql).await.unwrap();
    assert_eq!(answer.stats.rows, 3);
    for h in 0..3u64 {
        let ids = h * 8_000..(h + 1) * 8_000;
        let fuel: i64 = ids.clone().map(|i| (i % 100) as i64).sum();
        let row = h as usize;
        assert_eq!(
            (int(&answer, row, 1), int(&answer, row, 2), int(&answer, row, 3)),
            (Some(8_000), Some(fuel), Some(ids.end as i64 - 1)),
            "hour {}",
            h + 1
        );
    }
    // A filter can leave a folder without rows: grouping then keeps to the rows (no empty group).
    let filtered = engine.query("SELECT hour, count(*) FROM raw.cars WHERE id < 100 GROUP BY hour").await.unwrap();
    assert_eq!((filtered.stats.rows, int(&filtered, 0, 1)), (1, Some(100)));
    // Grouping by a data column beside the folder column is left to DataFusion.
    let both = engine.query("SELECT hour, status.doors.open, count(*) FROM raw.cars GROUP BY 1, 2").await.unwrap();
    assert_eq!(both.stats.rows, 6);
}
