//! [`ShardLog`]: the append-only log of one shard, a directory of segment files.
//!
//! Invariants:
//! - One writer at a time (the `writer` mutex) encodes and writes batches; offsets are contiguous.
//! - Readers see only records below `durable_end`, which advances only after an fsync covered
//!   them. A record that a crash could still lose is therefore never served, and its offset (and so
//!   its sequence number) can be reused after recovery without anyone having seen it.
//! - A segment is fsynced before the next one is created, so only the newest segment can have a
//!   torn tail; recovery verifies it and truncates at the first incomplete or invalid batch.
//! - Group commit: callers append, then wait in [`ShardLog::sync_to`] (or await
//!   [`ShardLog::durable`], whose fsyncs the log's syncer thread runs). One of them runs the fsync
//!   for everything written so far while the others wait; most find their data already covered.
//!   Under concurrent load (the last fsync had callers waiting on it) the next one starts no
//!   sooner than `sync_interval` after the last one started, so that more appends share it: an
//!   fsync costs the same for one batch as for twenty. A lone writer never waits for the interval.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::codec::{self, BatchHeader, Record, RecordRef};
use crate::direct::Staging;
use crate::error::{Error, IoContext, Result};
use crate::segment::{self, Segment};

/// When a shard log starts a new segment file.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// Roll once the active segment holds this many bytes.
    pub segment_max_bytes: u64,
    /// Roll once the active segment's first record is this old, so retention can drop data in
    /// steps of at most this size.
    pub segment_max_age_ms: i64,
    /// Under concurrent load, the least time from the start of one fsync to the start of the next.
    pub sync_interval: Duration,
    /// Bytes of each shard's newest durable records whose pages stay in the page cache; older
    /// pages are handed back to the kernel (readers that want them read them from disk). Once a
    /// reader has said what it is done with ([`ShardLog::release_cache_before`]: delivery, as it
    /// commits), that reader decides instead, so a delivery running behind never reads from disk.
    /// With direct I/O the window is the memory tail's bound, and holds even then.
    pub cache_window_bytes: u64,
    /// Writes with direct I/O (`O_DIRECT`) where the file system supports it: appends are staged
    /// in memory and written by the sync rounds, readers at the head are served from memory, and
    /// the page cache is left out (no copy into it, no writeback, no pages to release).
    pub direct_io: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_max_bytes: 128 * 1024 * 1024,
            segment_max_age_ms: 60 * 60 * 1000,
            sync_interval: Duration::from_millis(5),
            cache_window_bytes: 128 * 1024 * 1024,
            direct_io: false,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: u64,
    /// The arrival time stamped on every record of the append (never earlier than the last one).
    pub arrival_ms: i64,
    /// One past the last appended offset: pass it to [`ShardLog::sync_to`].
    pub end_offset: u64,
}

/// Records read from the log and the offset to continue from.
#[derive(Debug, Default)]
pub struct ReadResult {
    pub records: Vec<Record>,
    pub next_offset: u64,
}

/// Cached pages behind the window are released once an eighth of the window (at most 8 MiB) more
/// was synced, so that most fsyncs make no extra call.
fn release_step(window: u64) -> u64 {
    (window / 8).clamp(4096, 8 * 1024 * 1024)
}

struct Writer {
    next_offset: u64,
    last_arrival_ms: i64,
    active: Arc<Segment>,
    buf: Vec<u8>,
    /// With direct I/O, the active segment's appended bytes not yet written.
    staging: Option<Staging>,
    /// Bytes appended since the log was opened (all segments).
    appended_bytes: u64,
}

pub(crate) struct SyncState {
    pub(crate) in_progress: bool,
    /// Callers blocked until an fsync covers their records.
    waiting: usize,
    /// When the last fsync started, if others were waiting on it when it ended.
    last_shared: Option<Instant>,
    /// `Writer::appended_bytes` when cached pages behind the window were last released.
    released_at_bytes: u64,
    /// Futures waiting for an fsync ([`ShardLog::durable`]).
    pub(crate) wakers: Vec<Waiter>,
    pub(crate) next_waiter_id: u64,
    /// Whether the thread that runs the futures' fsyncs is alive.
    pub(crate) syncer_running: bool,
}

/// A [`crate::Durable`] future waiting for the records below `end_offset`.
pub(crate) struct Waiter {
    pub id: u64,
    pub end_offset: u64,
    pub waker: Waker,
}

impl SyncState {
    /// How long the next fsync should wait so that more appends share it.
    fn linger(&self, interval: Duration, now: Instant) -> Duration {
        self.last_shared.map_or(Duration::ZERO, |started| (started + interval).saturating_duration_since(now))
    }

    /// Wakes the futures whose records are below `durable_end` (all of them after a failed
    /// fsync: they then find the log poisoned) and forgets them.
    pub(crate) fn wake_durable(&mut self, durable_end: u64, all: bool) {
        self.wakers.retain(|w| {
            let done = all || w.end_offset <= durable_end;
            if done {
                w.waker.wake_by_ref();
            }
            !done
        });
    }
}

pub struct ShardLog {
    dir: PathBuf,
    config: LogConfig,
    writer: Mutex<Writer>,
    segments: RwLock<Vec<Arc<Segment>>>,
    pub(crate) sync_state: Mutex<SyncState>,
    /// Notified when an fsync ends (blocked `sync_to` callers wait on it, and so does the
    /// syncer while a `sync_to` runs an fsync).
    pub(crate) sync_done: Condvar,
    /// Wakes the syncer thread when a future starts waiting.
    pub(crate) syncer_wake: Condvar,
    durable_end: AtomicU64,
    pub(crate) poisoned: AtomicBool,
    fsyncs: AtomicU64,
    /// A reader releases cached pages as it finishes with them; the window no longer applies.
    reader_releases: AtomicBool,
}

impl std::fmt::Debug for ShardLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Makes a directory entry (a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

impl ShardLog {
    /// Opens the log in `dir`, creating it if needed, and recovers it: sealed segments are indexed
    /// from their batch headers, the newest one is verified and a torn tail is cut off.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<ShardLog> {
        let dir = dir.into();
        let fresh = !dir.exists();
        fs::create_dir_all(&dir).at(&dir)?;
        if fresh && let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let mut bases: Vec<u64> = fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment::parse_file_name(&e.file_name().to_string_lossy()))
            .collect();
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let newest = i + 1 == bases.len();
            let path = dir.join(segment::file_name(base));
            let recovered = Segment::open(path, base, newest)?;
            if recovered.padding_only {
                tracing::debug!(path = %recovered.segment.path.display(), "cut the zeros after the last batch");
            } else if recovered.truncated_bytes > 0 {
                tracing::warn!(
                    path = %recovered.segment.path.display(),
                    truncated_bytes = recovered.truncated_bytes,
                    "cut a torn tail left by an unclean shutdown; those records were never acknowledged"
                );
            }
            if let Some(prev) = segments.last() {
                let prev: &Arc<Segment> = prev;
                if prev.end_offset() != base {
                    return Err(Error::Corrupt {
                        path: recovered.segment.path.clone(),
                        position: 0,
                        reason: "segment does not start where the previous one ends",
                    });
                }
            }
            if newest {
                // Whatever survived on disk is made durable before it can be served.
                recovered.segment.file.sync_all().at(&recovered.segment.path)?;
            }
            segments.push(Arc::new(recovered.segment));
        }
        if segments.is_empty() {
            segments.push(Arc::new(Segment::create(&dir, 0, config.direct_io)?));
            sync_dir(&dir)?;
        } else if config.direct_io {
            let newest = segments.pop().expect("at least one segment");
            let mut newest = Arc::into_inner(newest).expect("the segment is not shared yet");
            newest.open_for_direct_appends();
            segments.push(Arc::new(newest));
        }
        let active = segments.last().expect("at least one segment").clone();
        let staging = match active.is_direct() {
            true => Some(Staging::resume(&active.file, active.len()).at(&active.path)?),
            false => None,
        };
        let next_offset = active.end_offset();
        let last_arrival_ms = segments.iter().rev().find_map(|s| s.last_arrival_ms()).unwrap_or(0);
        Ok(ShardLog {
            dir,
            config,
            writer: Mutex::new(Writer {
                next_offset,
                last_arrival_ms,
                active,
                buf: Vec::new(),
                staging,
                appended_bytes: 0,
            }),
            segments: RwLock::new(segments),
            sync_state: Mutex::new(SyncState {
                in_progress: false,
                waiting: 0,
                last_shared: None,
                released_at_bytes: 0,
                wakers: Vec::new(),
                next_waiter_id: 0,
                syncer_running: false,
            }),
            syncer_wake: Condvar::new(),
            sync_done: Condvar::new(),
            durable_end: AtomicU64::new(next_offset),
            poisoned: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            reader_releases: AtomicBool::new(false),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `records` as one batch. They are not durable, nor visible to readers, until
    /// [`ShardLog::sync_to`] with the returned `end_offset` has returned.
    pub fn append(&self, records: &[RecordRef<'_>], now_ms: i64) -> Result<Appended> {
        let mut w = self.writer.lock().expect("writer lock");
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned(self.dir.clone()));
        }
        let arrival_ms = now_ms.max(w.last_arrival_ms);
        if self.should_roll(&w, arrival_ms) {
            self.roll(&mut w)?;
        }
        let base_offset = w.next_offset;
        let count = records.len() as u32;
        let w = &mut *w;
        let total_len = if let Some(staging) = w.staging.as_mut() {
            // Direct I/O: encoded straight into the staging buffer, written by the next sync round.
            let before = staging.buffer().len();
            codec::encode_batch(base_offset, arrival_ms, records, staging.buffer());
            let total_len = staging.buffer().len() - before;
            w.active.appended(&BatchHeader { base_offset, arrival_ms, count, total_len });
            total_len
        } else {
            let mut buf = std::mem::take(&mut w.buf);
            buf.clear();
            codec::encode_batch(base_offset, arrival_ms, records, &mut buf);
            let header = BatchHeader { base_offset, arrival_ms, count, total_len: buf.len() };
            let written = w.active.append(&buf, &header);
            if buf.capacity() <= 8 * 1024 * 1024 {
                w.buf = buf;
            }
            written?;
            header.total_len
        };
        w.next_offset = base_offset + u64::from(count);
        w.last_arrival_ms = arrival_ms;
        w.appended_bytes += total_len as u64;
        Ok(Appended { base_offset, arrival_ms, end_offset: w.next_offset })
    }

    fn should_roll(&self, w: &Writer, now_ms: i64) -> bool {
        if w.active.len() == 0 {
            return false;
        }
        let first = w.active.meta.lock().expect("segment meta lock").first_arrival_ms;
        w.active.len() >= self.config.segment_max_bytes
            || first.is_some_and(|t| now_ms - t >= self.config.segment_max_age_ms)
    }

    /// Seals the active segment (fsync) and starts a new one at the next offset.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        let Writer { active, staging, .. } = w;
        if let Some(staging) = staging {
            if staging.has_new_bytes() {
                active.write_staged(|| staging.take()).inspect_err(|_| self.poison())?;
            }
            active.seal_direct().inspect_err(|_| self.poison())?;
        }
        w.active.file.sync_data().at(&w.active.path).inspect_err(|_| self.poison())?;
        // Everything written so far lives in the segment just synced.
        self.durable_end.fetch_max(w.next_offset, Ordering::AcqRel);
        let next = Arc::new(Segment::create(&self.dir, w.next_offset, self.config.direct_io)?);
        sync_dir(&self.dir)?;
        self.segments.write().expect("segments lock").push(next.clone());
        w.staging = next.is_direct().then(Staging::empty);
        w.active = next;
        Ok(())
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(dir = %self.dir.display(), "fsync failed; the shard log refuses further writes until restart");
    }

    /// Blocks until every record below `end_offset` is on disk. Concurrent callers share fsyncs
    /// (with each other and with [`ShardLog::durable`] futures).
    pub fn sync_to(&self, end_offset: u64) -> Result<()> {
        let mut state = self.sync_state.lock().expect("sync lock");
        loop {
            if let Some(settled) = self.settled(end_offset) {
                return settled;
            }
            if !state.in_progress {
                let (next, result) = self.sync_round(state, true);
                result?;
                state = next;
                continue;
            }
            state.waiting += 1;
            state = self.sync_done.wait(state).expect("sync lock");
            state.waiting -= 1;
        }
    }

    /// Whether the records below `end_offset` are durable (`Ok`) or never will be (`Err`: an
    /// fsync failed); `None` while that is not known yet.
    pub(crate) fn settled(&self, end_offset: u64) -> Option<Result<()>> {
        if self.poisoned.load(Ordering::Acquire) {
            Some(Err(Error::Poisoned(self.dir.clone())))
        } else if self.durable_end.load(Ordering::Acquire) >= end_offset {
            Some(Ok(()))
        } else {
            None
        }
    }

    /// Runs one fsync of everything appended so far (after lingering, under concurrent load, so
    /// that more appends share it) and wakes those it made durable. `in_progress` is set for its
    /// duration. `caller_waits`: the caller is a blocked `sync_to`, not the syncer thread.
    pub(crate) fn sync_round<'a>(
        &'a self,
        mut state: MutexGuard<'a, SyncState>,
        caller_waits: bool,
    ) -> (MutexGuard<'a, SyncState>, Result<()>) {
        state.in_progress = true;
        let linger = state.linger(self.config.sync_interval, Instant::now());
        drop(state);
        if !linger.is_zero() {
            std::thread::sleep(linger);
        }
        let started = Instant::now();
        let mut w = self.writer.lock().expect("writer lock");
        let (file_segment, upto, synced_len, appended) =
            (w.active.clone(), w.next_offset, w.active.len(), w.appended_bytes);
        // With direct I/O, what was staged is written first; the writer lock is let go once it is
        // taken, so appends go on while it is written.
        let written = match w.staging.as_ref().is_some_and(|s| s.has_new_bytes()) {
            true => file_segment
                .write_staged(move || {
                    let staged = w.staging.as_mut().expect("staging checked above").take();
                    drop(w);
                    staged
                })
                .map(drop),
            false => {
                drop(w);
                Ok(())
            }
        };
        let result = written.and_then(|()| file_segment.file.sync_data().at(&file_segment.path));
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut state = self.sync_state.lock().expect("sync lock");
        state.in_progress = false;
        let parties = state.waiting + state.wakers.len() + usize::from(caller_waits);
        state.last_shared = (parties > 1).then_some(started);
        if let Err(e) = result {
            self.poison();
            self.sync_done.notify_all();
            state.wake_durable(0, true);
            return (state, Err(e));
        }
        self.durable_end.fetch_max(upto, Ordering::AcqRel);
        // The memory tail of direct I/O is bounded by the window whatever readers release.
        let release = appended >= state.released_at_bytes + release_step(self.config.cache_window_bytes)
            && (file_segment.is_direct() || !self.reader_releases.load(Ordering::Relaxed));
        if release {
            state.released_at_bytes = appended;
        }
        self.sync_done.notify_all();
        state.wake_durable(upto, false);
        if release {
            // Outside the lock: the waiters just woken need it, and this can take a while.
            drop(state);
            self.release_behind_window(&file_segment, synced_len);
            state = self.sync_state.lock().expect("sync lock");
        }
        (state, Ok(()))
    }

    /// Releases the cached pages of everything more than the cache window behind `synced_len`
    /// bytes of `active` (all durable: older segments were synced when they were sealed).
    fn release_behind_window(&self, active: &Arc<Segment>, synced_len: u64) {
        let mut keep = self.config.cache_window_bytes.saturating_sub(synced_len);
        if keep == 0 {
            active.release_cache(synced_len - self.config.cache_window_bytes);
        }
        let segments = self.snapshot();
        for segment in segments.iter().rev().filter(|s| !Arc::ptr_eq(s, active)) {
            let len = segment.len();
            if segment.released_len() >= len {
                break; // older segments were released before this one
            }
            segment.release_cache(len.saturating_sub(keep));
            keep = keep.saturating_sub(len);
        }
    }

    /// A reader that will not read the records below `offset` again (delivery, once they are
    /// committed to the lake) lets their cached pages go back to the kernel. Records that are
    /// not durable yet keep theirs.
    pub fn release_cache_before(&self, offset: u64) {
        self.reader_releases.store(true, Ordering::Relaxed);
        let offset = offset.min(self.durable_end());
        for segment in self.snapshot().iter().rev() {
            if segment.base_offset >= offset {
                continue;
            }
            let len = segment.len();
            if segment.released_len() >= len {
                break;
            }
            if segment.end_offset() <= offset {
                segment.release_cache(len);
            } else {
                segment.release_cache(segment.seek_offset(offset));
            }
        }
    }

    /// Whether appends are written with direct I/O (asked for, and the file system allows it).
    pub fn direct_io(&self) -> bool {
        self.writer.lock().expect("writer lock").staging.is_some()
    }

    /// Bytes of the log whose pages (with direct I/O: memory tail) were not let go.
    pub fn cached_bytes(&self) -> u64 {
        self.snapshot().iter().map(|s| s.len().saturating_sub(s.released_len())).sum()
    }

    /// fsyncs run so far for appends (not counting those that seal a segment).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// One past the last record written, durable or not.
    pub fn written_end(&self) -> u64 {
        self.writer.lock().expect("writer lock").next_offset
    }

    /// One past the last durable record: the end that readers see.
    pub fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    /// The oldest offset still retained (the trim horizon).
    pub fn start_offset(&self) -> u64 {
        self.segments.read().expect("segments lock")[0].base_offset
    }

    /// Arrival time of the newest record written, if any.
    pub fn last_arrival_ms(&self) -> Option<i64> {
        let w = self.writer.lock().expect("writer lock");
        (w.next_offset > 0).then_some(w.last_arrival_ms)
    }

    fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments.read().expect("segments lock").clone()
    }

    /// Reads durable records from `from` on: at most `max_records`, and no more than `max_bytes` of
    /// keys and data past the first record. Offsets below the trim horizon read from the horizon.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<ReadResult> {
        let stop = self.durable_end();
        let segments = self.snapshot();
        let from = from.max(segments[0].base_offset);
        if from >= stop {
            // Nothing durable to read (a reader polling at the head): the files are not touched.
            return Ok(ReadResult { records: Vec::new(), next_offset: from });
        }
        let first = segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
        let mut records = Vec::new();
        let mut bytes_read = 0usize;
        if max_records > 0 {
            for seg in &segments[first..] {
                if seg.base_offset >= stop {
                    break;
                }
                if seg.read(from, stop, max_records, max_bytes, &mut records, &mut bytes_read)? {
                    break;
                }
            }
        }
        let next_offset = records.last().map_or(from, |r| r.offset + 1);
        Ok(ReadResult { records, next_offset })
    }

    /// The offset of the first retained record that arrived at or after `ts_ms`, or the durable
    /// end when none did.
    pub fn offset_at_time(&self, ts_ms: i64) -> Result<u64> {
        let stop = self.durable_end();
        for seg in self.snapshot() {
            if seg.last_arrival_ms().is_some_and(|last| last >= ts_ms)
                && let Some(offset) = seg.offset_at_time(ts_ms)?
            {
                return Ok(offset.min(stop));
            }
        }
        Ok(stop)
    }

    /// Drops every whole segment whose newest record arrived before `cutoff_ms`. An expired active
    /// segment is sealed first, so a quiet shard still drops its old data. Returns segments removed.
    pub fn trim(&self, cutoff_ms: i64) -> Result<usize> {
        let mut w = self.writer.lock().expect("writer lock");
        if w.active.len() > 0 && w.active.last_arrival_ms().is_some_and(|t| t < cutoff_ms) {
            self.roll(&mut w)?;
        }
        let removed: Vec<Arc<Segment>> = {
            let mut segments = self.segments.write().expect("segments lock");
            let keep_from = segments
                .iter()
                .position(|s| Arc::ptr_eq(s, &w.active) || s.last_arrival_ms().is_some_and(|t| t >= cutoff_ms))
                .unwrap_or(segments.len() - 1);
            segments.drain(..keep_from).collect()
        };
        drop(w);
        for seg in &removed {
            fs::remove_file(&seg.path).at(&seg.path)?;
        }
        if !removed.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(removed.len())
    }

    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.snapshot().iter().map(|s| s.len()).sum()
    }
}
