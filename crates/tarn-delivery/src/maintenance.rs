//! Table upkeep beside a delivery, on its own thread so flushes never wait for it: compaction
//! (every `min_files` flushes, when no folder can have gained more files meanwhile), snapshot
//! expiry and raw-backup expiry (every ten minutes). Compaction commits rebase on deliveries that
//! commit while it rewrites (`tarn-lake`'s compact), so the two never block each other.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tarn_lake::Lake;
use tarn_metrics::Metrics;
use tarn_streams::Streams;

use crate::backup;
use crate::worker::{DeliverySpec, backup_root};

/// How often raw backups and table snapshots are checked for expiry.
const EXPIRY_EVERY: Duration = Duration::from_secs(600);

/// The upkeep thread of one delivery; told of each committed flush.
pub(crate) struct Maintenance {
    flushed: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub(crate) fn start(
        streams: Arc<Streams>,
        metrics: Arc<Metrics>,
        spec: DeliverySpec,
    ) -> std::io::Result<Maintenance> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("upkeep-{}.{}", spec.layer, spec.name))
            .spawn(move || run(&streams, &metrics, &spec, &rx))?;
        Ok(Maintenance { flushed: Some(tx), thread: Some(thread) })
    }

    /// A flush committed.
    pub(crate) fn flushed(&self) {
        if let Some(tx) = &self.flushed {
            let _ = tx.send(());
        }
    }

    /// Stops after the current task and waits for it.
    pub(crate) fn stop(mut self) {
        self.flushed.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(streams: &Streams, metrics: &Metrics, spec: &DeliverySpec, flushed: &Receiver<()>) {
    let table = format!("{}.{}", spec.layer, spec.name);
    let labels = [("table", table.as_str())];
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return tracing::error!(error = %e, table = %table, "table upkeep cannot start a runtime"),
    };
    let mut lake: Option<Lake> = None;
    let mut flushes = 0usize;
    let mut next_expiry = Instant::now() + Duration::from_secs(5);
    loop {
        match flushed.recv_timeout(next_expiry.saturating_duration_since(Instant::now())) {
            Ok(()) => flushes += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if lake.is_none() {
            match runtime.block_on(Lake::open_with(&spec.lake_dir, Some(spec.store.clone()))) {
                Ok(l) => lake = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, table = %table, "table upkeep cannot open the lake yet");
                    continue;
                }
            }
        }
        let lake = lake.as_ref().expect("opened above");
        if let Some(policy) = spec.compaction
            && flushes >= policy.min_files
        {
            flushes = 0;
            let started = Instant::now();
            match runtime.block_on(lake.compact(&spec.layer, &spec.name, policy)) {
                Ok(None) => {}
                Ok(Some(done)) => {
                    metrics.add("tarn_compaction_runs_total", &labels, 1);
                    metrics.add("tarn_compaction_files_rewritten_total", &labels, done.files_in as u64);
                    metrics.add("tarn_compaction_bytes_rewritten_total", &labels, done.bytes_in);
                    tracing::info!(
                        table = %table,
                        folders = done.folders,
                        files_in = done.files_in,
                        files_out = done.files_out,
                        rows = done.rows,
                        ms = started.elapsed().as_millis() as u64,
                        "compacted"
                    );
                }
                Err(tarn_lake::Error::Conflict(m)) => {
                    tracing::info!(table = %table, reason = %m, "compaction deferred")
                }
                Err(e) => tracing::warn!(error = %e, table = %table, "compaction failed"),
            }
        }
        if Instant::now() < next_expiry {
            continue;
        }
        next_expiry = Instant::now() + EXPIRY_EVERY;
        if spec.backup_days > 0 {
            match runtime.block_on(backup::expire(&spec.store, &backup_root(spec), streams.now(), spec.backup_days)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(table = %table, files = n, "expired raw backup files"),
                Err(e) => tracing::warn!(table = %table, error = %e, "raw backup expiry failed"),
            }
        }
        let Some(keep) = spec.snapshot_retention else { continue };
        match runtime.block_on(lake.existing(&spec.layer, &spec.name)) {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(table = %table, error = %e, "snapshot expiry cannot load the table");
                continue;
            }
        }
        let older_than = streams.now() - keep.as_millis() as i64;
        match runtime.block_on(lake.expire(&spec.layer, &spec.name, older_than, 1)) {
            Ok(e) if e.snapshots == 0 => {}
            Ok(e) => {
                metrics.add("tarn_lake_files_deleted_total", &labels, e.files_deleted as u64);
                tracing::info!(table = %table, snapshots = e.snapshots, files = e.files_deleted, "expired snapshots");
            }
            Err(e) => tracing::warn!(table = %table, error = %e, "snapshot expiry failed"),
        }
    }
}
