//! Kept plans (`plan_cache`): reused over the tables as they are, planned again when they change.

use super::*;

#[tokio::test]
async fn a_statement_sent_again_reuses_its_plan_over_the_tables_as_they_are_now() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let mut schema = TableSchema::default();
    let rows = batch(&vehicles(0, 10), &mut schema);
    let table = lake.table("raw", "t", &schema).await.unwrap();
    let table = commit(&lake, &table, "hour=01", rows, "a").await;
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
    let table = commit(&lake, &table, "hour=05", more.clone(), "b").await;
    let table = commit(&lake, &table, "hour=06", more, "c").await;
    let third = engine.query(sql).await.unwrap();
    assert_eq!(engine.plan_cache_counts().hits, 2);
    assert_eq!((int(&third, 0, 0), int(&third, 0, 1)), (Some(6), Some(100)), "hour 06 adds ids 10 and 13");
    assert_eq!((third.stats.files_scanned, third.stats.files_pruned), (2, 1));

    // A new column: the statement is planned again and `*` has it.
    let star = "SELECT * FROM raw.t WHERE id = 3";
    assert!(engine.query(star).await.unwrap().schema.field_with_name("speed").is_err());
    let newer = batch(&[r#"{"Id":3,"Speed":80}"#.to_string()], &mut schema);
    let table = lake.evolve(&table, &schema).await.unwrap();
    commit(&lake, &table, "hour=07", newer, "d").await;
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
