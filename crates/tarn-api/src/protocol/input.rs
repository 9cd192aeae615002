//! Typed, validated access to a request [`Doc`], reporting problems the way AWS's front end does.
//!
//! Type mismatches are `SerializationException`s and stop the request at once. Constraint
//! violations (required, length, range, pattern, enum) are collected and reported together as
//! one `ValidationException`: `2 validation errors detected: Value null at 'streamName' failed to
//! satisfy constraint: Member must not be null; ...`, with lowerCamel member paths.

use std::sync::Arc;

use bytes::Bytes;

use super::doc::Doc;
use crate::error::ApiError;

/// The most violations one message lists.
const MAX_LISTED: usize = 10;

/// A character class pattern, with the regex text AWS prints for it.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    pub text: &'static str,
    pub matches: fn(&str) -> bool,
}

/// `[a-zA-Z0-9_.-]+`: stream, consumer and shard names.
pub const NAME: Pattern = Pattern {
    text: "[a-zA-Z0-9_.-]+",
    matches: |s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'),
};
/// `0|([1-9]\d{0,38})`: hash keys.
pub const HASH_KEY: Pattern = Pattern { text: "0|([1-9]\\d{0,38})", matches: |s| decimal(s, 39) };
/// `0|([1-9]\d{0,128})`: sequence numbers.
pub const SEQUENCE: Pattern = Pattern { text: "0|([1-9]\\d{0,128})", matches: |s| decimal(s, 129) };
pub const STREAM_ARN: Pattern = Pattern {
    text: "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
    matches: |s| tarn_streams::parse_stream_arn(s).is_some() && !s.contains(char::is_whitespace),
};
pub const CONSUMER_ARN: Pattern = Pattern {
    text: "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+",
    matches: |s| s.starts_with("arn:aws") && s.contains(":stream/") && s.contains("/consumer/"),
};

fn decimal(s: &str, max_digits: usize) -> bool {
    !s.is_empty() && s.len() <= max_digits && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// `StreamName` → `streamName`.
fn lower_camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Whether `s` has `min..=max` characters, the length rule of [`Input::string`]; characters are
/// counted only when the byte length leaves doubt.
pub fn length_within(s: &str, min: usize, max: usize) -> bool {
    let chars = || s.chars().count();
    s.len() >= min && (min <= 1 || chars() >= min) && (s.len() <= max || chars() <= max)
}

fn quote(v: &str) -> String {
    format!("'{v}'")
}

/// Collects violations while an action reads its input.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn add(&mut self, value: Option<String>, path: &str, rule: impl std::fmt::Display) {
        let shown = value.unwrap_or_else(|| "null".into());
        self.0.push(format!("Value {shown} at '{path}' failed to satisfy constraint: {rule}"));
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let n = self.0.len();
        let listed: Vec<_> = self.0.into_iter().take(MAX_LISTED).collect();
        let noun = if n == 1 { "error" } else { "errors" };
        Err(ApiError::validation(format!("{n} validation {noun} detected: {}", listed.join("; "))))
    }
}

fn type_error(expected: &str, got: &Doc<'_>) -> ApiError {
    let article = if expected.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    ApiError::serialization(format!("{} can not be converted to {article} {expected}", got.kind_name()))
}

/// A view of one structure in the request, with the member path used in messages.
pub struct Input<'d, 'a> {
    doc: &'d Doc<'a>,
    prefix: Prefix,
}

/// Where a structure sits in the request, rendered only when a message needs it (a PutRecords
/// call reads 500 structures, and formatting each one's path cost more than reading it).
enum Prefix {
    /// Path text ending in `.`, or empty at the root.
    Text(String),
    /// Element `index` (1-based) of the list at `list`: `list.index.member.`.
    Element { list: Arc<str>, index: usize },
}

impl<'d, 'a> Input<'d, 'a> {
    /// The request body's top-level structure.
    pub fn root(doc: &'d Doc<'a>) -> Result<Input<'d, 'a>, ApiError> {
        match doc {
            Doc::Map(_) => Ok(Input { doc, prefix: Prefix::Text(String::new()) }),
            other => {
                Err(ApiError::serialization(format!("Start of structure or map expected, found {}", other.kind_name())))
            }
        }
    }

    pub fn path(&self, member: &str) -> String {
        match &self.prefix {
            Prefix::Text(prefix) => format!("{prefix}{}", lower_camel(member)),
            Prefix::Element { list, index } => format!("{list}.{index}.member.{}", lower_camel(member)),
        }
    }

    fn raw(&self, member: &str) -> Option<&'d Doc<'a>> {
        self.doc.field(member)
    }

    pub fn str(&self, member: &str) -> Result<Option<&'d str>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::Str(s)) => Ok(Some(s.as_ref())),
            Some(other) => Err(type_error("String", other)),
        }
    }

    /// A string member checked against its model constraints.
    pub fn string(
        &self,
        v: &mut Violations,
        member: &str,
        required: bool,
        min: usize,
        max: usize,
        pattern: Option<Pattern>,
    ) -> Result<Option<&'d str>, ApiError> {
        let value = self.str(member)?;
        let path = || self.path(member);
        match value {
            None if required => v.add(None, &path(), "Member must not be null"),
            None => {}
            Some(s) => {
                let len = s.chars().count();
                if len < min {
                    v.add(Some(quote(s)), &path(), format!("Member must have length greater than or equal to {min}"));
                } else if len > max {
                    v.add(Some(quote(s)), &path(), format!("Member must have length less than or equal to {max}"));
                }
                if let Some(p) = pattern
                    && !(p.matches)(s)
                {
                    v.add(
                        Some(quote(s)),
                        &path(),
                        format!("Member must satisfy regular expression pattern: {}", p.text),
                    );
                }
            }
        }
        Ok(value)
    }

    pub fn enumeration(
        &self,
        v: &mut Violations,
        member: &str,
        required: bool,
        allowed: &[&str],
    ) -> Result<Option<&'d str>, ApiError> {
        let value = self.str(member)?;
        match value {
            None if required => v.add(None, &self.path(member), "Member must not be null"),
            Some(s) if !allowed.contains(&s) => v.add(
                Some(quote(s)),
                &self.path(member),
                format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
            ),
            _ => {}
        }
        Ok(value)
    }

    pub fn int(
        &self,
        v: &mut Violations,
        member: &str,
        required: bool,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ApiError> {
        let value = match self.raw(member) {
            None => None,
            Some(Doc::Int(n)) => Some(*n),
            // AWS truncates fractional numbers given for integer members.
            Some(Doc::Float(f)) if f.is_finite() => Some(f.trunc() as i64),
            Some(other) => return Err(type_error("Integer", other)),
        };
        let path = || self.path(member);
        match value {
            None if required => v.add(None, &path(), "Member must not be null"),
            Some(n) if n < min => {
                v.add(Some(n.to_string()), &path(), format!("Member must have value greater than or equal to {min}"))
            }
            Some(n) if n > max => {
                v.add(Some(n.to_string()), &path(), format!("Member must have value less than or equal to {max}"))
            }
            _ => {}
        }
        Ok(value)
    }

    pub fn bool(&self, member: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error("Boolean", other)),
        }
    }

    /// A timestamp member in epoch milliseconds: JSON sends seconds, CBOR tagged milliseconds.
    pub fn timestamp(&self, member: &str) -> Result<Option<i64>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::Timestamp(ms)) => Ok(Some(*ms)),
            Some(Doc::Int(secs)) => Ok(Some(secs.saturating_mul(1000))),
            Some(Doc::Float(secs)) if secs.is_finite() => Ok(Some((secs * 1000.0).round() as i64)),
            Some(Doc::Str(_)) => {
                Err(ApiError::serialization("class java.lang.String can not be converted to milliseconds since epoch"))
            }
            Some(other) => Err(type_error("Timestamp", other)),
        }
    }

    /// A blob member: base64 text in JSON, a byte string in CBOR.
    pub fn blob(&self, v: &mut Violations, member: &str, required: bool) -> Result<Option<Bytes>, ApiError> {
        let value = match self.raw(member) {
            None => None,
            Some(Doc::Blob(b)) => Some(b.clone()),
            Some(Doc::Str(s)) => Some(Bytes::from(decode_base64(s)?)),
            Some(other) => return Err(type_error("Blob", other)),
        };
        if value.is_none() && required {
            v.add(None, &self.path(member), "Member must not be null");
        }
        Ok(value)
    }

    pub fn structure(&self, member: &str) -> Result<Option<Input<'d, 'a>>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(doc @ Doc::Map(_)) => Ok(Some(Input { doc, prefix: Prefix::Text(format!("{}.", self.path(member))) })),
            Some(other) => Err(ApiError::serialization(format!(
                "Start of structure or map found where not expected, at {}: {}",
                self.path(member),
                other.kind_name()
            ))),
        }
    }

    /// A list of structures, each with its `member.N.member.` path prefix (1-based).
    pub fn list_of_structures(&self, member: &str) -> Result<Option<Vec<Input<'d, 'a>>>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::List(items)) => {
                let list: Arc<str> = self.path(member).into();
                items
                    .iter()
                    .enumerate()
                    .map(|(i, doc)| match doc {
                        Doc::Map(_) => Ok(Input { doc, prefix: Prefix::Element { list: list.clone(), index: i + 1 } }),
                        other => Err(ApiError::serialization(format!(
                            "Start of structure or map expected in list {}, found {}",
                            self.path(member),
                            other.kind_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(other) => Err(ApiError::serialization(format!("Expected list or null, found {}", other.kind_name()))),
        }
    }

    pub fn list_of_strings(&self, member: &str) -> Result<Option<Vec<&'d str>>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::List(items)) => items
                .iter()
                .map(|d| match d {
                    Doc::Str(s) => Ok(s.as_ref()),
                    other => Err(type_error("String", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(ApiError::serialization(format!("Expected list or null, found {}", other.kind_name()))),
        }
    }

    pub fn map_of_strings(&self, member: &str) -> Result<Option<Vec<(&'d str, &'d str)>>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Doc::Map(entries)) => entries
                .iter()
                .map(|(k, d)| match d {
                    Doc::Str(s) => Ok((k.as_ref(), s.as_ref())),
                    other => Err(type_error("String", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(ApiError::serialization(format!("Expected map or null, found {}", other.kind_name()))),
        }
    }
}

/// Decodes standard base64 strictly, as AWS does: padded, canonical, nothing else.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, ApiError> {
    base64_simd::STANDARD.decode_to_vec(s).map_err(|_| {
        ApiError::serialization("Base64 encoded value is invalid: it must be standard, padded base64 text")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::json;

    #[test]
    fn lengths_are_counted_in_characters() {
        assert!(length_within("", 0, 3) && !length_within("", 1, 3));
        assert!(length_within("abc", 1, 3) && !length_within("abcd", 1, 3));
        assert!(length_within("ééé", 1, 3), "six bytes, three characters");
        assert!(!length_within("éééé", 1, 3) && !length_within("é", 2, 3) && length_within("éé", 2, 3));
    }

    #[test]
    fn blobs_are_standard_padded_canonical_base64() {
        for (text, bytes) in [("", &b""[..]), ("QQ==", b"A"), ("QUI=", b"AB"), ("QUJD", b"ABC"), ("+/8=", b"\xfb\xff")]
        {
            assert_eq!(decode_base64(text).unwrap(), bytes, "{text}");
        }
        let long: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &long);
        assert_eq!(decode_base64(&text).unwrap(), long);
        for bad in ["QQ", "QUI", "QR==", "QUJ=", "Q===", "QQ==QQ==", "QU I=", "QUI=\n", "-_8=", "QQ=", "=QQ="] {
            let err = decode_base64(bad).expect_err(bad);
            assert_eq!(err.code, "SerializationException", "{bad}");
        }
    }

    #[test]
    fn violations_are_reported_together_in_aws_form() {
        let doc = json::decode(br#"{"StreamName":"bad name!","Limit":0}"#).unwrap();
        let input = Input::root(&doc).unwrap();
        let mut v = Violations::default();
        input.string(&mut v, "StreamName", true, 1, 128, Some(NAME)).unwrap();
        input.int(&mut v, "Limit", false, 1, 10000).unwrap();
        input.string(&mut v, "ShardId", true, 1, 128, Some(NAME)).unwrap();
        let err = v.finish().unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "3 validation errors detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member \
             must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'limit' failed to satisfy \
             constraint: Member must have value greater than or equal to 1; Value null at 'shardId' failed to \
             satisfy constraint: Member must not be null"
                .replace("Value '0'", "Value 0")
        );
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let doc = json::decode(br#"{"StreamName":5,"Limit":"x","Data":"@@@"}"#).unwrap();
        let input = Input::root(&doc).unwrap();
        let mut v = Violations::default();
        assert_eq!(input.str("StreamName").unwrap_err().code, "SerializationException");
        assert_eq!(
            input.int(&mut v, "Limit", false, 1, 2).unwrap_err().message,
            "STRING_VALUE can not be converted to an Integer"
        );
        assert_eq!(input.blob(&mut v, "Data", true).unwrap_err().code, "SerializationException");
        assert_eq!(Input::root(&Doc::List(vec![])).err().unwrap().code, "SerializationException");
    }

    #[test]
    fn list_members_get_one_based_paths() {
        let doc = json::decode(br#"{"Records":[{"PartitionKey":"a"},{"PartitionKey":""}]}"#).unwrap();
        let input = Input::root(&doc).unwrap();
        let records = input.list_of_structures("Records").unwrap().unwrap();
        let mut v = Violations::default();
        for r in &records {
            r.string(&mut v, "PartitionKey", true, 1, 256, None).unwrap();
        }
        let err = v.finish().unwrap_err();
        assert!(err.message.contains("at 'records.2.member.partitionKey'"), "{}", err.message);
    }
}
