//! Reads: partition pruning, files of older schemas, the tail, counts from manifests, refused
//! statements, struct fields.

use super::*;

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
    let table = commit(&lake, &table, "hour=01", old, "a").await;
    let new = batch(&[r#"{"Id":2,"Speed":80,"Gps":{"Lat":2.5,"Lon":7}}"#.to_string()], &mut schema);
    let table = lake.evolve(&table, &schema).await.unwrap();
    let groups = [FileGroup { folder: "hour=02".into(), batches: vec![new] }];
    lake.append(&table, &groups, &BTreeMap::new(), Compression::Zstd, "b").await.unwrap();
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

#[tokio::test]
async fn the_tail_of_a_segment_is_read_beside_its_files() {
    let dir = tempfile::tempdir().unwrap();
    // The tail has the table's columns but one (as when its batch was converted earlier).
    let (engine, _) = file_and_tail(dir.path()).await;

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
    let (engine, mut schema) = file_and_tail(dir.path()).await;

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
    commit(&lake, &table, "year=2026/month=11/day=22/hour=11", more, "b").await;
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
