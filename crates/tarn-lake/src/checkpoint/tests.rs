use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use tarn_convert::{ConvertOptions, TableSchema, convert, evolve, split_payload};

use crate::{Compression, Lake};

fn vehicles(from: usize, n: usize) -> (TableSchema, arrow_array::RecordBatch) {
    let options = ConvertOptions::default();
    let mut rows = Vec::new();
    for i in from..from + n {
        let json = format!(
            r#"{{"Vin":"V{i}","Speed":{},"At":"2026-11-22T10:00:{:02}Z","Gps":{{"Lat":48.1,"Lon":11.5}},"Alerts":["a{i}"]}}"#,
            i % 100,
            i % 60
        );
        rows.extend(split_payload(json.as_bytes()).0.into_iter().map(|o| options.normalize(o)));
    }
    let (schema, _) = evolve(&TableSchema::default(), &rows, &options);
    let batch = convert(&schema, &rows, &options).unwrap().batch;
    (schema, batch)
}

#[tokio::test]
async fn appends_commit_data_and_checkpoint_together_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).await.unwrap();
    let (schema, first) = vehicles(0, 100);
    let table = lake.table("raw", "vehicles", &schema).await.unwrap();
    assert_eq!(lake.checkpoint("raw", "vehicles").await.unwrap(), None);
    let cp1 = BTreeMap::from([("shardId-000000000000".to_string(), "100".to_string())]);
    let table = lake.append(&table, &[first], &cp1, Compression::Snappy, "s0-a").await.unwrap();
    let (_, second) = vehicles(100, 50);
    let cp2 = BTreeMap::from([("shardId-000000000000".to_string(), "150".to_string())]);
    lake.append(&table, &[second], &cp2, Compression::Zstd, "s0-b").await.unwrap();
    drop(lake);

    let lake = Lake::open(dir.path()).await.unwrap();
    assert_eq!(lake.checkpoint("raw", "vehicles").await.unwrap(), Some(cp2));
    let table = lake.table("raw", "vehicles", &TableSchema::default()).await.unwrap();
    let batches: Vec<_> = table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 150);
    assert_eq!(table.metadata().snapshots().count(), 2);
}
