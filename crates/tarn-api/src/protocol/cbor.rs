//! AWS CBOR 1.1 codec for [`Doc`] (`application/x-amz-cbor-1.1`, sent by the Java SDKs).
//! Blobs are byte strings; timestamps are `tag(1)` wrapping integer epoch **milliseconds**
//! (not RFC 8949's seconds), in both directions. Pure: bytes in, bytes out.

use std::borrow::Cow;

use bytes::Bytes;
use ciborium::value::Value;

use super::doc::Doc;

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

pub fn decode(body: &[u8]) -> Result<Doc<'static>, String> {
    let value: Value = ciborium::de::from_reader(body).map_err(|e| format!("malformed CBOR: {e}"))?;
    from_value(value, 0)
}

fn from_value(v: Value, depth: usize) -> Result<Doc<'static>, String> {
    if depth > MAX_DEPTH {
        return Err("CBOR nesting is too deep".into());
    }
    Ok(match v {
        Value::Null => Doc::Null,
        Value::Bool(b) => Doc::Bool(b),
        Value::Integer(i) => {
            let n: i128 = i.into();
            i64::try_from(n).map_or(Doc::Float(n as f64), Doc::Int)
        }
        Value::Float(f) => Doc::Float(f),
        Value::Text(s) => Doc::Str(Cow::Owned(s)),
        Value::Bytes(b) => Doc::Blob(Bytes::from(b)),
        Value::Tag(1, inner) => match *inner {
            Value::Integer(i) => {
                let n: i128 = i.into();
                Doc::Timestamp(i64::try_from(n).map_err(|_| "timestamp out of range".to_string())?)
            }
            Value::Float(f) => Doc::Timestamp(f as i64),
            _ => return Err("tag 1 must wrap a number".into()),
        },
        Value::Tag(_, inner) => from_value(*inner, depth + 1)?,
        Value::Array(items) => {
            Doc::List(items.into_iter().map(|i| from_value(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => Doc::Map(
            entries
                .into_iter()
                .map(|(k, v)| match k {
                    Value::Text(k) => Ok((Cow::Owned(k), from_value(v, depth + 1)?)),
                    _ => Err("CBOR map keys must be text".to_string()),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err("unsupported CBOR value".into()),
    })
}

// Major types of RFC 8949, shifted into the initial byte.
pub(super) const UNSIGNED: u8 = 0 << 5;
pub(super) const NEGATIVE: u8 = 1 << 5;
pub(super) const BYTES: u8 = 2 << 5;
pub(super) const TEXT: u8 = 3 << 5;
pub(super) const ARRAY: u8 = 4 << 5;
pub(super) const MAP: u8 = 5 << 5;
const TAG: u8 = 6 << 5;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

/// A data item's head: its major type and argument in the shortest form.
pub(super) fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// UTF-8 text; the caller guarantees the bytes are UTF-8.
pub(super) fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    write_head(out, TEXT, text.len() as u64);
    out.extend_from_slice(text);
}

pub(super) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_head(out, BYTES, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        write_head(out, UNSIGNED, n as u64);
    } else {
        // -1 - n, computed without overflow for i64::MIN.
        write_head(out, NEGATIVE, !(n as u64));
    }
}

/// AWS's CBOR timestamp: `tag(1)` around integer epoch milliseconds.
pub(super) fn write_timestamp(out: &mut Vec<u8>, ms: i64) {
    write_head(out, TAG, 1);
    write_int(out, ms);
}

pub fn encode(doc: &Doc<'_>, out: &mut Vec<u8>) {
    match doc {
        Doc::Null => out.push(NULL),
        Doc::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Doc::Int(n) => write_int(out, *n),
        Doc::Float(f) => {
            out.push(FLOAT64);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Doc::Str(s) => write_text(out, s.as_bytes()),
        Doc::Blob(b) => write_bytes(out, b),
        Doc::Timestamp(ms) => write_timestamp(out, *ms),
        Doc::List(items) => {
            write_head(out, ARRAY, items.len() as u64);
            for item in items {
                encode(item, out);
            }
        }
        Doc::Map(entries) => {
            write_head(out, MAP, entries.len() as u64);
            for (k, v) in entries {
                write_text(out, k.as_bytes());
                encode(v, out);
            }
        }
        Doc::Records(list) => list.write_cbor(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::doc::Obj;

    #[test]
    fn timestamps_are_tag_one_milliseconds_both_ways() {
        let doc = Obj::new().put("T", Doc::Timestamp(1_787_036_486_712)).done();
        let mut out = Vec::new();
        encode(&doc, &mut out);
        // tag(1) = 0xc1, then a 64-bit unsigned integer (0x1b) holding the milliseconds.
        let at = out.windows(2).position(|w| w == [0xc1, 0x1b]).expect("tag 1 with a u64");
        assert_eq!(u64::from_be_bytes(out[at + 2..at + 10].try_into().unwrap()), 1_787_036_486_712);
        assert_eq!(decode(&out).unwrap(), doc);
    }

    #[test]
    fn blobs_are_byte_strings() {
        let doc = Obj::new().put("Data", Doc::Blob(Bytes::from_static(b"\x00\xff"))).done();
        let mut out = Vec::new();
        encode(&doc, &mut out);
        assert!(out.windows(3).any(|w| w == [0x42, 0x00, 0xff]));
        assert_eq!(decode(&out).unwrap(), doc);
    }

    #[test]
    fn malformed_and_hostile_input_is_an_error() {
        assert!(decode(&[0xff, 0x00]).is_err());
        assert!(decode(&[0xa1, 0x01, 0x02]).is_err(), "integer map key");
        let deep = vec![0x81u8; 10_000];
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn encodes_every_kind_so_ciborium_reads_it_back() {
        let doc = Obj::new()
            .put("Small", Doc::Int(23))
            .put("Byte", Doc::Int(24))
            .put("Wide", Doc::Int(70_000))
            .put("Huge", Doc::Int(i64::MAX))
            .put("Negative", Doc::Int(-500))
            .put("Min", Doc::Int(i64::MIN))
            .put("F", Doc::Float(1.5))
            .put("B", vec![Doc::Bool(true), Doc::Bool(false), Doc::Null])
            .put("S", "\u{e9}t\u{e9}".repeat(100))
            .put("Before1970", Doc::Timestamp(-1_000))
            .done();
        let mut out = Vec::new();
        encode(&doc, &mut out);
        assert_eq!(decode(&out).unwrap(), doc);
        let value: Value = ciborium::de::from_reader(&out[..]).unwrap();
        let Value::Map(entries) = value else { panic!("a map") };
        assert_eq!(entries[5].1, Value::Integer(i64::MIN.into()));
    }
}
