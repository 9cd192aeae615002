//! JSON → Arrow throughput on vehicle telemetry (nested status and GPS, ISO timestamps), the
//! seeds' workload: split payloads, normalize keys, evolve the schema, build the batch.
//! Run: `cargo bench -p tarn-convert`. Prints MB/s of JSON and records/s.

use std::time::Instant;

use tarn_convert::{ConvertOptions, DirectBatch, Shapes, TableSchema, convert};

/// The allocator the server runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn vehicle(i: u64) -> String {
    format!(
        r#"{{"VehicleId":"V{:05}","Vendor":"{}","EventTime":"2026-11-22T10:{:02}:{:02}.{:03}Z","Speed":{},"EngineOn":{},"Status":{{"Fuel":{:.1},"Odometer":{},"Alerts":["{}"]}},"Gps":{{"Lat":{:.6},"Lon":{:.6},"Alt":{}}}}}"#,
        i % 50_000,
        ["acme", "globex", "initech"][(i % 3) as usize],
        (i / 60) % 60,
        i % 60,
        i % 1000,
        i % 140,
        i.is_multiple_of(2),
        (i % 1000) as f64 / 10.0,
        100_000 + i,
        if i.is_multiple_of(7) { "low-fuel" } else { "none" },
        48.0 + (i % 1000) as f64 / 1e4,
        11.0 + (i % 997) as f64 / 1e4,
        500 + i % 20
    )
}

fn main() {
    let batches = 20;
    let per_batch = 20_000;
    let payloads: Vec<Vec<Vec<u8>>> =
        (0..batches).map(|b| (0..per_batch).map(|i| vehicle(b * per_batch + i).into_bytes()).collect()).collect();
    let bytes: usize = payloads.iter().flatten().map(Vec::len).sum();
    let options = ConvertOptions::default();
    println!(
        "tarn-convert: {} records of vehicle JSON ({:.1} MB), batches of {per_batch}, one core",
        batches * per_batch,
        bytes as f64 / 1e6
    );

    // The general path: payloads to maps, schema evolution, maps to columns.
    let mut schema = TableSchema::default();
    let mut shapes = Shapes::default();
    let mut rows_out = 0;
    let started = Instant::now();
    for batch in &payloads {
        let mut rows = Vec::with_capacity(batch.len());
        for payload in batch {
            let (objects, errors) = options.parse_objects(payload);
            assert!(errors.is_empty());
            rows.extend(objects);
        }
        let (evolved, _) = shapes.evolve(&schema, &rows, &options);
        schema = evolved;
        let converted = convert(&schema, &rows, &options).expect("converts");
        rows_out += converted.batch.num_rows();
    }
    report("general path (maps)", bytes, rows_out, started.elapsed().as_secs_f64());

    // The direct path, with the schema the general path evolved (as delivery runs once a
    // stream's fields are known).
    let mut rows_out = 0;
    let started = Instant::now();
    for batch in &payloads {
        let mut direct = DirectBatch::new(&schema, &options, true);
        for payload in batch {
            direct.append(payload).expect("known fields");
        }
        rows_out += direct.finish().expect("converts").batch.num_rows();
    }
    report("direct path (tape)", bytes, rows_out, started.elapsed().as_secs_f64());
}

fn report(path: &str, bytes: usize, rows: usize, secs: f64) {
    println!("  {path:<22} {:>8.1} MB/s   {:>10.0} records/s", bytes as f64 / secs / 1e6, rows as f64 / secs);
}
