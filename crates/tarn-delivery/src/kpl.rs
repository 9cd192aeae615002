//! De-aggregation of records written by the Kinesis Producer Library: one Kinesis record holding
//! many user records, as `0xF3 0x89 0x9A 0xC2` ‖ protobuf `AggregatedRecord` ‖ MD5 of the
//! protobuf. Firehose unpacks them when it reads a stream, and so does delivery: each user record
//! becomes its own payload. Anything else (no magic, or a checksum that does not match) is a plain
//! record. Free of I/O.

use md5::{Digest, Md5};

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// The user records of an aggregated record, or `None` for a plain record.
pub fn deaggregate(data: &[u8]) -> Option<Vec<&[u8]>> {
    let body = data.strip_prefix(&MAGIC)?;
    if body.len() < DIGEST_LEN {
        return None;
    }
    let (message, digest) = body.split_at(body.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return None;
    }
    let mut records = Vec::new();
    let mut r = Reader(message);
    while !r.0.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (3, 2) => records.push(record_data(r.bytes()?)?),
            (_, 2) => {
                r.bytes()?;
            }
            (_, 0) => {
                r.varint()?;
            }
            _ => return None,
        }
    }
    Some(records)
}

/// The `data` field (3) of a `Record` message.
fn record_data(message: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(message);
    let mut data = None;
    while !r.0.is_empty() {
        match r.key()? {
            (3, 2) => data = Some(r.bytes()?),
            (_, 2) => {
                r.bytes()?;
            }
            (_, 0) => {
                r.varint()?;
            }
            _ => return None,
        }
    }
    data
}

/// Just enough protobuf: varints and length-delimited fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u64)> {
        let k = self.varint()?;
        Some((k >> 3, k & 7))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (out, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    /// An aggregated record as the KPL writes it, for tests.
    pub(crate) fn aggregate(keys: &[&str], records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut message = Vec::new();
        for k in keys {
            field(1, k.as_bytes(), &mut message);
        }
        for (key_index, data) in records {
            let mut r = Vec::new();
            varint(1 << 3, &mut r);
            varint(*key_index, &mut r);
            field(3, data, &mut r);
            field(
                4,
                &{
                    let mut tag = Vec::new();
                    field(1, b"k", &mut tag);
                    tag
                },
                &mut r,
            );
            field(3, &r, &mut message);
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&message);
        out.extend_from_slice(&Md5::digest(&message));
        out
    }

    #[test]
    fn unpacks_kpl_records_and_leaves_everything_else_alone() {
        let big = vec![b'x'; 300];
        let agg = aggregate(&["a", "b"], &[(0, b"{\"n\":1}"), (1, &big), (0, b"")]);
        assert_eq!(deaggregate(&agg).unwrap(), vec![&b"{\"n\":1}"[..], &big[..], &b""[..]]);
        assert_eq!(deaggregate(b"{\"plain\":true}"), None);
        let mut damaged = agg.clone();
        damaged[6] ^= 1;
        assert_eq!(deaggregate(&damaged), None, "a checksum mismatch is a plain record");
        assert_eq!(deaggregate(&MAGIC), None);
    }
}
