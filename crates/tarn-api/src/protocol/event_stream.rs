//! AWS event-stream framing (`application/vnd.amazon.eventstream`), used by SubscribeToShard.
//! Pure functions over bytes.
//!
//! ```text
//! message := total_len u32 | headers_len u32 | crc32(first 8 bytes) u32 | headers | payload
//!            | crc32(everything before) u32                                   (big-endian)
//! header  := name_len u8 | name | type u8 | value       (type 7: string = len u16 | utf-8)
//! ```

/// Bytes of framing around headers and payload.
const OVERHEAD: usize = 16;
const STRING_TYPE: u8 = 7;

/// A decoded message: string headers and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Appends one message with string headers to `out`.
pub fn encode(headers: &[(&str, &str)], payload: &[u8], out: &mut Vec<u8>) {
    let headers_len: usize = headers.iter().map(|(k, v)| 1 + k.len() + 1 + 2 + v.len()).sum();
    let total = OVERHEAD + headers_len + payload.len();
    let start = out.len();
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(STRING_TYPE);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&message_crc.to_be_bytes());
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("incomplete message")]
    Incomplete,
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// Decodes the message at the start of `buf`; returns it and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    if buf.len() < 12 {
        return Err(DecodeError::Incomplete);
    }
    let be32 = |at: usize| u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let (total, headers_len) = (be32(0) as usize, be32(4) as usize);
    if crc32fast::hash(&buf[..8]) != be32(8) {
        return Err(DecodeError::Invalid("prelude checksum mismatch"));
    }
    if total < OVERHEAD || headers_len > total - OVERHEAD {
        return Err(DecodeError::Invalid("lengths do not fit"));
    }
    if buf.len() < total {
        return Err(DecodeError::Incomplete);
    }
    if crc32fast::hash(&buf[..total - 4]) != be32(total - 4) {
        return Err(DecodeError::Invalid("message checksum mismatch"));
    }
    let mut headers = Vec::new();
    let (mut at, end) = (12, 12 + headers_len);
    while at < end {
        let name_len = buf[at] as usize;
        let name = buf.get(at + 1..at + 1 + name_len).ok_or(DecodeError::Invalid("header name overruns"))?;
        at += 1 + name_len;
        if buf.get(at) != Some(&STRING_TYPE) || at + 3 > end {
            return Err(DecodeError::Invalid("only string headers are supported"));
        }
        let len = u16::from_be_bytes([buf[at + 1], buf[at + 2]]) as usize;
        let value = buf
            .get(at + 3..at + 3 + len)
            .filter(|_| at + 3 + len <= end)
            .ok_or(DecodeError::Invalid("header value overruns"))?;
        at += 3 + len;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("header is not utf-8"));
        headers.push((text(name)?, text(value)?));
    }
    Ok((Message { headers, payload: buf[end..total - 4].to_vec() }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_any_corruption() {
        let mut buf = Vec::new();
        encode(&[(":message-type", "event"), (":event-type", "initial-response")], b"{}", &mut buf);
        let (msg, used) = decode(&buf).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(msg.header(":event-type"), Some("initial-response"));
        assert_eq!(msg.payload, b"{}");
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "corruption at byte {i} went unnoticed");
        }
        assert_eq!(decode(&buf[..buf.len() - 1]), Err(DecodeError::Incomplete));
    }
}
