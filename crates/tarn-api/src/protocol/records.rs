//! The `Records` list of GetRecords and SubscribeToShard, written straight from the log's records.
//!
//! It is most of the bytes Tarn sends, so it does not go through the general [`Doc`] tree (one map,
//! four keys and four shared-buffer clones per record). The shape is Kinesis's `Record`:
//! `SequenceNumber`, `ApproximateArrivalTimestamp`, `Data`, `PartitionKey`, in JSON (base64 data,
//! seconds with a millisecond fraction) or CBOR (byte-string data, `tag(1)` milliseconds).
//!
//! Records of a page have consecutive offsets, so each sequence number is the previous one's
//! decimal digits plus one, carried in place rather than formatted from a 128-bit integer.
//!
//! [`Doc`]: super::Doc

use base64_simd::STANDARD as BASE64;
use tarn_streams::Record;

use super::cbor;
use super::json::write_string;

#[derive(Debug, Clone, PartialEq)]
pub struct RecordList {
    /// The shard's position-0 sequence number; the record at log offset `o` is `base + o + 1`.
    pub sequence_base: u128,
    pub records: Vec<Record>,
}

impl RecordList {
    /// About how many bytes the list takes as JSON.
    pub fn json_len_hint(&self) -> usize {
        const FIXED: usize = 150; // keys, punctuation, a 39-digit number and a timestamp
        2 + self.records.iter().map(|r| FIXED + r.data.len().div_ceil(3) * 4 + r.partition_key.len()).sum::<usize>()
    }

    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(self.json_len_hint());
        out.push(b'[');
        let mut sequence = Decimal::default();
        let mut stamp = Stamp::default();
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"SequenceNumber\":\"");
            out.extend_from_slice(sequence.of(self.sequence_base, r.offset));
            out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
            out.extend_from_slice(stamp.seconds(r.arrival_ms));
            out.extend_from_slice(b",\"Data\":\"");
            let start = out.len();
            out.resize(start + BASE64.encoded_length(r.data.len()), 0);
            let _encoded = BASE64.encode(&r.data, base64_simd::Out::from_slice(&mut out[start..]));
            out.extend_from_slice(b"\",\"PartitionKey\":");
            write_string(&utf8_or_replaced(&r.partition_key), out);
            out.push(b'}');
        }
        out.push(b']');
    }

    pub fn write_cbor(&self, out: &mut Vec<u8>) {
        out.reserve(2 + self.records.iter().map(|r| 110 + r.data.len() + r.partition_key.len()).sum::<usize>());
        cbor::write_head(out, cbor::ARRAY, self.records.len() as u64);
        let mut sequence = Decimal::default();
        for r in &self.records {
            cbor::write_head(out, cbor::MAP, 4);
            cbor::write_text(out, b"SequenceNumber");
            cbor::write_text(out, sequence.of(self.sequence_base, r.offset));
            cbor::write_text(out, b"ApproximateArrivalTimestamp");
            cbor::write_timestamp(out, r.arrival_ms);
            cbor::write_text(out, b"Data");
            cbor::write_bytes(out, &r.data);
            cbor::write_text(out, b"PartitionKey");
            cbor::write_text(out, &utf8_or_replaced(&r.partition_key));
        }
    }
}

/// Partition keys were checked as UTF-8 when accepted; a damaged one is shown, not sent raw.
fn utf8_or_replaced(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(_) => std::borrow::Cow::Borrowed(bytes),
        Err(_) => std::borrow::Cow::Owned(String::from_utf8_lossy(bytes).into_owned().into_bytes()),
    }
}

/// The decimal digits of the last sequence number written, advanced in place when the next
/// record follows it directly.
struct Decimal {
    digits: [u8; 40],
    start: usize,
    offset: Option<u64>,
}

impl Default for Decimal {
    fn default() -> Decimal {
        Decimal { digits: [b'0'; 40], start: 40, offset: None }
    }
}

impl Decimal {
    fn of(&mut self, base: u128, offset: u64) -> &[u8] {
        if self.offset.is_some_and(|prev| prev + 1 == offset) && self.increment() {
            self.offset = Some(offset);
            return &self.digits[self.start..];
        }
        let mut value = base + u128::from(offset) + 1;
        let mut at = self.digits.len();
        loop {
            at -= 1;
            self.digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.start = at;
        self.offset = Some(offset);
        &self.digits[self.start..]
    }

    /// Adds one to the digits; false when that would need a new leading digit.
    fn increment(&mut self) -> bool {
        for at in (self.start..self.digits.len()).rev() {
            if self.digits[at] == b'9' {
                self.digits[at] = b'0';
            } else {
                self.digits[at] += 1;
                return true;
            }
        }
        false
    }
}

/// The JSON form of the last arrival time written; records of one batch share it.
#[derive(Default)]
struct Stamp {
    ms: Option<i64>,
    text: Vec<u8>,
}

impl Stamp {
    fn seconds(&mut self, ms: i64) -> &[u8] {
        if self.ms != Some(ms) {
            use std::io::Write;
            self.text.clear();
            let _ = write!(self.text, "{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
            self.ms = Some(ms);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::{Doc, Obj};

    fn record(offset: u64, arrival_ms: i64, key: &str, data: &[u8]) -> Record {
        Record {
            offset,
            arrival_ms,
            partition_key: Bytes::copy_from_slice(key.as_bytes()),
            data: Bytes::copy_from_slice(data),
        }
    }

    /// The same list through the general Doc encoder, which the direct writers must match.
    fn as_doc(list: &RecordList) -> Doc<'static> {
        let records: Vec<Doc<'static>> = list
            .records
            .iter()
            .map(|r| {
                Obj::new()
                    .put("SequenceNumber", (list.sequence_base + u128::from(r.offset) + 1).to_string())
                    .put("ApproximateArrivalTimestamp", Doc::Timestamp(r.arrival_ms))
                    .put("Data", Doc::Blob(r.data.clone()))
                    .put("PartitionKey", String::from_utf8_lossy(&r.partition_key).into_owned())
                    .done()
            })
            .collect();
        records.into()
    }

    fn sample() -> RecordList {
        // Offsets that carry across 9 -> 10 and 99 -> 100 digits, then jump, then go on.
        let base = 10u128.pow(37) - 12;
        let records = vec![
            record(8, 1_700_000_000_001, "a", b""),
            record(9, 1_700_000_000_001, "b\"q", b"\x00\xff"),
            record(10, 1_700_000_000_999, "\u{e9}t\u{e9}", b"hello"),
            record(11, 1_700_000_001_000, "c", &[7; 200]),
            record(500, 1_700_000_001_000, "c", b"x"),
            record(501, 1_700_000_001_000, "c", b"xy"),
        ];
        RecordList { sequence_base: base, records }
    }

    #[test]
    fn json_matches_the_general_encoder() {
        let list = sample();
        let mut direct = Vec::new();
        list.write_json(&mut direct);
        let mut general = Vec::new();
        crate::protocol::json::encode(&as_doc(&list), &mut general);
        assert_eq!(String::from_utf8(direct).unwrap(), String::from_utf8(general).unwrap());
    }

    #[test]
    fn cbor_decodes_to_the_same_records() {
        let list = sample();
        let mut direct = Vec::new();
        list.write_cbor(&mut direct);
        let back = crate::protocol::cbor::decode(&direct).unwrap();
        assert_eq!(back, as_doc(&list));
    }

    #[test]
    fn sequence_digits_carry_into_a_new_leading_digit() {
        let mut d = Decimal::default();
        assert_eq!(d.of(0, 8), b"9");
        assert_eq!(d.of(0, 9), b"10");
        assert_eq!(d.of(0, 10), b"11");
        assert_eq!(d.of(0, 98), b"99");
        assert_eq!(d.of(0, 99), b"100");
    }
}
