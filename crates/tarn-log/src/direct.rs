//! Direct I/O for a segment's writes, and the memory tail its readers are served from.
//!
//! With direct I/O (`O_DIRECT`), appends are encoded into a [`Staging`] buffer in memory, aligned
//! as the disk wants it. Each sync round takes what was staged ([`Staging::take`]), writes it
//! straight to the disk in whole blocks ([`Staged::write`]) and keeps the same bytes as a chunk of
//! the segment's [`Tail`]. The page cache plays no part: no copy into it, no writeback of dirty
//! pages, no pages to hand back afterwards. Readers at the head (delivery, consumers that keep
//! up) get slices of the tail; older records are read from the file.
//!
//! The last block of a round is usually partly filled. The next round writes it again, whole,
//! from its start: the bytes already written are written again unchanged, so a write torn by a
//! crash (sectors old or new) never damages an acknowledged record. What follows the last batch
//! in that block is zeros, which recovery cuts off like any incomplete tail.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use bytes::Bytes;

/// Alignment of direct writes: file offsets, lengths and memory addresses are multiples of it.
/// 4 KiB satisfies every block device and file system Linux runs on.
pub(crate) const ALIGN: usize = 4096;

fn align_down(n: u64) -> u64 {
    n & !(ALIGN as u64 - 1)
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Opens `path` for direct writes, or `None` where the file system does not support them
/// (tmpfs, some network file systems): the segment then writes through the page cache.
pub(crate) fn open_direct(path: &Path) -> Option<File> {
    let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
    match OpenOptions::new().write(true).custom_flags(flags).open(path) {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no direct I/O here; the log writes through the page cache");
            None
        }
    }
}

/// Appended bytes not yet written, starting at a block boundary of the file (`start`): the part
/// of the last written block that was already on disk, then the new batches.
#[derive(Debug)]
pub(crate) struct Staging {
    /// File position of the first staged byte (a multiple of [`ALIGN`]).
    start: u64,
    /// `lead` bytes of padding that put the content at an aligned address, then the content.
    buf: Vec<u8>,
    lead: usize,
    /// File position up to which the content was written by an earlier round.
    written_to: u64,
}

impl Staging {
    /// A staging buffer continuing a file of `len` bytes whose partial last block holds
    /// `carried` (the bytes from the block's start to `len`).
    fn with_content(len: u64, carried: &[u8], capacity: usize) -> Staging {
        let start = align_down(len);
        debug_assert_eq!(carried.len() as u64, len - start);
        let mut buf: Vec<u8> = Vec::with_capacity(capacity.max(carried.len()) + 2 * ALIGN);
        let lead = buf.as_ptr().align_offset(ALIGN);
        buf.resize(lead, 0);
        buf.extend_from_slice(carried);
        Staging { start, buf, lead, written_to: len }
    }

    /// Staging for a new, empty segment.
    pub fn empty() -> Staging {
        Staging::with_content(0, &[], 64 * 1024)
    }

    /// Staging for a segment file of `len` bytes reopened for appends: its partial last block is
    /// read back, to be written again whole with the next batches.
    pub fn resume(file: &File, len: u64) -> std::io::Result<Staging> {
        let mut carried = vec![0u8; (len - align_down(len)) as usize];
        file.read_exact_at(&mut carried, align_down(len))?;
        Ok(Staging::with_content(len, &carried, 64 * 1024))
    }

    /// Where encoded batches are appended.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// File position one past the last staged byte.
    pub fn end(&self) -> u64 {
        self.start + (self.buf.len() - self.lead) as u64
    }

    /// Whether anything was staged since the last [`Staging::take`].
    pub fn has_new_bytes(&self) -> bool {
        self.end() > self.written_to
    }

    /// Takes everything staged for writing and starts over with the partial last block (copied:
    /// at most one block), sized for about as much as was just taken.
    pub fn take(&mut self) -> Staged {
        let end = self.end();
        let carried_from = self.lead + (align_down(end) - self.start) as usize;
        let next = Staging::with_content(end, &self.buf[carried_from..], self.buf.len() - self.lead);
        let taken = std::mem::replace(self, next);
        Staged { start: taken.start, buf: taken.buf, lead: taken.lead }
    }
}

/// Staged bytes on their way to the disk.
pub(crate) struct Staged {
    start: u64,
    buf: Vec<u8>,
    lead: usize,
}

impl Staged {
    /// File position one past the last byte.
    pub fn end(&self) -> u64 {
        self.start + (self.buf.len() - self.lead) as u64
    }

    /// Writes the bytes at their place in `direct` (a file opened for direct I/O), padded with
    /// zeros to whole blocks, and returns them as a tail chunk starting at [`Staged::start`].
    pub fn write(mut self, direct: &File) -> std::io::Result<(u64, Bytes)> {
        let len = self.buf.len() - self.lead;
        self.buf.resize(self.lead + align_up(len), 0);
        if self.buf[self.lead..].as_ptr().align_offset(ALIGN) != 0 {
            // The buffer grew past its capacity and moved: align a copy.
            let mut copy = Staging::with_content(0, &[], self.buf.len());
            copy.buf.extend_from_slice(&self.buf[self.lead..]);
            (self.buf, self.lead) = (copy.buf, copy.lead);
        }
        direct.write_all_at(&self.buf[self.lead..], self.start)?;
        let chunk = Bytes::from(self.buf).slice(self.lead..self.lead + len);
        Ok((self.start, chunk))
    }
}

/// The newest written bytes of a segment, as the chunks the sync rounds wrote: each starts where
/// the one before ended, or a little before (the partial block written again).
#[derive(Debug, Default)]
pub(crate) struct Tail {
    chunks: VecDeque<(u64, Bytes)>,
}

impl Tail {
    pub fn push(&mut self, start: u64, chunk: Bytes) {
        debug_assert!(self.chunks.back().is_none_or(|(s, c)| start <= s + c.len() as u64));
        self.chunks.push_back((start, chunk));
    }

    /// File position of the first byte held, if any.
    pub fn start(&self) -> Option<u64> {
        self.chunks.front().map(|(start, _)| *start)
    }

    /// Bytes from `position` on: at least `min_len` and at most `max_len` of them, a slice of one
    /// chunk where it holds `min_len` (no copy), otherwise copied from several. `None` when the
    /// tail does not hold them (the caller reads the file).
    pub fn read(&self, position: u64, min_len: usize, max_len: usize) -> Option<Bytes> {
        let first = self.start()?;
        if position < first {
            return None;
        }
        let i = self.chunks.partition_point(|(start, _)| *start <= position) - 1;
        let (start, chunk) = &self.chunks[i];
        let at = (position - start) as usize;
        let in_chunk = chunk.len().saturating_sub(at);
        if in_chunk >= min_len.max(1) {
            return Some(chunk.slice(at..at + in_chunk.min(max_len)));
        }
        let mut out = Vec::with_capacity(min_len);
        let mut pos = position;
        for (start, chunk) in self.chunks.range(i..) {
            if out.len() >= min_len || *start > pos {
                break;
            }
            let from = (pos - start) as usize;
            if from >= chunk.len() {
                continue;
            }
            let take = (chunk.len() - from).min(min_len - out.len());
            out.extend_from_slice(&chunk[from..from + take]);
            pos += take as u64;
        }
        (out.len() == min_len).then(|| Bytes::from(out))
    }

    /// Drops the chunks that end at or before `upto`.
    pub fn drop_before(&mut self, upto: u64) {
        while self.chunks.front().is_some_and(|(start, c)| start + c.len() as u64 <= upto) {
            self.chunks.pop_front();
        }
    }

    /// Bytes of the file the tail covers.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        match (self.chunks.front(), self.chunks.back()) {
            (Some((first, _)), Some((last, c))) => last + c.len() as u64 - first,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged_bytes(data: &[u8]) -> Staging {
        let mut s = Staging::empty();
        s.buffer().extend_from_slice(data);
        s
    }

    #[test]
    fn staging_carries_the_partial_block_and_stays_aligned() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = staged_bytes(&data);
        let taken = s.take();
        assert_eq!((taken.start, taken.end()), (0, 10_000));
        // The next staging starts at the last block boundary with that block's bytes.
        assert_eq!((s.start, s.end()), (8192, 10_000));
        assert_eq!(&s.buf[s.lead..], &data[8192..]);
        assert_eq!(s.buf[s.lead..].as_ptr().align_offset(ALIGN), 0);
        assert!(!s.has_new_bytes(), "nothing new since the take");
        s.buffer().push(7);
        assert!(s.has_new_bytes());
    }

    #[test]
    fn a_write_pads_to_whole_blocks_at_aligned_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        let Some(direct) = open_direct(&path) else { return }; // a file system without direct I/O
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8 + 1).collect();
        let mut s = staged_bytes(&data[..6000]);
        let (start, chunk) = s.take().write(&direct).unwrap();
        assert_eq!((start, &chunk[..]), (0, &data[..6000]));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192, "two whole blocks");
        // The next write rewrites the partial block with what followed.
        s.buffer().extend_from_slice(&data[6000..]);
        let (start, chunk) = s.take().write(&direct).unwrap();
        assert_eq!((start, &chunk[..]), (4096, &data[4096..]));
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 12_288);
        assert_eq!(&on_disk[..10_000], &data[..]);
        assert!(on_disk[10_000..].iter().all(|&b| b == 0), "zeros after the last byte");
    }

    #[test]
    fn a_buffer_that_outgrew_its_capacity_is_realigned_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        let Some(direct) = open_direct(&path) else { return };
        let mut s = Staging::with_content(0, &[], 16);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 7) as u8).collect();
        for piece in data.chunks(777) {
            s.buffer().extend_from_slice(piece);
        }
        let (_, chunk) = s.take().write(&direct).unwrap();
        assert_eq!(&chunk[..], &data[..]);
        assert_eq!(&std::fs::read(&path).unwrap()[..data.len()], &data[..]);
    }

    #[test]
    fn the_tail_serves_slices_and_copies_across_overlapping_chunks() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
        let mut tail = Tail::default();
        // Rounds ending at 5000, 9000 and 20000; each starts at the block before its predecessor's end.
        tail.push(0, Bytes::copy_from_slice(&data[..5000]));
        tail.push(4096, Bytes::copy_from_slice(&data[4096..9000]));
        tail.push(8192, Bytes::copy_from_slice(&data[8192..]));
        assert_eq!(tail.len(), 20_000);
        // Within one chunk: a slice, as long as it may be.
        assert_eq!(&tail.read(100, 10, 1 << 20).unwrap()[..], &data[100..5000]);
        assert_eq!(&tail.read(100, 10, 50).unwrap()[..], &data[100..150]);
        // The chunk holding the position is the last one starting at or before it.
        assert_eq!(&tail.read(4500, 100, 100).unwrap()[..], &data[4500..4600]);
        // Across chunks: copied, exactly min_len.
        assert_eq!(&tail.read(4000, 10_000, 10_000).unwrap()[..], &data[4000..14_000]);
        assert_eq!(&tail.read(8000, 12_000, 12_000).unwrap()[..], &data[8000..20_000]);
        assert!(tail.read(19_000, 2000, 2000).is_none(), "past the end");
        tail.drop_before(9000);
        assert_eq!(tail.start(), Some(8192));
        assert!(tail.read(5000, 10, 10).is_none(), "dropped bytes are read from the file");
        tail.drop_before(20_000);
        assert_eq!((tail.start(), tail.len()), (None, 0));
    }
}
