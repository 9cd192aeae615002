//! Cutting a stream record's payload into JSON objects.
//!
//! Producers send one object per record, several separated by newlines, or several written back
//! to back (`{..}{..}`); all three are read the same way. Whatever does not parse is returned with
//! its raw bytes, and the objects before it are kept.

use serde_json::{Map, Value};

/// A part of a payload that is not a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitError {
    /// The bytes that could not be read (the rest of the payload from the first bad byte, or the
    /// one value that was not an object).
    pub raw: Vec<u8>,
    pub message: String,
}

/// The objects in `payload`, in order, and what could not be read.
pub fn split_payload(payload: &[u8]) -> (Vec<Map<String, Value>>, Vec<SplitError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(payload).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(Value::Object(map))) => objects.push(map),
            Some(Ok(other)) => errors.push(SplitError {
                raw: payload[start..stream.byte_offset()].trim_ascii().to_vec(),
                message: format!("expected a JSON object, found {}", kind(&other)),
            }),
            Some(Err(e)) => {
                errors.push(SplitError {
                    raw: payload[start..].trim_ascii().to_vec(),
                    message: format!("malformed JSON: {e}"),
                });
                break;
            }
        }
    }
    (objects, errors)
}

/// How messages name a JSON value's kind.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_newline_and_concatenated_objects() {
        assert_eq!(split_payload(br#"{"a":1}"#).0.len(), 1);
        assert_eq!(split_payload(b"{\"a\":1}\n{\"a\":2}\n").0.len(), 2);
        assert_eq!(split_payload(br#"{"a":1}{"a":2} {"a":3}"#).0.len(), 3);
    }

    #[test]
    fn bad_parts_are_kept_with_their_bytes() {
        let (objects, errors) = split_payload(b"{\"a\":1}\n42\n{\"a\":");
        assert_eq!(objects.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].raw, b"42");
        assert_eq!(errors[1].raw, b"{\"a\":");
        assert!(errors[1].message.starts_with("malformed JSON"));
        let (objects, errors) = split_payload(b"not json");
        assert!(objects.is_empty() && errors.len() == 1);
    }
}
