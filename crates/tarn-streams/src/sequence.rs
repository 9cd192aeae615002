//! Sequence numbers: decimal strings that encode where a record lives.
//!
//! As a 128-bit integer: `version (4 bits) = 2 | stream tag (32) | shard index (28) | position (64)`.
//! Position 0 is the shard's start, before its first record (the shard's StartingSequenceNumber);
//! the record at log offset `o` has position `o + 1`. Numbers are unique per stream (shard index
//! and position are), increase within a shard (the position is the low part), and decode, so a
//! number from another stream or shard is recognised. Printed in decimal they are 38 or 39
//! digits long, within Kinesis's `0|[1-9]\d{0,128}`.

use std::fmt;

const VERSION: u128 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub stream_tag: u32,
    pub shard_index: u32,
    /// 0 before the first record; `offset + 1` for the record at log offset `offset`.
    pub position: u64,
}

/// Why a sequence number string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceError {
    /// Not a number of Kinesis's form at all.
    Malformed,
    /// A number, but not one Tarn issued.
    Foreign,
}

/// The largest shard index a sequence number can carry.
pub const MAX_SHARD_INDEX: u32 = (1 << 28) - 1;

impl SequenceNumber {
    pub fn new(stream_tag: u32, shard_index: u32, position: u64) -> SequenceNumber {
        debug_assert!(shard_index <= MAX_SHARD_INDEX);
        SequenceNumber { stream_tag, shard_index, position }
    }

    /// The number of the record at log `offset`.
    pub fn of_record(stream_tag: u32, shard_index: u32, offset: u64) -> SequenceNumber {
        SequenceNumber::new(stream_tag, shard_index, offset + 1)
    }

    pub fn to_u128(self) -> u128 {
        (VERSION << 124)
            | (u128::from(self.stream_tag) << 92)
            | (u128::from(self.shard_index & MAX_SHARD_INDEX) << 64)
            | u128::from(self.position)
    }

    pub fn parse(s: &str) -> Result<SequenceNumber, SequenceError> {
        let well_formed = !s.is_empty()
            && s.len() <= 129
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s.len() == 1 || !s.starts_with('0'));
        if !well_formed {
            return Err(SequenceError::Malformed);
        }
        let value: u128 = s.parse().map_err(|_| SequenceError::Foreign)?;
        if value >> 124 != VERSION {
            return Err(SequenceError::Foreign);
        }
        Ok(SequenceNumber {
            stream_tag: (value >> 92) as u32,
            shard_index: ((value >> 64) as u32) & MAX_SHARD_INDEX,
            position: value as u64,
        })
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(itoa::Buffer::new().format(self.to_u128()))
    }
}

/// Writes the decimal forms of many sequence numbers, as a PutRecords response lists them: each
/// shard's records have consecutive positions, so most numbers are a few more than one written
/// just before, and adding the difference to that one's digits is much cheaper than dividing a
/// 128-bit integer down to 39 digits again.
#[derive(Default)]
pub struct DecimalWriter {
    /// Per shard lately written (a few at most are remembered): the number and its digits.
    recent: Vec<(u128, [u8; 39], usize)>,
    next_evicted: usize,
}

/// Shards remembered by a [`DecimalWriter`]; one with more shards still writes the right digits.
const RECENT_SHARDS: usize = 8;

/// Up to this far past a remembered number, digits are added to; farther, written afresh.
const MAX_STEP: u128 = 1 << 20;

impl DecimalWriter {
    /// Appends `seq`'s decimal form (what [`fmt::Display`] prints) to `out`.
    pub fn write(&mut self, seq: SequenceNumber, out: &mut Vec<u8>) {
        let value = seq.to_u128();
        let near = self.recent.iter().position(|(last, _, _)| *last <= value && value - *last <= MAX_STEP);
        let index = match near {
            Some(i) if add_decimal(&mut self.recent[i], value) => i,
            _ => {
                let mut itoa = itoa::Buffer::new();
                let formatted = itoa.format(value).as_bytes();
                let mut digits = [0u8; 39];
                digits[..formatted.len()].copy_from_slice(formatted);
                let entry = (value, digits, formatted.len());
                let i = match near {
                    Some(i) => i,
                    None if self.recent.len() < RECENT_SHARDS => {
                        self.recent.push(entry);
                        self.recent.len() - 1
                    }
                    None => {
                        let i = self.next_evicted;
                        self.next_evicted = (i + 1) % RECENT_SHARDS;
                        i
                    }
                };
                self.recent[i] = entry;
                i
            }
        };
        let (_, digits, len) = &self.recent[index];
        out.extend_from_slice(&digits[..*len]);
    }
}

/// Adds `value - entry.0` to `entry`'s digits, in place. `false` (the entry unchanged): the sum
/// has more digits than the entry, so it must be written afresh.
fn add_decimal(entry: &mut (u128, [u8; 39], usize), value: u128) -> bool {
    let (last, digits, len) = entry;
    let mut updated = *digits;
    let mut carry = value - *last;
    let mut i = *len;
    while carry > 0 {
        if i == 0 {
            return false;
        }
        i -= 1;
        let sum = u128::from(updated[i] - b'0') + carry;
        updated[i] = b'0' + (sum % 10) as u8;
        carry = sum / 10;
    }
    *digits = updated;
    *last = value;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_by_offset_within_a_shard() {
        let a = SequenceNumber::new(0xdead_beef, 12, 7);
        let b = SequenceNumber::new(0xdead_beef, 12, 8);
        assert_eq!(SequenceNumber::parse(&a.to_string()), Ok(a));
        assert!(a.to_u128() < b.to_u128());
        let s = a.to_string();
        assert!((38..=39).contains(&s.len()), "{s}");
        assert_eq!(s, a.to_u128().to_string(), "Display is the 128-bit integer in decimal");
    }

    #[test]
    fn the_decimal_writer_writes_what_display_prints() {
        let mut writer = DecimalWriter::default();
        let mut out = Vec::new();
        let mut expected = String::new();
        // Consecutive positions on a few shards, interleaved; positions that carry through
        // many nines; jumps farther than the writer adds to; more shards than it remembers;
        // going back; and the largest numbers, whose digits can grow in length.
        let mut numbers = Vec::new();
        for i in 0..300u64 {
            numbers.push(SequenceNumber::new(7, (i % 3) as u32, 9_999_990 + i));
        }
        numbers.push(SequenceNumber::new(7, 0, u64::MAX - 2));
        numbers.push(SequenceNumber::new(7, 0, u64::MAX));
        numbers.push(SequenceNumber::new(7, 0, 5));
        numbers.push(SequenceNumber::new(7, 0, 5 + (1 << 21)));
        for shard in 0..20 {
            numbers.push(SequenceNumber::new(9, shard, 99));
            numbers.push(SequenceNumber::new(9, shard, 100));
        }
        numbers.push(SequenceNumber::new(u32::MAX, MAX_SHARD_INDEX, u64::MAX - 1));
        numbers.push(SequenceNumber::new(u32::MAX, MAX_SHARD_INDEX, u64::MAX));
        for n in numbers {
            writer.write(n, &mut out);
            out.push(b',');
            expected.push_str(&format!("{n},"));
        }
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // Digits that grow in length are written afresh.
        let mut entry = (999u128, [b'0'; 39], 3);
        entry.1[..3].copy_from_slice(b"999");
        assert!(!add_decimal(&mut entry, 1000));
        assert_eq!((entry.0, &entry.1[..3]), (999, &b"999"[..]), "left as it was");
        assert!(add_decimal(&mut entry, 999), "an entry can be added to by nothing");
    }

    #[test]
    fn rejects_malformed_and_foreign_numbers() {
        assert_eq!(SequenceNumber::parse("abc"), Err(SequenceError::Malformed));
        assert_eq!(SequenceNumber::parse("0123"), Err(SequenceError::Malformed));
        assert_eq!(SequenceNumber::parse("12345"), Err(SequenceError::Foreign));
        assert_eq!(
            SequenceNumber::parse("49546986683135544286507457936321625675700192471156785154"),
            Err(SequenceError::Foreign)
        );
    }
}
