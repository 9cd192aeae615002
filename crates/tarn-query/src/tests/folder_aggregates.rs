//! Grouping by folder columns per folder (`folder_aggregates`).

use super::*;

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
