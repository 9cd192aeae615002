//! One segment file: a run of batches starting at `base_offset`, with a sparse in-memory index.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::codec::{self, BATCH_HEADER_LEN, BODY_PREFIX_LEN, BatchHeader, DecodeError, Record};
use crate::direct::{self, ALIGN, Staged, Tail};
use crate::error::{Error, IoContext, Result};

/// Largest single read from a segment file.
const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// A new index entry is added once this many bytes were written since the last one.
const INDEX_INTERVAL_BYTES: u64 = 16 * 1024;

/// Where a batch starts: its first offset, its byte position and its arrival time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: i64,
}

#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub index: Vec<IndexEntry>,
    /// One past the last record's offset.
    pub end_offset: u64,
    pub first_arrival_ms: Option<i64>,
    pub last_arrival_ms: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    /// Reads, buffered writes, fsyncs and truncation.
    pub file: File,
    /// The same file opened for direct I/O, when the log writes that way and the file system
    /// supports it: appends are then staged in memory and written by sync rounds.
    direct: Option<File>,
    /// Serialises direct writes: a sync round and a roll may both write the last block.
    direct_writes: Mutex<()>,
    /// Bytes of complete batches appended (staged ones included, with direct I/O).
    pub written_len: AtomicU64,
    /// Bytes readers may read: with direct I/O, those the sync rounds have written; otherwise
    /// all of `written_len` (readers stop at the log's durable end anyway).
    flushed_len: AtomicU64,
    /// With direct I/O, the newest written bytes, from which readers at the head are served.
    tail: Mutex<Tail>,
    /// Bytes from the start whose cached pages (and memory tail) were let go.
    released_len: AtomicU64,
    pub meta: Mutex<SegmentMeta>,
}

pub(crate) fn file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

/// What a recovery scan found in a segment.
pub(crate) struct Recovered {
    pub segment: Segment,
    /// Bytes cut from the tail because they did not form a complete, valid batch.
    pub truncated_bytes: u64,
    /// Whether those bytes were only the zeros a direct write pads its last block with.
    pub padding_only: bool,
}

impl Segment {
    /// A new, empty segment file; `direct`: written with direct I/O where the file system allows.
    pub fn create(dir: &Path, base_offset: u64, direct: bool) -> Result<Segment> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).at(&path)?;
        let mut segment = Segment::new(base_offset, path, file, 0, Vec::new(), base_offset, None, None);
        if direct {
            segment.direct = direct::open_direct(&segment.path);
        }
        Ok(segment)
    }

    /// Opens a direct-I/O handle for the appends to come (the newest segment after recovery).
    pub fn open_for_direct_appends(&mut self) {
        self.direct = direct::open_direct(&self.path);
    }

    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        base_offset: u64,
        path: PathBuf,
        file: File,
        len: u64,
        index: Vec<IndexEntry>,
        end_offset: u64,
        first_arrival_ms: Option<i64>,
        last_arrival_ms: Option<i64>,
    ) -> Segment {
        Segment {
            base_offset,
            path,
            file,
            direct: None,
            direct_writes: Mutex::new(()),
            written_len: AtomicU64::new(len),
            flushed_len: AtomicU64::new(len),
            tail: Mutex::new(Tail::default()),
            released_len: AtomicU64::new(0),
            meta: Mutex::new(SegmentMeta { index, end_offset, first_arrival_ms, last_arrival_ms }),
        }
    }

    /// Opens an existing segment and rebuilds its index by walking the batch headers.
    /// With `verify`, every batch's checksum is checked and the file is truncated at the first
    /// batch that is incomplete or invalid: that is how a torn tail left by a crash is removed.
    /// Without it (sealed segments, fsynced before the next one was created) only headers are read.
    pub fn open(path: PathBuf, base_offset: u64, verify: bool) -> Result<Recovered> {
        let file = OpenOptions::new().read(true).write(true).open(&path).at(&path)?;
        let file_len = file.metadata().at(&path)?.len();
        let mut index = Vec::new();
        let mut position = 0u64;
        let mut end_offset = base_offset;
        let mut first_arrival = None;
        let mut last_arrival = None;
        let mut last_indexed: Option<u64> = None;
        let mut prefix = [0u8; BATCH_HEADER_LEN + BODY_PREFIX_LEN];
        let mut body = Vec::new();
        while position < file_len {
            let remaining = file_len - position;
            if remaining < prefix.len() as u64 {
                break;
            }
            file.read_exact_at(&mut prefix, position).at(&path)?;
            let header = match codec::peek_header(&prefix) {
                Ok(h) => h,
                Err(_) => break,
            };
            if header.total_len as u64 > remaining || header.base_offset != end_offset {
                break;
            }
            if verify {
                body.resize(header.total_len, 0);
                file.read_exact_at(&mut body, position).at(&path)?;
                if codec::check_batch(&body).is_err() {
                    break;
                }
            }
            if last_indexed.is_none_or(|at| position - at >= INDEX_INTERVAL_BYTES) {
                index.push(IndexEntry { offset: header.base_offset, position, arrival_ms: header.arrival_ms });
                last_indexed = Some(position);
            }
            first_arrival.get_or_insert(header.arrival_ms);
            last_arrival = Some(header.arrival_ms);
            end_offset = header.end_offset();
            position += header.total_len as u64;
        }
        let truncated_bytes = file_len - position;
        let mut padding_only = false;
        if truncated_bytes > 0 {
            if !verify {
                return Err(Error::Corrupt { path, position, reason: "sealed segment does not end on a valid batch" });
            }
            if truncated_bytes < ALIGN as u64 && (position + truncated_bytes).is_multiple_of(ALIGN as u64) {
                let mut rest = vec![0u8; truncated_bytes as usize];
                file.read_exact_at(&mut rest, position).at(&path)?;
                padding_only = rest.iter().all(|&b| b == 0);
            }
            file.set_len(position).at(&path)?;
            file.sync_all().at(&path)?;
        }
        let segment = Segment::new(base_offset, path, file, position, index, end_offset, first_arrival, last_arrival);
        Ok(Recovered { segment, truncated_bytes, padding_only })
    }

    pub fn len(&self) -> u64 {
        self.written_len.load(Ordering::Acquire)
    }

    /// Bytes readers may read (see `flushed_len`).
    fn readable_len(&self) -> u64 {
        if self.direct.is_some() { self.flushed_len.load(Ordering::Acquire) } else { self.len() }
    }

    pub fn end_offset(&self) -> u64 {
        self.meta.lock().expect("segment meta lock").end_offset
    }

    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.meta.lock().expect("segment meta lock").last_arrival_ms
    }

    /// Writes one encoded batch at the end of the file. Only the shard's single writer calls this.
    pub fn append(&self, batch: &[u8], header: &BatchHeader) -> Result<()> {
        self.file.write_all_at(batch, self.len()).at(&self.path)?;
        self.appended(header);
        Ok(())
    }

    /// Takes note of a batch of `header.total_len` bytes appended at the end (written, or staged
    /// for a direct write). Only the shard's single writer calls this.
    pub fn appended(&self, header: &BatchHeader) {
        let position = self.len();
        let mut meta = self.meta.lock().expect("segment meta lock");
        let due = meta.index.last().is_none_or(|e| position - e.position >= INDEX_INTERVAL_BYTES);
        if due {
            meta.index.push(IndexEntry { offset: header.base_offset, position, arrival_ms: header.arrival_ms });
        }
        meta.end_offset = header.end_offset();
        meta.first_arrival_ms.get_or_insert(header.arrival_ms);
        meta.last_arrival_ms = Some(header.arrival_ms);
        drop(meta);
        self.written_len.store(position + header.total_len as u64, Ordering::Release);
    }

    /// Writes staged bytes with direct I/O and keeps them in the memory tail. `take` runs under
    /// the caller's writer lock and hands out what to write; this segment's direct writes are
    /// ordered as their bytes were taken (a later write may rewrite an earlier one's last block).
    pub fn write_staged(&self, take: impl FnOnce() -> Staged) -> Result<u64> {
        let direct = self.direct.as_ref().expect("staged bytes belong to a direct segment");
        let order = self.direct_writes.lock().expect("direct write lock");
        let staged = take();
        let end = staged.end();
        let (start, chunk) = staged.write(direct).at(&self.path)?;
        self.tail.lock().expect("tail lock").push(start, chunk);
        self.flushed_len.fetch_max(end, Ordering::AcqRel);
        drop(order);
        Ok(end)
    }

    /// Seals a direct segment after its last write: the zeros that padded its last block go, so
    /// the file ends on its last batch. Waits for a sync round still writing.
    pub fn seal_direct(&self) -> Result<()> {
        let _order = self.direct_writes.lock().expect("direct write lock");
        self.file.set_len(self.len()).at(&self.path)
    }

    /// Hands the cached pages of the file's first `upto` bytes back to the kernel (they are read
    /// from disk if anyone reads them again). Only durable bytes may be given: the pages must be
    /// clean, or the kernel would first start writing them. The kernel's next page allocations,
    /// the log's own writes among them, then reuse these pages: on a VM that returns idle memory to
    /// its host, a page never touched since costs three to four times as much to write.
    pub fn release_cache(&self, upto: u64) {
        let upto = upto.min(self.readable_len());
        let from = self.released_len.fetch_max(upto, Ordering::AcqRel);
        if upto <= from {
            return;
        }
        if self.direct.is_some() {
            self.tail.lock().expect("tail lock").drop_before(upto);
        }
        // Advice only: a failure costs memory, never data.
        if let Err(e) =
            rustix::fs::fadvise(&self.file, from, std::num::NonZeroU64::new(upto - from), rustix::fs::Advice::DontNeed)
        {
            tracing::debug!(path = %self.path.display(), error = %e, "could not release cached pages");
        }
    }

    pub fn released_len(&self) -> u64 {
        self.released_len.load(Ordering::Acquire)
    }

    /// The byte position of the indexed batch at or before `offset`: everything before it holds
    /// only smaller offsets.
    pub fn seek_offset(&self, offset: u64) -> u64 {
        let meta = self.meta.lock().expect("segment meta lock");
        let i = meta.index.partition_point(|e| e.offset <= offset);
        if i == 0 { 0 } else { meta.index[i - 1].position }
    }

    /// The byte position of the last indexed batch that arrived before `ts_ms`.
    fn seek_time(&self, ts_ms: i64) -> u64 {
        let meta = self.meta.lock().expect("segment meta lock");
        let i = meta.index.partition_point(|e| e.arrival_ms < ts_ms);
        if i == 0 { 0 } else { meta.index[i - 1].position }
    }

    /// Reads records with offsets in `[from, stop)`, at most `max_records` of them and, after the
    /// first, no more than `max_bytes` of data and keys. Returns whether the read stopped on a limit.
    pub fn read(
        &self,
        from: u64,
        stop: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Record>,
        bytes_read: &mut usize,
    ) -> Result<bool> {
        let end = self.readable_len();
        let mut position = self.seek_offset(from);
        while position < end {
            // Read the budget in chunks of at most READ_CHUNK_BYTES (so a small answer does not
            // pay for a 10 MiB read), each holding at least its first batch whole; batches are
            // then decoded in place from the chunk.
            let want = (max_bytes.saturating_sub(*bytes_read) + 64 * 1024).clamp(64 * 1024, READ_CHUNK_BYTES) as u64;
            let prefix = (BATCH_HEADER_LEN + BODY_PREFIX_LEN).min((end - position) as usize);
            let mut chunk = self.read_chunk(position, prefix, want.min(end - position) as usize)?;
            match codec::peek_header(&chunk) {
                Ok(h) if h.total_len > chunk.len() => chunk = self.read_chunk(position, h.total_len, h.total_len)?,
                Ok(_) => {}
                Err(DecodeError::Incomplete { .. }) => {
                    return Err(self.corrupt(position, "short batch header"));
                }
                Err(DecodeError::Corrupt(reason)) => return Err(self.corrupt(position, reason)),
            }
            let mut at = 0usize;
            while at < chunk.len() {
                let rest = chunk.slice(at..);
                let header = match codec::peek_header(&rest) {
                    Ok(h) if h.total_len <= rest.len() => h,
                    Ok(_) | Err(DecodeError::Incomplete { .. }) => break,
                    Err(DecodeError::Corrupt(reason)) => {
                        return Err(self.corrupt(position + at as u64, reason));
                    }
                };
                if header.base_offset >= stop {
                    return Ok(false);
                }
                if header.end_offset() > from {
                    let batch = rest.slice(..header.total_len);
                    if self.take_batch(
                        &batch,
                        position + at as u64,
                        from,
                        stop,
                        max_records,
                        max_bytes,
                        out,
                        bytes_read,
                    )? {
                        return Ok(true);
                    }
                }
                at += header.total_len;
            }
            position += at as u64;
        }
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    fn take_batch(
        &self,
        batch: &Bytes,
        position: u64,
        from: u64,
        stop: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Record>,
        bytes_read: &mut usize,
    ) -> Result<bool> {
        let mut decoded = Vec::new();
        codec::decode_batch(batch, from, &mut decoded).map_err(|e| match e {
            DecodeError::Corrupt(reason) => self.corrupt(position, reason),
            DecodeError::Incomplete { .. } => self.corrupt(position, "batch shorter than its header says"),
        })?;
        for record in decoded {
            if record.offset >= stop || out.len() >= max_records {
                return Ok(true);
            }
            let size = record.data.len() + record.partition_key.len();
            if !out.is_empty() && *bytes_read + size > max_bytes {
                return Ok(true);
            }
            *bytes_read += size;
            out.push(record);
        }
        Ok(out.len() >= max_records)
    }

    /// Finds the offset of the first record that arrived at or after `ts_ms`, if any is in this segment.
    pub fn offset_at_time(&self, ts_ms: i64) -> Result<Option<u64>> {
        let end = self.readable_len();
        let mut position = self.seek_time(ts_ms);
        let mut prefix = [0u8; BATCH_HEADER_LEN + BODY_PREFIX_LEN];
        while position < end {
            self.file.read_exact_at(&mut prefix, position).at(&self.path)?;
            let header = codec::peek_header(&prefix).map_err(|e| match e {
                DecodeError::Corrupt(reason) => self.corrupt(position, reason),
                DecodeError::Incomplete { .. } => self.corrupt(position, "short batch header"),
            })?;
            if header.arrival_ms >= ts_ms {
                return Ok(Some(header.base_offset));
            }
            position += header.total_len as u64;
        }
        Ok(None)
    }

    /// The bytes from `position` on, at least `min_len` and at most `max_len` of them: from the
    /// memory tail where it holds them, otherwise read from the file.
    fn read_chunk(&self, position: u64, min_len: usize, max_len: usize) -> Result<Bytes> {
        if self.direct.is_some()
            && let Some(bytes) = self.tail.lock().expect("tail lock").read(position, min_len, max_len)
        {
            return Ok(bytes);
        }
        self.read_file(position, max_len)
    }

    /// Reads `len` bytes at `position` into a fresh buffer, without zeroing it first.
    fn read_file(&self, position: u64, len: usize) -> Result<Bytes> {
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            let at = position + buf.len() as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(&mut buf), at) {
                Ok(0) => {
                    let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the segment ended mid-read");
                    return Err(eof).at(&self.path);
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(std::io::Error::from(e)).at(&self.path),
            }
        }
        Ok(Bytes::from(buf))
    }

    fn corrupt(&self, position: u64, reason: &'static str) -> Error {
        Error::Corrupt { path: self.path.clone(), position, reason }
    }
}
