//! PutRecord and PutRecords: route by hash key, append one batch per shard, then wait for the
//! fsync that covers it (blocking, or as a future). Nothing is acknowledged before it is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tarn_log::{Durable, RecordRef, ShardLog};

use crate::error::{Error, ErrorKind, Result};
use crate::hash_key::hash_partition_keys;
use crate::model::{StreamStatus, shard_id};
use crate::sequence::SequenceNumber;
use crate::service::Streams;

/// One record to write.
#[derive(Debug, Clone, Copy)]
pub struct PutEntry<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<u128>,
    pub data: &'a [u8],
}

/// Why one entry of a PutRecords call was not written (the others may have been).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub code: &'static str,
    pub message: String,
}

pub type EntryResult = std::result::Result<SequenceNumber, EntryError>;

/// Renders a blob the way AWS's validation messages do.
pub fn java_buffer(len: usize) -> String {
    format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]")
}

/// Records written to their shards' logs and not yet durable: acknowledge them only once
/// [`Written::wait`] or [`Written::durable`] has returned `Ok`.
#[must_use = "written records are not durable until waited for"]
pub struct Written {
    logs: Vec<(Arc<ShardLog>, u64)>,
}

impl Written {
    /// Blocks until every written record is durable.
    pub fn wait(self) -> Result<()> {
        for (log, end) in self.logs {
            log.sync_to(end)?;
        }
        Ok(())
    }

    /// Resolves once every written record is durable, without blocking a thread: the shards'
    /// fsyncs run at the same time, on their logs' syncer threads.
    pub fn durable(self) -> impl Future<Output = Result<()>> + Send + 'static {
        let mut waiting: Vec<Durable> = self.logs.iter().map(|(log, end)| log.durable(*end)).collect();
        std::future::poll_fn(move |cx| {
            let mut i = 0;
            while i < waiting.len() {
                match Pin::new(&mut waiting[i]).poll(cx) {
                    Poll::Ready(Ok(())) => drop(waiting.swap_remove(i)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => i += 1,
                }
            }
            if waiting.is_empty() { Poll::Ready(Ok(())) } else { Poll::Pending }
        })
    }
}

impl Streams {
    /// Writes `entries` and returns, in request order, each one's sequence number (its shard is
    /// inside it) or the reason it was refused. Returns once every written entry is durable.
    pub fn put_records(&self, stream_name: &str, entries: &[PutEntry<'_>]) -> Result<Vec<EntryResult>> {
        let (results, written) = self.write_records(stream_name, entries)?;
        written.wait()?;
        Ok(results)
    }

    /// [`Streams::put_records`] up to the fsyncs: the entries are written (or refused), and the
    /// returned [`Written`] says when they are durable.
    pub fn write_records(&self, stream_name: &str, entries: &[PutEntry<'_>]) -> Result<(Vec<EntryResult>, Written)> {
        let stream = self.stream(stream_name)?;
        let now = self.now();
        let st = stream.read();
        if st.meta.status(now) == StreamStatus::Creating {
            return Err(Error::not_found(self.not_found_message(stream_name)));
        }
        let max_record = st.meta.max_record_size_kib as usize * 1024;
        let mut total = 0usize;
        for (i, e) in entries.iter().enumerate() {
            let size = e.data.len() + e.partition_key.len();
            if size > max_record {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value '{}' at 'records.{}.member.data' failed to satisfy \
                     constraint: Member must have length less than or equal to {}",
                    java_buffer(e.data.len()),
                    i + 1,
                    max_record.saturating_sub(e.partition_key.len())
                )));
            }
            total += size;
        }
        if total > self.config.max_put_records_bytes {
            return Err(Error::invalid(format!(
                "Records size exceeds {} MB limit",
                self.config.max_put_records_bytes / (1024 * 1024)
            )));
        }

        // Group entries by the shard their hash key falls in.
        // Partition keys are hashed only where no explicit hash key overrides them.
        let mut hashes = Vec::with_capacity(entries.len());
        hash_partition_keys(
            entries.iter().filter(|e| e.explicit_hash_key.is_none()).map(|e| e.partition_key),
            &mut hashes,
        );
        let mut hashes = hashes.into_iter();
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let hash = e.explicit_hash_key.unwrap_or_else(|| hashes.next().expect("one hash per key without one"));
            let shard = st.route(hash);
            match groups.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, members)) => members.push(i),
                None => groups.push((shard, vec![i])),
            }
        }

        let mut results: Vec<Option<EntryResult>> = vec![None; entries.len()];
        let mut pending: Vec<(Arc<ShardLog>, u64)> = Vec::with_capacity(groups.len());
        let mut records: Vec<RecordRef<'_>> = Vec::new();
        for (shard, members) in &groups {
            let log = st.logs.get(shard).expect("every routed shard has a log");
            let mut admitted = Vec::with_capacity(members.len());
            for &i in members {
                let e = &entries[i];
                if self.config.shard_throughput_limits {
                    let throttle = &st.throttles[shard];
                    if !throttle.admit_write(e.data.len() + e.partition_key.len(), now) {
                        results[i] = Some(Err(EntryError {
                            code: ErrorKind::ProvisionedThroughputExceeded.aws_name(),
                            message: format!(
                                "Rate exceeded for shard {} in stream {stream_name} under account {}.",
                                shard_id(*shard),
                                self.config.account_id
                            ),
                        }));
                        continue;
                    }
                }
                admitted.push(i);
            }
            if admitted.is_empty() {
                continue;
            }
            records.clear();
            records.extend(
                admitted
                    .iter()
                    .map(|&i| RecordRef { partition_key: entries[i].partition_key.as_bytes(), data: entries[i].data }),
            );
            let appended = log.append(&records, now)?;
            for (k, &i) in admitted.iter().enumerate() {
                results[i] = Some(Ok(st.meta.record_sequence(*shard, appended.base_offset + k as u64)));
            }
            pending.push((log.clone(), appended.end_offset));
        }
        // Release the stream so resharding is not held up by fsyncs.
        drop(st);
        let results = results.into_iter().map(|r| r.expect("every entry has a result")).collect();
        Ok((results, Written { logs: pending }))
    }

    /// PutRecord: a single entry, throttling reported as an error of the call.
    pub fn put_record(&self, stream_name: &str, entry: PutEntry<'_>) -> Result<SequenceNumber> {
        match self.put_records(stream_name, &[entry])?.pop().expect("one result") {
            Ok(seq) => Ok(seq),
            Err(e) => Err(Error::new(ErrorKind::ProvisionedThroughputExceeded, e.message)),
        }
    }
}
