//! Wire formats of AWS's JSON 1.1 and CBOR 1.1 protocols, free of I/O.

pub mod cbor;
pub mod doc;
pub mod event_stream;
pub mod input;
pub mod json;
pub mod records;

pub use doc::{Doc, Obj};

/// The body format of a request, which its response uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Cbor,
}

impl Codec {
    pub fn from_content_type(content_type: Option<&str>) -> Codec {
        match content_type {
            Some(ct) if ct.starts_with("application/x-amz-cbor") => Codec::Cbor,
            _ => Codec::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/x-amz-json-1.1",
            Codec::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// Decodes a request body; an empty body is an empty structure.
    pub fn decode(self, body: &[u8]) -> Result<Doc<'_>, crate::ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(crate::ApiError::serialization("Request body is empty; expected a structure"));
        }
        match self {
            Codec::Json => {
                json::decode(body).map_err(|e| crate::ApiError::serialization(format!("Malformed JSON: {e}")))
            }
            Codec::Cbor => cbor::decode(body).map_err(crate::ApiError::serialization),
        }
    }

    pub fn encode(self, doc: &Doc<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(json::encoded_len_hint(doc));
        match self {
            Codec::Json => json::encode(doc, &mut out),
            Codec::Cbor => cbor::encode(doc, &mut out),
        }
        out
    }
}
