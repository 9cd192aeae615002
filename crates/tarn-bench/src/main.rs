//! `tarn-bench`: starts the real `tarn` binary on a free port with a temporary data directory
//! and measures, with SigV4-signed requests over HTTP/1.1 from this process:
//!
//! 1. PutRecords throughput: N connections, batches of 500 records of 200 bytes, durable acks;
//! 2. PutRecords latency at half of that throughput (paced);
//! 3. GetRecords throughput: every shard read from TRIM_HORIZON, in JSON (data base64-decoded,
//!    as a consumer would) and in CBOR (the Java SDKs' format, data as byte strings).
//!
//! Usage: `cargo run --release -p tarn-bench -- --server target/release/tarn`

mod client;
mod delivery;
mod report;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::AsyncBufReadExt;

use client::{Signer, Wire};
use report::Latencies;

#[derive(Parser, Clone)]
struct Args {
    /// The tarn binary to benchmark.
    #[arg(long, default_value = "target/release/tarn")]
    server: String,
    /// Concurrent connections sending PutRecords.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 4)]
    shards: u32,
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, default_value_t = 200)]
    record_bytes: usize,
    /// Seconds of each write phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Body formats to read the stream back with, each in its own pass over all of it.
    #[arg(long, value_delimiter = ',', default_value = "json,cbor,json")]
    read: Vec<Wire>,
    /// Data directory (default: a temporary directory on the same disk as /tmp).
    #[arg(long)]
    data_dir: Option<String>,
    /// `streams` (PutRecords and GetRecords) or `delivery` (JSON into the lake: throughput while
    /// ingest runs, then freshness at a paced rate).
    #[arg(long, default_value = "streams")]
    mode: String,
    /// Delivery: MB/s of JSON offered in the throughput phase, spread over the connections
    /// (0: as fast as they can). At a rate the machine sustains, delivery should keep up.
    #[arg(long, default_value_t = 0.0)]
    ingest_mbps: f64,
    /// Delivery: records/s offered in the freshness phase.
    #[arg(long, default_value_t = 20_000)]
    paced_rate: u64,
    /// Delivery: probes of the freshness phase (0 skips it; default: 20 per second of `--seconds`).
    #[arg(long)]
    probes: Option<u64>,
    /// Delivery mode without the delivery: the same stream and producers, no segment, so the
    /// server's CPU per GB is ingest's alone.
    #[arg(long)]
    ingest_only: bool,
    /// Delivery: the segment's buffering interval and size.
    #[arg(long, default_value_t = 1)]
    interval_seconds: u64,
    #[arg(long, default_value_t = 64)]
    buffer_mib: u64,
    /// Delivery: the lake on an S3-compatible service (`s3://bucket/prefix`) instead of the data
    /// directory, at `--s3-endpoint`, signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long)]
    lake_url: Option<String>,
    #[arg(long)]
    s3_endpoint: Option<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().join("data").display().to_string());
    let config = tmp.path().join("tarn.toml");
    let delivery = args.mode == "delivery";
    if delivery && !args.ingest_only {
        std::fs::write(
            &config,
            format!(
                "[[segments]]\nlayer = \"bench\"\nname = \"vehicles\"\nshards = {}\n[segments.delivery]\n\
                 interval_seconds = {}\nsize_mib = {}\n",
                args.shards, args.interval_seconds, args.buffer_mib
            ),
        )?;
    } else {
        std::fs::write(&config, "")?;
    }
    let mut command = tokio::process::Command::new(&args.server);
    if let Some(url) = &args.lake_url {
        command.env("TARN_LAKE__URL", url);
    }
    if let Some(endpoint) = &args.s3_endpoint {
        command.env("TARN_LAKE__ENDPOINT", endpoint);
    }
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_dir, "--config"])
        .arg(&config)
        .env("TARN_LOG", std::env::var("TARN_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", args.server))?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        match lines.next_line().await? {
            Some(line) if line.starts_with("tarn listening on ") => {
                break line.rsplit(' ').next().unwrap_or("").to_owned();
            }
            Some(_) => continue,
            None => bail!("{} exited before listening", args.server),
        }
    };
    let signer = Arc::new(Signer::new(&addr, tarn_config_dev_key()));
    // Interrupted, the server is stopped and the temporary data directory (gigabytes after a
    // delivery run) removed, as on a normal exit.
    let outcome = tokio::select! {
        outcome = bench(&signer, &args, delivery, &addr, std::path::Path::new(&data_dir), child.id()) => outcome,
        signal = interrupted() => Err(anyhow::anyhow!("{signal}: stopped the server and removed its data")),
    };
    let _ = child.kill().await;
    drop(tmp);
    outcome
}

/// Waits for SIGINT or SIGTERM and names it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

async fn bench(
    signer: &Arc<Signer>,
    args: &Args,
    delivery: bool,
    addr: &str,
    data_dir: &std::path::Path,
    server_pid: Option<u32>,
) -> anyhow::Result<()> {
    if delivery {
        return delivery::run(signer, args, data_dir, server_pid).await;
    }
    println!(
        "tarn-bench: server {addr}, {} shards, {} connections, batches of {} x {} B records, {} s per phase",
        args.shards, args.connections, args.batch, args.record_bytes, args.seconds
    );
    signer.call("CreateStream", format!(r#"{{"StreamName":"bench","ShardCount":{}}}"#, args.shards)).await?;

    let full = write_phase(signer, args, None).await?;
    full.print("PutRecords, as fast as possible");
    let half_rate = full.records as f64 / full.elapsed.as_secs_f64() / 2.0;
    let half = write_phase(signer, args, Some(half_rate)).await?;
    half.print(&format!("PutRecords at half that load ({half_rate:.0} records/s offered)"));
    for wire in &args.read {
        read_phase(signer, args.shards, *wire).await?;
    }
    Ok(())
}

fn tarn_config_dev_key() -> (&'static str, &'static str) {
    ("tarn", "tarn-dev-secret")
}

/// What one write phase measured.
struct WritePhase {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latencies: Latencies,
}

impl WritePhase {
    fn print(&self, title: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!("\n{title}");
        println!("  records/s      {:>12.0}", self.records as f64 / secs);
        println!("  MB/s (data)    {:>12.1}", self.bytes as f64 / secs / 1e6);
        println!("  requests       {:>12}", self.latencies.len());
        self.latencies.print("  latency");
    }
}

async fn write_phase(signer: &Arc<Signer>, args: &Args, rate: Option<f64>) -> anyhow::Result<WritePhase> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let signer = signer.clone();
        let body = client::put_records_body("bench", conn, args.batch, args.record_bytes);
        // Paced phases spread the offered rate over the connections.
        let interval = rate.map(|r| Duration::from_secs_f64(args.batch as f64 * args.connections as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut next = Instant::now();
            while Instant::now() < deadline {
                if let Some(every) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += every;
                }
                let t = Instant::now();
                let out = signer.call("PutRecords", body.clone()).await?;
                lat.push(t.elapsed());
                if !out.windows(22).any(|w| w == br#""FailedRecordCount":0,"#) {
                    bail!("PutRecords failed: {}", String::from_utf8_lossy(&out[..out.len().min(300)]));
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut latencies = Latencies::default();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let records = latencies.len() as u64 * args.batch as u64;
    Ok(WritePhase { records, bytes: records * args.record_bytes as u64, elapsed, latencies })
}

async fn read_phase(signer: &Arc<Signer>, shards: u32, wire: Wire) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in 0..shards {
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(
                r#"{{"StreamName":"bench","ShardId":"shardId-{shard:012}","ShardIteratorType":"TRIM_HORIZON"}}"#
            );
            let out = signer.call("GetShardIterator", body).await?;
            let mut iterator = serde_json::from_slice::<serde_json::Value>(&out)?["ShardIterator"]
                .as_str()
                .context("no iterator")?
                .to_owned();
            let (mut records, mut bytes, mut lat) = (0u64, 0u64, Latencies::default());
            loop {
                let t = Instant::now();
                let out = signer.call_as(wire, "GetRecords", wire.get_records(&iterator, 10_000)).await?;
                let page = wire.decode_records(&out)?;
                lat.push(t.elapsed());
                records += page.records;
                bytes += page.bytes;
                if page.records == 0 || page.millis_behind_latest == 0 && page.records < 10_000 {
                    return Ok::<_, anyhow::Error>((records, bytes, lat));
                }
                iterator = page.next_iterator.context("no next iterator")?;
            }
        }));
    }
    let (mut records, mut bytes, mut lat) = (0, 0, Latencies::default());
    for t in tasks {
        let (r, b, l) = t.await??;
        records += r;
        bytes += b;
        lat.extend(l);
    }
    let secs = started.elapsed().as_secs_f64();
    println!("\nGetRecords ({wire:?}), every shard from TRIM_HORIZON, Limit 10000, one reader per shard");
    println!("  records        {records:>12}");
    println!("  records/s      {:>12.0}", records as f64 / secs);
    println!("  MB/s (data)    {:>12.1}", bytes as f64 / secs / 1e6);
    lat.print("  latency");
    Ok(())
}
