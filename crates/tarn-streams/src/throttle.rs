//! Token buckets for AWS's per-shard throughput limits, used only when they are switched on.

use std::sync::Mutex;

#[derive(Debug)]
struct Bucket {
    per_second: f64,
    tokens: f64,
    last_ms: i64,
}

impl Bucket {
    fn new(per_second: f64) -> Bucket {
        Bucket { per_second, tokens: per_second, last_ms: i64::MIN }
    }

    fn refill(&mut self, now_ms: i64) {
        if self.last_ms != i64::MIN {
            let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        }
        self.last_ms = now_ms;
    }
}

/// The write and read budgets of one shard.
#[derive(Debug)]
pub struct ShardThrottle {
    write: Mutex<(Bucket, Bucket)>,
    read: Mutex<(Bucket, Bucket)>,
}

impl Default for ShardThrottle {
    fn default() -> Self {
        ShardThrottle {
            write: Mutex::new((Bucket::new(1000.0), Bucket::new(1024.0 * 1024.0))),
            read: Mutex::new((Bucket::new(5.0), Bucket::new(2.0 * 1024.0 * 1024.0))),
        }
    }
}

impl ShardThrottle {
    /// Takes one record of `bytes` from the write budget; false when it is spent.
    pub fn admit_write(&self, bytes: usize, now_ms: i64) -> bool {
        let mut g = self.write.lock().expect("throttle lock");
        let (records, volume) = &mut *g;
        records.refill(now_ms);
        volume.refill(now_ms);
        if records.tokens < 1.0 || volume.tokens < bytes as f64 {
            return false;
        }
        records.tokens -= 1.0;
        volume.tokens -= bytes as f64;
        true
    }

    /// Takes one GetRecords call from the read budget; false when calls or bytes are spent.
    pub fn admit_read(&self, now_ms: i64) -> bool {
        let mut g = self.read.lock().expect("throttle lock");
        let (calls, volume) = &mut *g;
        calls.refill(now_ms);
        volume.refill(now_ms);
        if calls.tokens < 1.0 || volume.tokens <= 0.0 {
            return false;
        }
        calls.tokens -= 1.0;
        true
    }

    /// Charges bytes returned by a read; the debt makes the next reads wait, as AWS does.
    pub fn charge_read(&self, bytes: usize) {
        self.read.lock().expect("throttle lock").1.tokens -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_limited_to_a_thousand_records_a_second() {
        let t = ShardThrottle::default();
        let admitted = (0..1500).filter(|_| t.admit_write(10, 1_000)).count();
        assert_eq!(admitted, 1000);
        assert!(!t.admit_write(10, 1_000));
        assert!(t.admit_write(10, 1_500), "half a second refills 500 records");
    }

    #[test]
    fn a_large_read_is_paid_for_by_later_calls() {
        let t = ShardThrottle::default();
        assert!(t.admit_read(0));
        t.charge_read(10 * 1024 * 1024);
        assert!(!t.admit_read(1000));
        assert!(t.admit_read(5000));
    }
}
