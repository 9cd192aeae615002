//! Prometheus metrics, rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

type Key = (&'static str, String);

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<Key, u64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn help(name: &str) -> &'static str {
    match name {
        "tarn_api_requests_total" => "API requests by operation and outcome (an AWS error code, or OK).",
        "tarn_api_request_duration_seconds" => {
            "API request latency by operation, from body received to response ready."
        }
        "tarn_stream_records_in_total" => "Records accepted into a stream.",
        "tarn_stream_bytes_in_total" => "Data and partition-key bytes accepted into a stream.",
        "tarn_stream_records_out_total" => "Records returned by GetRecords.",
        "tarn_stream_bytes_out_total" => "Data and partition-key bytes returned by GetRecords.",
        "tarn_stream_throttled_records_total" => "Records refused by the per-shard throughput limits.",
        "tarn_stream_iterator_age_milliseconds" => "MillisBehindLatest of the most recent GetRecords on a stream.",
        "tarn_stream_storage_bytes" => "Bytes of a stream's shard logs on disk.",
        "tarn_stream_open_shards" => "Open shards of a stream.",
        "tarn_stream_fsyncs" => "fsyncs of a stream's shard logs that made appends durable, since the server started.",
        "tarn_query_total" => {
            "SQL statements by API (query: /v1/query; athena) and outcome (ok, user_error, internal_error)."
        }
        "tarn_query_duration_seconds" => "Engine time of SQL statements that succeeded, by API.",
        "tarn_query_bytes_scanned_total" => "Bytes of the lake's files read by SQL statements, by API.",
        "tarn_query_plans_reused_total" => "SQL reads that reused the optimized plan kept from an earlier run.",
        _ => "",
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{escaped}\"");
    }
    s
}

impl Metrics {
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], by: u64) {
        *self.inner.lock().expect("metrics lock").counters.entry((name, labels(pairs))).or_default() += by;
    }

    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.inner.lock().expect("metrics lock").gauges.insert((name, labels(pairs)), value);
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut inner = self.inner.lock().expect("metrics lock");
        let h = inner.histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn counter(&self, name: &'static str, pairs: &[(&str, &str)]) -> u64 {
        self.inner.lock().expect("metrics lock").counters.get(&(name, labels(pairs))).copied().unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let inner = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        let mut last = "";
        for ((name, l), v) in &inner.counters {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
                last = name;
            }
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
        for ((name, l), v) in &inner.gauges {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", help(name));
                last = name;
            }
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
        for ((name, l), h) in &inner.histograms {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
                last = name;
            }
            let sep = if l.is_empty() { "" } else { "," };
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let m = Metrics::default();
        m.add("tarn_stream_records_in_total", &[("stream", "a\"b")], 3);
        m.add("tarn_stream_records_in_total", &[("stream", "a\"b")], 2);
        m.set("tarn_stream_open_shards", &[("stream", "x")], 4.0);
        m.observe("tarn_api_request_duration_seconds", &[("operation", "PutRecords")], 0.003);
        let text = m.render();
        assert!(text.contains("tarn_stream_records_in_total{stream=\"a\\\"b\"} 5"), "{text}");
        assert!(text.contains("tarn_stream_open_shards{stream=\"x\"} 4"));
        assert!(text.contains("le=\"0.0025\"} 0"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("tarn_api_request_duration_seconds_count{operation=\"PutRecords\"} 1"));
    }
}
