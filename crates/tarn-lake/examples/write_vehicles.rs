//! Writes vehicle telemetry into an Iceberg table in two delivery commits, so that independent
//! readers (pyiceberg, DuckDB) can check what Tarn writes. Usage: `write_vehicles <dir> <rows>`.

use std::collections::BTreeMap;

use tarn_convert::{ConvertOptions, TableSchema, convert, evolve, split_payload};
use tarn_lake::{Compression, FileGroup, Lake};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: write_vehicles <dir> <rows>")?);
    let rows: usize = args.next().ok_or("usage: write_vehicles <dir> <rows>")?.parse()?;
    let options = ConvertOptions::default();
    let lake = Lake::open(&dir).await?;
    let mut schema = TableSchema::default();
    let half = rows / 2;
    for (commit, range) in [(0, 0..half), (1, half..rows)] {
        let mut objects = Vec::new();
        for i in range.clone() {
            let json = format!(
                r#"{{"VehicleId":"V{i:05}","Vendor":"{}","EventTime":"2026-11-22T{:02}:{:02}:00Z","Speed":{},"Status":{{"Fuel":{:.1},"EngineOn":{}}},"Gps":{{"Lat":48.{i},"Lon":11.5}},"Alerts":["a{}"]}}"#,
                ["acme", "globex"][i % 2],
                i % 24,
                i % 60,
                i % 130,
                (i % 100) as f64,
                i % 3 == 0,
                i % 5
            );
            objects.extend(split_payload(json.as_bytes()).0.into_iter().map(|o| options.normalize(o)));
        }
        let (evolved, _) = evolve(&schema, &objects, &options);
        schema = evolved;
        let batch = convert(&schema, &objects, &options)?.batch;
        let table = lake.table("raw", "vehicles", &schema).await?;
        let checkpoint = BTreeMap::from([("shardId-000000000000".to_string(), range.end.to_string())]);
        lake.append(
            &table,
            &[FileGroup { folder: String::new(), batches: vec![batch] }],
            &checkpoint,
            Compression::Snappy,
            &format!("commit{commit}"),
        )
        .await?;
    }
    println!("{}", serde_json::json!({"rows": rows, "checkpoint": lake.checkpoint("raw", "vehicles").await?}));
    Ok(())
}
