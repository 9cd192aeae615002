//! The delivery benchmark: vehicle JSON into a declared segment, delivered into its Iceberg table.
//!
//! 1. Throughput: producers put as fast as they can for `--seconds`; delivery runs alongside.
//!    Reported: what ingest took, what delivery committed while ingest ran, and how long delivery
//!    needed after ingest stopped to catch up (from the server's `tarn_delivery_*` metrics).
//! 2. Freshness at a paced rate: a probe puts one record every 50 ms and waits until a committed
//!    snapshot's checkpoint covers its sequence number, which is the moment any reader that loads
//!    the table sees it. Reported: acknowledgement-to-visible p50/p99.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use tarn_lake::Store;

use crate::Args;
use crate::client::{HashedBody, Signer};
use crate::report::Latencies;

const STREAM: &str = "bench.vehicles";

/// One vehicle telemetry document (about 300 bytes), as the seeds' producers send.
fn vehicle(i: u64, now_ms: i64) -> String {
    format!(
        r#"{{"VehicleId":"V{:06}","Vendor":"{}","EventTime":{},"Speed":{},"Odometer":{}.5,"Status":{{"Engine":"{}","Fuel":{}.0,"Doors":{{"Open":{},"Locked":{}}}}},"Gps":{{"Lat":48.{},"Lon":11.{},"Alt":{}}},"Alerts":["a{}","b{}"]}}"#,
        i % 100_000,
        ["acme", "globex", "initech"][(i % 3) as usize],
        now_ms,
        i % 180,
        i * 7,
        if i.is_multiple_of(2) { "on" } else { "off" },
        i % 100,
        i.is_multiple_of(5),
        !i.is_multiple_of(7),
        i % 1000,
        i % 997,
        i % 500,
        i % 9,
        i % 4
    )
}

fn put_body(records: &[String], key_base: u64) -> Bytes {
    use base64::Engine;
    let mut out = format!(r#"{{"StreamName":"{STREAM}","Records":["#);
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let data = base64::engine::general_purpose::STANDARD.encode(r);
        out.push_str(&format!(r#"{{"Data":"{data}","PartitionKey":"k{}"}}"#, key_base + i as u64));
    }
    out.push_str("]}");
    Bytes::from(out)
}

/// A counter of the bench's table from the server's Prometheus text.
async fn metric(signer: &Signer, name: &str) -> anyhow::Result<f64> {
    labelled_metric(signer, name, r#"table="bench.vehicles""#).await
}

/// A metric from the server's Prometheus text, on the line that has `label`.
async fn labelled_metric(signer: &Signer, name: &str, label: &str) -> anyhow::Result<f64> {
    let text = signer.get("/metrics").await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

pub async fn run(signer: &Arc<Signer>, args: &Args, data_dir: &Path, server_pid: Option<u32>) -> anyhow::Result<()> {
    if args.ingest_only {
        signer.call("CreateStream", format!(r#"{{"StreamName":"{STREAM}","ShardCount":{}}}"#, args.shards)).await?;
    }
    // The server creates the segment's stream at start.
    let deadline = Instant::now() + Duration::from_secs(30);
    while signer.call("DescribeStreamSummary", format!(r#"{{"StreamName":"{STREAM}"}}"#)).await.is_err() {
        if Instant::now() > deadline {
            bail!("the segment's stream did not appear");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "tarn-bench delivery: {} shards, interval {} s, buffer {} MiB, {} connections x {} records",
        args.shards, args.interval_seconds, args.buffer_mib, args.connections, args.batch
    );
    throughput(signer, args, server_pid).await?;
    if args.ingest_only {
        return Ok(());
    }
    let store = lake_store(args, data_dir)?;
    let probes = args.probes.unwrap_or((args.seconds * 20).max(20));
    if probes > 0 {
        freshness(signer, args, data_dir, &store, probes).await?;
    }
    report_files(&store).await?;
    Ok(())
}

/// CPU seconds (user + system) a process has used so far, from /proc (Linux; clock ticks of
/// 1/100 s, the USER_HZ of every mainstream Linux build).
fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name, in parentheses, may hold spaces and parentheses: fields follow the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

async fn throughput(signer: &Arc<Signer>, args: &Args, server_pid: Option<u32>) -> anyhow::Result<()> {
    let cpu_at_start = server_pid.and_then(cpu_seconds);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let records: Vec<String> = (0..args.batch as u64).map(|i| vehicle(i, now_ms)).collect();
    let batch_bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    let (acked_records, acked_bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    // Paced: each connection sends a batch at fixed times, catching up after a slow response.
    let every = (args.ingest_mbps > 0.0)
        .then(|| Duration::from_secs_f64(batch_bytes as f64 / 1e6 / (args.ingest_mbps / args.connections as f64)));
    for conn in 0..args.connections {
        let (signer, body) = (signer.clone(), HashedBody::new(put_body(&records, conn as u64 * 1000)));
        let (n, b) = (acked_records.clone(), acked_bytes.clone());
        let batch = args.batch as u64;
        let mut next = started + every.map_or(Duration::ZERO, |e| e.mul_f64(conn as f64 / args.connections as f64));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                if let Some(every) = every {
                    tokio::time::sleep_until(next.into()).await;
                    next += every;
                }
                signer.call_hashed("PutRecords", &body).await?;
                n.fetch_add(batch, Ordering::Relaxed);
                b.fetch_add(batch_bytes, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    // What delivery has committed, sampled through the phase: its steady rate is the slope over
    // the second half (the first flushes start an interval late, so the whole window undercounts).
    let sampler = {
        let signer = signer.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < stop_at {
                let at = started.elapsed().as_secs_f64();
                samples.push((at, metric(&signer, "tarn_delivery_bytes_total").await.unwrap_or(0.0)));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };
    for t in tasks {
        t.await??;
    }
    let samples = sampler.await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    let delivered_during = metric(signer, "tarn_delivery_bytes_total").await?;
    let acked = acked_records.load(Ordering::Relaxed) as f64;
    let acked_mb = acked_bytes.load(Ordering::Relaxed) as f64 / 1e6;
    if args.ingest_mbps > 0.0 {
        println!("\nIngest, {} MB/s of JSON offered, {} s", args.ingest_mbps, args.seconds);
    } else {
        println!("\nIngest, as fast as possible, {} s", args.seconds);
    }
    println!("  records/s          {:>12.0}", acked / ingest_secs);
    println!("  MB/s (JSON)        {:>12.1}", acked_mb / ingest_secs);
    let fsyncs = labelled_metric(signer, "tarn_stream_fsyncs", &format!(r#"stream="{STREAM}""#)).await?;
    println!("  fsyncs per request {:>12.2}", fsyncs / (acked / args.batch as f64));
    if args.ingest_only {
        print_server_cpu(cpu_at_start, server_pid, acked_mb);
        return Ok(());
    }
    println!("Delivery while ingest ran");
    println!("  MB/s (JSON)        {:>12.1}", delivered_during / 1e6 / ingest_secs);
    if let Some(rate) = second_half_rate(&samples, ingest_secs, delivered_during) {
        println!("  second half, MB/s  {:>12.1} (committed from mid-phase to its end, per second)", rate / 1e6);
    }
    let behind_mb = acked_mb - delivered_during / 1e6;
    println!(
        "  behind at the end  {:>12.1} MB ({:.1} s of ingest)",
        behind_mb,
        behind_mb / (acked_mb / ingest_secs).max(f64::MIN_POSITIVE)
    );
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let delivered = metric(signer, "tarn_delivery_records_total").await?;
        if delivered >= acked {
            break;
        }
        if Instant::now() > deadline {
            bail!("delivery did not catch up: {delivered} of {acked} records");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total_secs = started.elapsed().as_secs_f64();
    let commits = metric(signer, "tarn_delivery_commits_total").await?;
    println!("Delivery of everything ingested (until the last record was committed)");
    println!("  records/s          {:>12.0}", acked / total_secs);
    println!("  MB/s (JSON)        {:>12.1}", acked_mb / total_secs);
    println!("  caught up after    {:>12.1} s after ingest stopped", total_secs - ingest_secs);
    // With ingest stopped, delivery has the machine to itself: its capacity.
    let backlog_mb = acked_mb - delivered_during / 1e6;
    println!(
        "  delivery alone     {:>12.1} MB/s (the backlog at ingest stop / catch-up time)",
        backlog_mb / (total_secs - ingest_secs)
    );
    println!("  commits            {:>12.0}", commits);
    // What it cost: the server's CPU for everything ingested and delivered, a figure that moves
    // less from run to run than throughput on a shared machine.
    print_server_cpu(cpu_at_start, server_pid, acked_mb);
    Ok(())
}

/// The server's CPU since `cpu_at_start`, in all and per GB of the `acked_mb` ingested.
fn print_server_cpu(cpu_at_start: Option<f64>, server_pid: Option<u32>, acked_mb: f64) {
    if let (Some(start), Some(end)) = (cpu_at_start, server_pid.and_then(cpu_seconds)) {
        let cpu = end - start;
        println!(
            "  server CPU         {:>12.1} s (user + system), {:.1} s per GB of JSON",
            cpu,
            cpu / (acked_mb / 1e3)
        );
    }
}

/// Bytes committed per second between the sample nearest the middle of the phase and its end.
fn second_half_rate(samples: &[(f64, f64)], end_secs: f64, end_bytes: f64) -> Option<f64> {
    let &(at, bytes) =
        samples.iter().min_by(|a, b| (a.0 - end_secs / 2.0).abs().total_cmp(&(b.0 - end_secs / 2.0).abs()))?;
    (end_secs - at > 0.5).then(|| (end_bytes - bytes) / (end_secs - at))
}

/// Where the server puts the lake's files (the bench reads checkpoints and file sizes there).
fn lake_store(args: &Args, data_dir: &Path) -> anyhow::Result<Store> {
    let Some(url) = &args.lake_url else { return Ok(Store::local(data_dir.join("lake"))) };
    let var = |name: &str| std::env::var(name).with_context(|| format!("--lake-url needs {name}"));
    let config = tarn_store::S3Config {
        bucket: String::new(),
        endpoint: args.s3_endpoint.clone(),
        region: "us-east-1".into(),
        access_key_id: var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
        session_token: None,
        path_style: args.s3_endpoint.is_some(),
    };
    Ok(Store::s3(url, config)?)
}

async fn freshness(
    signer: &Arc<Signer>,
    args: &Args,
    data_dir: &Path,
    store: &Store,
    probes: u64,
) -> anyhow::Result<()> {
    let lake = tarn_lake::Lake::open_with(&data_dir.join("lake"), Some(store.clone())).await?;
    let stop = Arc::new(AtomicBool::new(false));
    // Background load at the paced rate, in batches of 100 every (100 / rate) s.
    let load = {
        let (signer, stop) = (signer.clone(), stop.clone());
        let every = Duration::from_secs_f64(100.0 / args.paced_rate as f64);
        tokio::spawn(async move {
            let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
            let records: Vec<String> = (0..100).map(|i| vehicle(i, now_ms)).collect();
            let body = HashedBody::new(put_body(&records, 0));
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next.into()).await;
                next += every;
                signer.call_hashed("PutRecords", &body).await?;
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut lat = Latencies::default();
    for p in 0..probes {
        let data = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(vehicle(p, 0))
        };
        let body = format!(r#"{{"StreamName":"{STREAM}","Data":"{data}","PartitionKey":"probe{p}"}}"#);
        let out = signer.call("PutRecord", body).await?;
        let acked = Instant::now();
        let out: serde_json::Value = serde_json::from_slice(&out)?;
        let shard = out["ShardId"].as_str().context("ShardId")?.to_owned();
        let seq: u128 = out["SequenceNumber"].as_str().context("SequenceNumber")?.parse()?;
        loop {
            let covered = lake
                .checkpoint("bench", "vehicles")
                .await?
                .and_then(|c| c.get(&shard).and_then(|s| s.parse::<u128>().ok()))
                .is_some_and(|at| at >= seq);
            if covered {
                break;
            }
            if acked.elapsed() > Duration::from_secs(120) {
                bail!("probe {p} not visible after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lat.push(acked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await??;
    println!("\nFreshness at {} records/s offered: acknowledgement to committed (visible to readers)", args.paced_rate);
    println!("  probes             {:>12}", probes);
    lat.print("  visible after");
    Ok(())
}

async fn report_files(store: &Store) -> anyhow::Result<()> {
    let sizes: Vec<u64> = store
        .list("warehouse/bench/vehicles/data/")
        .await?
        .into_iter()
        .filter(|o| o.key.ends_with(".parquet"))
        .map(|o| o.size)
        .collect();
    let total: u64 = sizes.iter().sum();
    println!(
        "\nData files: {} Parquet files, {:.1} MB, {:.1} MB on average",
        sizes.len(),
        total as f64 / 1e6,
        total as f64 / 1e6 / sizes.len().max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_half_rate_is_the_slope_from_the_middle_sample() {
        let samples = [(0.0, 0.0), (4.9, 10.0), (5.2, 12.0), (9.0, 50.0)];
        // 4.9 s is nearer the middle than 5.2 s.
        assert_eq!(second_half_rate(&samples, 10.0, 60.0), Some(50.0 / 5.1));
        assert_eq!(second_half_rate(&[], 10.0, 60.0), None);
        assert_eq!(second_half_rate(&[(9.8, 1.0)], 10.0, 60.0), None, "too close to the end to be a rate");
    }

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tarn (serve) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 40 0 100 0 0";
        assert_eq!(stat_cpu_seconds(stat), Some(18.01));
        assert_eq!(stat_cpu_seconds("4242 (tarn) S 1"), None, "a truncated line has no CPU times");
        assert!(cpu_seconds(std::process::id()).is_some(), "this process's own /proc entry reads");
    }
}
