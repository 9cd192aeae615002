use std::io::Write;
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;

use super::*;
use crate::format::decode;

fn gzip(text: &str) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

fn parquet_file() -> Bytes {
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Float64, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5]))],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    Bytes::from(out)
}

fn column<'a>(table: &'a CrawledTable, name: &str) -> &'a CrawledColumn {
    table.columns.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no column {name} in {:?}", table.columns))
}

#[tokio::test]
async fn crawls_a_hand_made_tree_of_json_csv_and_parquet_then_adds_partitions_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path());
    let put = |key: &'static str, body: Bytes| {
        let store = store.clone();
        async move { store.put(key, body).await.unwrap() }
    };
    put(
        "incoming/clicks/dt=2026-11-21/part-0.json.gz",
        gzip("{\"User\":\"a\",\"At\":\"2026-11-21T10:00:00Z\",\"Page\":{\"Path\":\"/\"}}\n{\"User\":\"b\",\"At\":\"2026-11-21T11:00:00Z\",\"Page\":{\"Path\":\"/x\"}}\n"),
    )
    .await;
    put("incoming/clicks/dt=2026-11-22/part-0.json", Bytes::from("{\"User\":\"c\",\"At\":\"2026-11-22T09:30:00Z\"}\n"))
        .await;
    put(
        "incoming/orders/region=eu/a.csv",
        Bytes::from("Id,Amount,Placed\n1,9.5,2026-11-22T10:00:00\n2,3,2026-11-22T11:00:00\n"),
    )
    .await;
    put("incoming/orders/region=us/b.csv.gz", gzip("Id,Amount,Placed\n3,1.25,2026-11-22T12:00:00\n")).await;
    put("incoming/metrics/x.parquet", parquet_file()).await;
    put("incoming/clicks/_SUCCESS", Bytes::new()).await;
    put("incoming/clicks/notes.txt", Bytes::from("hello")).await;

    let report = crawl(&store, dir.path(), "incoming", "landing", None, 1).await.unwrap();
    let names: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["landing.clicks", "landing.metrics", "landing.orders"]);
    assert_eq!(report.skipped_count, 2);
    assert!(report.tables.iter().all(|t| t.created && t.unreadable.is_empty()), "{report:?}");

    let clicks = registry::load(dir.path(), "landing", "clicks").unwrap().unwrap();
    assert_eq!(clicks.format, FileFormat::Json);
    assert_eq!(clicks.partition_keys, ["dt"]);
    assert_eq!(
        column(&clicks, "at").data_type,
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())).to_string()
    );
    assert!(column(&clicks, "page").data_type.starts_with("Struct"));
    let orders = registry::load(dir.path(), "landing", "orders").unwrap().unwrap();
    assert_eq!((orders.format, orders.partition_keys.as_slice()), (FileFormat::Csv, &["region".to_string()][..]));
    assert_eq!(column(&orders, "amount").data_type, "Float64");
    assert!(column(&orders, "placed").data_type.starts_with("Timestamp"), "{}", column(&orders, "placed").data_type);
    let metrics = registry::load(dir.path(), "landing", "metrics").unwrap().unwrap();
    assert_eq!(metrics.data_schema().unwrap().field(0).data_type(), &DataType::Int64);

    // The rows, typed: a gzip'd JSON file and a CSV file with the table's schema.
    let schema = clicks.data_schema().unwrap();
    let key = "incoming/clicks/dt=2026-11-21/part-0.json.gz";
    let bytes = gunzip_if(key, store.get(key).await.unwrap()).unwrap();
    let batches = decode(FileFormat::Json, &schema, &bytes, 1).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].schema().as_ref(), &schema);

    // A new partition with a new column, and a file whose numbers became text.
    put(
        "incoming/clicks/dt=2026-11-23/part-0.json",
        Bytes::from("{\"User\":\"d\",\"At\":\"2026-11-23T00:00:00Z\",\"Referrer\":\"q\"}\n"),
    )
    .await;
    put("incoming/orders/region=ap/c.csv", Bytes::from("Id,Amount,Placed\nx7,1,2026-11-22T13:00:00\n")).await;
    put("incoming/clicks/dt=2026-11-23/broken.json", Bytes::from("{not json")).await;
    let again = crawl(&store, dir.path(), "incoming", "landing", None, 2).await.unwrap();
    let clicks_report = &again.tables[0];
    assert!(!clicks_report.created);
    assert_eq!(clicks_report.files_added, 1, "files crawled before are not read again");
    assert_eq!(clicks_report.partitions_added, ["dt=2026-11-23"]);
    assert_eq!(clicks_report.columns_added, ["referrer"]);
    assert_eq!(clicks_report.unreadable.len(), 1);
    let clicks = registry::load(dir.path(), "landing", "clicks").unwrap().unwrap();
    assert_eq!((column(&clicks, "referrer").since_crawl, column(&clicks, "user").since_crawl), (2, 1));
    let orders_report = &again.tables[2];
    assert_eq!(orders_report.columns_widened, ["id"]);
    let orders = registry::load(dir.path(), "landing", "orders").unwrap().unwrap();
    assert_eq!(column(&orders, "id").data_type, "Utf8");

    // A location that is one table, named on the command line.
    let single = crawl(&store, dir.path(), "incoming/orders", "landing", Some("All Orders"), 3).await.unwrap();
    assert_eq!(single.tables[0].table, "landing.all_orders");
    assert!(crawl(&store, dir.path(), "nothing/here", "landing", None, 3).await.unwrap_err().contains("no files"));
    assert!(crawl(&store, dir.path(), "incoming", "Bad-Layer", None, 3).await.is_err());
}
