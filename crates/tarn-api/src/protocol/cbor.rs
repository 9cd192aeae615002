//! AWS CBOR 1.1 codec for [`Doc`] (`application/x-amz-cbor-1.1`, sent by the Java SDKs).
//! Blobs are byte strings; timestamps are `tag(1)` wrapping integer epoch **milliseconds**
//! (not RFC 8949's seconds), in both directions. Pure: bytes in, bytes out.

use std::borrow::Cow;

use bytes::Bytes;
use ciborium::value::{Integer, Value};

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

fn to_value(doc: &Doc<'_>) -> Value {
    match doc {
        Doc::Null => Value::Null,
        Doc::Bool(b) => Value::Bool(*b),
        Doc::Int(n) => Value::Integer(Integer::from(*n)),
        Doc::Float(f) => Value::Float(*f),
        Doc::Str(s) => Value::Text(s.to_string()),
        Doc::Text(t) => Value::Text(t.as_str().to_owned()),
        Doc::Blob(b) => Value::Bytes(b.to_vec()),
        Doc::Timestamp(ms) => Value::Tag(1, Box::new(Value::Integer(Integer::from(*ms)))),
        Doc::List(items) => Value::Array(items.iter().map(to_value).collect()),
        Doc::Map(entries) => {
            Value::Map(entries.iter().map(|(k, v)| (Value::Text(k.to_string()), to_value(v))).collect())
        }
    }
}

pub fn encode(doc: &Doc<'_>, out: &mut Vec<u8>) {
    ciborium::ser::into_writer(&to_value(doc), out).expect("writing CBOR to memory cannot fail");
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
}
