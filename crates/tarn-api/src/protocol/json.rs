//! AWS JSON 1.1 codec for [`Doc`]. Pure: bytes in, bytes out.

use std::borrow::Cow;
use std::fmt;

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::doc::Doc;

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }
    fn visit_none<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Doc<'de>, E> {
        Ok(Doc::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Doc<'de>, E> {
        Ok(Doc::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Doc<'de>, E> {
        Ok(i64::try_from(v).map_or(Doc::Float(v as f64), Doc::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Doc<'de>, E> {
        Ok(Doc::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Doc<'de>, E> {
        Ok(Doc::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Doc<'de>>()? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value = map.next_value::<Doc<'de>>()?;
            entries.push((key, value));
        }
        Ok(Doc::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

/// Parses a request body. Strings without escapes borrow from `body`.
pub fn decode(body: &[u8]) -> Result<Doc<'_>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let doc = Doc::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(doc)
}

/// About how many bytes `doc` takes as JSON, to size the output buffer once.
pub fn encoded_len_hint(doc: &Doc<'_>) -> usize {
    match doc {
        Doc::Null | Doc::Bool(_) | Doc::Int(_) | Doc::Float(_) | Doc::Timestamp(_) => 24,
        Doc::Str(s) => s.len() + 2,
        Doc::Blob(b) => b.len().div_ceil(3) * 4 + 2,
        Doc::List(items) => 2 + items.iter().map(|i| encoded_len_hint(i) + 1).sum::<usize>(),
        Doc::Map(entries) => 2 + entries.iter().map(|(k, v)| k.len() + 4 + encoded_len_hint(v)).sum::<usize>(),
        Doc::Records(list) => list.json_len_hint(),
    }
}

/// Writes `doc` as JSON: blobs as base64, timestamps as epoch seconds with a millisecond fraction.
pub fn encode(doc: &Doc<'_>, out: &mut Vec<u8>) {
    match doc {
        Doc::Null => out.extend_from_slice(b"null"),
        Doc::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Doc::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Doc::Float(f) => {
            if f.is_finite() {
                out.extend_from_slice(f.to_string().as_bytes())
            } else {
                out.extend_from_slice(b"null")
            }
        }
        Doc::Timestamp(ms) => {
            let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
            let _ = write!(out, "{secs}.{frac:03}");
        }
        Doc::Str(s) => write_string(s.as_bytes(), out),
        Doc::Blob(b) => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + b.len().div_ceil(3) * 4, 0);
            let n = STANDARD.encode_slice(b, &mut out[start..]).expect("sized for base64");
            out.truncate(start + n);
            out.push(b'"');
        }
        Doc::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(item, out);
            }
            out.push(b']');
        }
        Doc::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k.as_bytes(), out);
                out.push(b':');
                encode(v, out);
            }
            out.push(b'}');
        }
        Doc::Records(list) => list.write_json(out),
    }
}

/// Writes UTF-8 text as a JSON string.
pub(crate) fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    // No early exit, so the check vectorizes; most strings need no escaping at all.
    let needs_escape = bytes.iter().fold(false, |acc, &b| acc | (b == b'"') | (b == b'\\') | (b < 0x20));
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::doc::Obj;

    #[test]
    fn decodes_nested_values_and_borrows_plain_strings() {
        let body =
            br#"{"StreamName":"s","Records":[{"Data":"AAE=","PartitionKey":"k\"q"}],"Limit":5,"T":1.5,"N":null}"#;
        let doc = decode(body).unwrap();
        assert!(matches!(doc.get("StreamName"), Some(Doc::Str(Cow::Borrowed("s")))));
        assert_eq!(doc.get("Limit"), Some(&Doc::Int(5)));
        assert_eq!(doc.get("T"), Some(&Doc::Float(1.5)));
        assert!(doc.field("N").is_none());
        let Some(Doc::List(recs)) = doc.get("Records") else { panic!() };
        assert_eq!(recs[0].get("PartitionKey"), Some(&Doc::Str("k\"q".into())));
    }

    #[test]
    fn rejects_malformed_and_trailing_input() {
        assert!(decode(b"{\"a\":").is_err());
        assert!(decode(b"{} {}").is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn encodes_blobs_as_base64_and_timestamps_as_seconds() {
        let doc = Obj::new()
            .put("Data", Doc::Blob(bytes::Bytes::from_static(b"\x00\x01hello")))
            .put("T", Doc::Timestamp(1_700_000_000_123))
            .put("S", "a\"b\\c\n\u{1}")
            .put("L", vec![Doc::Int(-3), Doc::Bool(true), Doc::Null])
            .done();
        let mut out = Vec::new();
        encode(&doc, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#"{"Data":"AAFoZWxsbw==","T":1700000000.123,"S":"a\"b\\c\n\u0001","L":[-3,true,null]}"#);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["S"], "a\"b\\c\n\u{1}");
    }
}
