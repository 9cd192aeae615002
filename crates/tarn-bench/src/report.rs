//! Latency percentiles.

use std::time::Duration;

#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn print(&self, label: &str) {
        let mut sorted = self.0.clone();
        sorted.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label} ms      p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            ms(Self::percentile(&sorted, 50.0)),
            ms(Self::percentile(&sorted, 99.0)),
            ms(Self::percentile(&sorted, 99.9)),
            ms(sorted.last().copied().unwrap_or_default())
        );
    }
}
