//! The on-disk record batch format. Pure functions over bytes: no files, no sockets.
//!
//! A segment file is a sequence of batches. One batch holds the records that one append wrote to
//! one shard; all of them share an arrival time and take consecutive offsets from `base_offset`.
//!
//! ```text
//! batch  := magic u32 | body_len u32 | crc32c(body) u32 | body
//! body   := base_offset u64 | arrival_ms i64 | count u32 | record{count}
//! record := key_len u16 | data_len u32 | key bytes | data bytes
//! ```
//! All integers are little-endian. The checksum covers the whole body, so a torn or corrupted
//! batch is detected as a unit and never served.

use bytes::Bytes;

/// Marks the start of every batch ("TRNB").
pub const BATCH_MAGIC: u32 = 0x424e_5254;
/// Bytes before the body: magic, body length, checksum.
pub const BATCH_HEADER_LEN: usize = 12;
/// Bytes at the start of the body before the first record.
pub const BODY_PREFIX_LEN: usize = 20;
/// Bytes of framing per record.
pub const RECORD_OVERHEAD: usize = 6;
/// Largest body a batch may declare; anything larger is treated as corruption.
pub const MAX_BODY_LEN: usize = 256 * 1024 * 1024;

/// A record handed to [`encode_batch`].
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub partition_key: &'a [u8],
    pub data: &'a [u8],
}

/// A record read back from the log. `partition_key` and `data` share the buffer they were read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub arrival_ms: i64,
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// The fixed fields of a batch, readable without its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    pub arrival_ms: i64,
    pub count: u32,
    /// Bytes the whole batch takes on disk, header included.
    pub total_len: usize,
}

impl BatchHeader {
    /// One past the offset of the last record of the batch.
    pub fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the batch does; `needed` is the batch's full length when known.
    #[error("batch is incomplete: {needed} bytes needed")]
    Incomplete { needed: usize },
    #[error("batch is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Size of a batch holding `records`, for sizing buffers before encoding.
pub fn encoded_len(records: &[RecordRef<'_>]) -> usize {
    BATCH_HEADER_LEN
        + BODY_PREFIX_LEN
        + records.iter().map(|r| RECORD_OVERHEAD + r.partition_key.len() + r.data.len()).sum::<usize>()
}

/// Appends one batch to `out`. Partition keys longer than `u16::MAX` bytes are a caller bug
/// (the API limits them to 256 characters).
pub fn encode_batch(base_offset: u64, arrival_ms: i64, records: &[RecordRef<'_>], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(encoded_len(records));
    out.extend_from_slice(&BATCH_MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // body_len and crc, filled in below
    let body_start = out.len();
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        let key_len = u16::try_from(r.partition_key.len()).expect("partition key fits in u16");
        out.extend_from_slice(&key_len.to_le_bytes());
        out.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
        out.extend_from_slice(r.partition_key);
        out.extend_from_slice(r.data);
    }
    let body_len = (out.len() - body_start) as u32;
    let crc = crc32c::crc32c(&out[body_start..]);
    out[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the fixed fields of the batch at the start of `buf` without checking its checksum.
/// Needs only the header and body prefix, so a recovery scan can skip over record bytes.
pub fn peek_header(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    if buf.len() < BATCH_HEADER_LEN + BODY_PREFIX_LEN {
        return Err(DecodeError::Incomplete { needed: BATCH_HEADER_LEN + BODY_PREFIX_LEN });
    }
    if u32_at(buf, 0) != BATCH_MAGIC {
        return Err(DecodeError::Corrupt("bad magic"));
    }
    let body_len = u32_at(buf, 4) as usize;
    if !(BODY_PREFIX_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Err(DecodeError::Corrupt("impossible body length"));
    }
    let b = BATCH_HEADER_LEN;
    let count = u32_at(buf, b + 16);
    if count as usize > (body_len - BODY_PREFIX_LEN) / RECORD_OVERHEAD {
        return Err(DecodeError::Corrupt("record count does not fit the body"));
    }
    Ok(BatchHeader {
        base_offset: u64_at(buf, b),
        arrival_ms: u64_at(buf, b + 8) as i64,
        count,
        total_len: BATCH_HEADER_LEN + body_len,
    })
}

/// Checks the batch at the start of `buf`: framing, checksum and record layout.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    let header = peek_header(buf)?;
    if buf.len() < header.total_len {
        return Err(DecodeError::Incomplete { needed: header.total_len });
    }
    let body = &buf[BATCH_HEADER_LEN..header.total_len];
    if crc32c::crc32c(body) != u32_at(buf, 8) {
        return Err(DecodeError::Corrupt("checksum mismatch"));
    }
    let mut at = BODY_PREFIX_LEN;
    for _ in 0..header.count {
        if at + RECORD_OVERHEAD > body.len() {
            return Err(DecodeError::Corrupt("record framing overruns the body"));
        }
        let key_len = u16::from_le_bytes([body[at], body[at + 1]]) as usize;
        let data_len = u32_at(body, at + 2) as usize;
        at += RECORD_OVERHEAD + key_len + data_len;
        if at > body.len() {
            return Err(DecodeError::Corrupt("record overruns the body"));
        }
    }
    if at != body.len() {
        return Err(DecodeError::Corrupt("trailing bytes after the last record"));
    }
    Ok(header)
}

/// Decodes the checked batch at the start of `buf` (a cheaply cloneable buffer) into records
/// whose offset is at least `from_offset`, appending them to `out`. Returns the header.
pub fn decode_batch(buf: &Bytes, from_offset: u64, out: &mut Vec<Record>) -> Result<BatchHeader, DecodeError> {
    let header = check_batch(buf)?;
    let mut at = BATCH_HEADER_LEN + BODY_PREFIX_LEN;
    for i in 0..u64::from(header.count) {
        let key_len = u16::from_le_bytes([buf[at], buf[at + 1]]) as usize;
        let data_len = u32_at(buf, at + 2) as usize;
        let key_at = at + RECORD_OVERHEAD;
        let data_at = key_at + key_len;
        at = data_at + data_len;
        let offset = header.base_offset + i;
        if offset >= from_offset {
            out.push(Record {
                offset,
                arrival_ms: header.arrival_ms,
                partition_key: buf.slice(key_at..data_at),
                data: buf.slice(data_at..at),
            });
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let recs = [
            RecordRef { partition_key: b"a", data: b"hello" },
            RecordRef { partition_key: b"user-42", data: b"" },
            RecordRef { partition_key: b"k", data: &[7u8; 300] },
        ];
        let mut out = Vec::new();
        encode_batch(41, 1_700_000_000_123, &recs, &mut out);
        assert_eq!(out.len(), encoded_len(&recs));
        out
    }

    #[test]
    fn round_trip_keeps_offsets_keys_and_data() {
        let buf = Bytes::from(sample());
        let mut recs = Vec::new();
        let h = decode_batch(&buf, 0, &mut recs).unwrap();
        assert_eq!((h.base_offset, h.count, h.end_offset()), (41, 3, 44));
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].partition_key, &b"a"[..]);
        assert_eq!(recs[0].data, &b"hello"[..]);
        assert_eq!(recs[1].data.len(), 0);
        assert_eq!(recs[2].offset, 43);
        assert_eq!(recs[2].arrival_ms, 1_700_000_000_123);
    }

    #[test]
    fn from_offset_skips_earlier_records() {
        let buf = Bytes::from(sample());
        let mut recs = Vec::new();
        decode_batch(&buf, 43, &mut recs).unwrap();
        assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![43]);
    }

    #[test]
    fn every_truncation_is_incomplete_never_a_record() {
        let full = sample();
        for cut in 0..full.len() {
            let buf = Bytes::copy_from_slice(&full[..cut]);
            let mut recs = Vec::new();
            let err = decode_batch(&buf, 0, &mut recs).unwrap_err();
            assert!(matches!(err, DecodeError::Incomplete { .. }), "cut {cut}: {err:?}");
            assert!(recs.is_empty());
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let full = sample();
        for byte in 0..full.len() {
            for bit in 0..8 {
                let mut bad = full.clone();
                bad[byte] ^= 1 << bit;
                let mut recs = Vec::new();
                let res = decode_batch(&Bytes::from(bad), 0, &mut recs);
                assert!(res.is_err(), "flip at byte {byte} bit {bit} went unnoticed");
                assert!(recs.is_empty());
            }
        }
    }
}
