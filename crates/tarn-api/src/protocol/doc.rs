//! [`Doc`]: the protocol-neutral value that requests decode into and responses encode from.
//!
//! AWS JSON 1.1 and CBOR carry the same shapes but differ in two types: blobs are base64 strings
//! in JSON and byte strings in CBOR; timestamps are fractional epoch seconds in JSON and
//! `tag(1)` + integer epoch milliseconds in CBOR. `Doc` keeps both forms apart (`Str` vs `Blob`,
//! numbers vs `Timestamp`) and the typed accessors in `input` resolve them against the model.

use std::borrow::Cow;

use bytes::Bytes;

use super::records::RecordList;

#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Blob(Bytes),
    /// Epoch milliseconds.
    Timestamp(i64),
    List(Vec<Doc<'a>>),
    Map(Vec<(Cow<'a, str>, Doc<'a>)>),
    /// Kinesis records, written by their own encoder (responses only; see [`RecordList`]).
    Records(Box<RecordList>),
}

impl<'a> Doc<'a> {
    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        match self {
            Doc::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A value that is present and not null.
    pub fn field(&self, key: &str) -> Option<&Doc<'a>> {
        self.get(key).filter(|v| !matches!(v, Doc::Null))
    }

    /// The name AWS's SerializationException messages use for a value's kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Doc::Null => "NULL_VALUE",
            Doc::Bool(_) => "BOOLEAN_VALUE",
            Doc::Int(_) | Doc::Float(_) | Doc::Timestamp(_) => "NUMBER_VALUE",
            Doc::Str(_) => "STRING_VALUE",
            Doc::Blob(_) => "BLOB_VALUE",
            Doc::List(_) | Doc::Records(_) => "START_ARRAY",
            Doc::Map(_) => "START_OBJECT",
        }
    }
}

/// Builds response maps: `Obj::new().put("StreamName", name).opt("KeyId", key).done()`.
#[derive(Debug, Default)]
pub struct Obj(Vec<(Cow<'static, str>, Doc<'static>)>);

impl Obj {
    pub fn new() -> Obj {
        Obj(Vec::new())
    }
    pub fn put(mut self, key: &'static str, value: impl Into<Doc<'static>>) -> Obj {
        self.0.push((Cow::Borrowed(key), value.into()));
        self
    }
    pub fn opt(self, key: &'static str, value: Option<impl Into<Doc<'static>>>) -> Obj {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    pub fn done(self) -> Doc<'static> {
        Doc::Map(self.0)
    }
}

impl From<Obj> for Doc<'static> {
    fn from(o: Obj) -> Self {
        o.done()
    }
}
impl From<String> for Doc<'static> {
    fn from(s: String) -> Self {
        Doc::Str(Cow::Owned(s))
    }
}
impl From<&'static str> for Doc<'static> {
    fn from(s: &'static str) -> Self {
        Doc::Str(Cow::Borrowed(s))
    }
}
impl From<bool> for Doc<'static> {
    fn from(b: bool) -> Self {
        Doc::Bool(b)
    }
}
impl From<i64> for Doc<'static> {
    fn from(n: i64) -> Self {
        Doc::Int(n)
    }
}
impl From<u32> for Doc<'static> {
    fn from(n: u32) -> Self {
        Doc::Int(i64::from(n))
    }
}
impl From<usize> for Doc<'static> {
    fn from(n: usize) -> Self {
        Doc::Int(n as i64)
    }
}
impl From<Vec<Doc<'static>>> for Doc<'static> {
    fn from(v: Vec<Doc<'static>>) -> Self {
        Doc::List(v)
    }
}

/// A timestamp in epoch milliseconds, for response fields.
pub fn timestamp(ms: i64) -> Doc<'static> {
    Doc::Timestamp(ms)
}
