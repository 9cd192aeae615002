//! `tarn generate`: realistic test producers at a given rate into a Kinesis stream (PutRecords)
//! or a Firehose delivery stream (PutRecordBatch), with a progress line on stderr.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::client::Endpoint;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// Vehicle telemetry: nested status and GPS, alerts list, ISO-8601 event time.
    Vehicles,
    /// People: names, addresses, a birth date, interests.
    Persons,
    /// Web clickstream: sessions, pages, referrers, user agents, epoch-millisecond times.
    Clicks,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// What to produce.
    #[arg(value_enum)]
    kind: Kind,
    /// Put into this Kinesis stream.
    #[arg(long, conflicts_with = "delivery_stream", required_unless_present = "delivery_stream")]
    stream: Option<String>,
    /// Put into this Firehose delivery stream.
    #[arg(long)]
    delivery_stream: Option<String>,
    /// Records per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Stop after this many records (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Records per call (at most 500).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// A small deterministic generator (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

fn iso(ms: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = tarn_time::civil_from_millis(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ms.rem_euclid(1000))
}

/// One record of `kind`, the `n`th of the run.
fn record(kind: Kind, rng: &mut Rng, n: u64, now_ms: i64) -> Value {
    match kind {
        Kind::Vehicles => {
            let vin = format!("VIN{:06}", rng.below(5000));
            json!({
                "VehicleId": vin,
                "Vendor": rng.pick(&["acme", "globex", "initech", "umbrella"]),
                "EventTime": iso(now_ms),
                "Speed": rng.below(180),
                "Odometer": rng.float(0.0, 300_000.0),
                "Status": {
                    "Engine": rng.pick(&["on", "off", "idle"]),
                    "Fuel": (rng.float(0.0, 100.0) * 10.0).round() / 10.0,
                    "Doors": {"Open": rng.below(10) == 0, "Locked": rng.below(3) != 0},
                },
                "Gps": {"Lat": rng.float(47.0, 49.0), "Lon": rng.float(10.0, 13.0), "Alt": rng.below(900)},
                "Alerts": (0..rng.below(3)).map(|i| format!("A{}", (n + i) % 17)).collect::<Vec<_>>(),
            })
        }
        Kind::Persons => {
            let first = rng.pick(&["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]);
            let last = rng.pick(&["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]);
            json!({
                "PersonId": n,
                "FirstName": first,
                "LastName": last,
                "Email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), rng.below(1000)),
                "BirthDate": format!("{}-{:02}-{:02}", 1950 + rng.below(55), 1 + rng.below(12), 1 + rng.below(28)),
                "Address": {
                    "Street": format!("{} {}", 1 + rng.below(200), rng.pick(&["Main St", "Oak Ave", "Elm Rd", "Lake Dr"])),
                    "City": rng.pick(&["Munich", "Berlin", "Hamburg", "Cologne", "Vienna", "Zurich"]),
                    "Zip": format!("{:05}", rng.below(99_999)),
                },
                "Interests": (0..1 + rng.below(3)).map(|_| rng.pick(&["cycling", "chess", "jazz", "hiking", "cooking"])).collect::<Vec<_>>(),
                "UpdatedAt": iso(now_ms),
            })
        }
        Kind::Clicks => json!({
            "SessionId": format!("s{:08x}", rng.below(1 << 20)),
            "UserId": rng.below(100_000),
            "Page": rng.pick(&["/", "/search", "/product", "/cart", "/checkout", "/help"]),
            "Referrer": rng.pick(&["", "https://www.example.com/", "https://news.example.org/", "https://social.example.net/"]),
            "UserAgent": rng.pick(&["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone)", "Mozilla/5.0 (Windows NT 10.0)"]),
            "DurationMs": rng.below(30_000),
            "Timestamp": now_ms,
        }),
    }
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    if a.batch == 0 || a.batch > 500 || a.rate == 0 {
        bail!("--batch must be 1 to 500 and --rate at least 1");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        let remaining = a.count.map_or(a.batch as u64, |c| c - sent);
        if remaining == 0 {
            break;
        }
        let n = remaining.min(a.batch as u64);
        // Pace: the batch is due when the records before it have had their time.
        let due = started + Duration::from_secs_f64(sent as f64 / a.rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let docs: Vec<String> = (0..n).map(|i| record(a.kind, &mut rng, sent + i, now_ms).to_string()).collect();
        let failures = if let Some(stream) = &a.stream {
            let records: Vec<Value> = docs
                .iter()
                .enumerate()
                .map(|(i, d)| json!({"Data": STANDARD.encode(d), "PartitionKey": format!("k{}", sent + i as u64)}))
                .collect();
            let out = a.endpoint.kinesis("PutRecords", json!({"StreamName": stream, "Records": records}))?;
            out["FailedRecordCount"].as_u64().unwrap_or(0)
        } else {
            let name = a.delivery_stream.as_deref().expect("one of the two is required");
            let records: Vec<Value> = docs.iter().map(|d| json!({"Data": STANDARD.encode(format!("{d}\n"))})).collect();
            let out = a.endpoint.firehose("PutRecordBatch", json!({"DeliveryStreamName": name, "Records": records}))?;
            out["FailedPutCount"].as_u64().unwrap_or(0)
        };
        sent += n;
        failed += failures;
        if last_report.elapsed() >= Duration::from_millis(250) || a.count == Some(sent) {
            progress(sent, failed, a.count, started.elapsed());
            last_report = Instant::now();
        }
    }
    eprintln!();
    Ok(())
}

fn progress(sent: u64, failed: u64, count: Option<u64>, elapsed: Duration) {
    let rate = sent as f64 / elapsed.as_secs_f64().max(1e-3);
    let bar = match count {
        Some(c) => {
            let filled = (sent * 30 / c.max(1)) as usize;
            format!("[{}{}] ", "#".repeat(filled), ".".repeat(30 - filled))
        }
        None => String::new(),
    };
    eprint!("\r{bar}{sent} records sent, {failed} refused, {rate:.0} records/s   ");
    let _ = std::io::stderr().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_realistic_and_reproducible() {
        let mut a = Rng(1);
        let mut b = Rng(1);
        let v = record(Kind::Vehicles, &mut a, 0, 1_795_330_800_000);
        assert_eq!(v, record(Kind::Vehicles, &mut b, 0, 1_795_330_800_000));
        assert_eq!(v["EventTime"], "2026-11-22T07:00:00.000Z");
        assert!(v["Status"]["Doors"]["Locked"].is_boolean());
        assert!(v["Gps"]["Lat"].as_f64().is_some_and(|l| (47.0..49.0).contains(&l)));
        let p = record(Kind::Persons, &mut a, 7, 0);
        assert_eq!(p["PersonId"], 7);
        assert!(p["Email"].as_str().unwrap().ends_with("@example.com"));
        let c = record(Kind::Clicks, &mut a, 0, 5);
        assert_eq!(c["Timestamp"], 5);
    }
}
