//! Statements that write: CREATE TABLE [AS SELECT], INSERT INTO, DROP TABLE.

use super::*;

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
