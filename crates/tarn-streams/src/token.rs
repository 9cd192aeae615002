//! Opaque, tamper-evident tokens: shard iterators and pagination tokens.
//!
//! A token is `base64url(payload | tag)` where `tag` is the first 16 bytes of
//! HMAC-SHA256(server key, kind | payload). Payload layouts are defined by the callers; the
//! codec is pure (no clock, no I/O).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const TAG_LEN: usize = 16;

/// What a token is for; a token of one kind never opens as another.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub enum TokenKind {
    ShardIterator = 1,
    ListShards = 2,
    ListStreams = 3,
}

#[derive(Clone)]
pub struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    pub fn new(key: [u8; 32]) -> TokenSigner {
        TokenSigner { key }
    }

    fn tag(&self, kind: TokenKind, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(&[kind as u8]);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        full[..TAG_LEN].try_into().expect("16 bytes")
    }

    pub fn seal(&self, kind: TokenKind, payload: &[u8]) -> String {
        let mut raw = payload.to_vec();
        raw.extend_from_slice(&self.tag(kind, payload));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The payload, if `token` was sealed by this key for `kind` and not altered.
    pub fn open(&self, kind: TokenKind, token: &str) -> Option<Vec<u8>> {
        let mut raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < TAG_LEN {
            return None;
        }
        let tag = raw.split_off(raw.len() - TAG_LEN);
        bool::from(self.tag(kind, &raw).ct_eq(&tag)).then_some(raw)
    }
}

/// A position in a shard, as carried by a shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IteratorPosition {
    pub stream_name: String,
    pub stream_tag: u32,
    pub shard_index: u32,
    pub offset: u64,
    pub issued_ms: i64,
}

impl IteratorPosition {
    pub fn encode(&self, signer: &TokenSigner) -> String {
        let mut p = Vec::with_capacity(25 + self.stream_name.len());
        p.push(1u8); // layout version
        p.extend_from_slice(&self.issued_ms.to_be_bytes());
        p.extend_from_slice(&self.stream_tag.to_be_bytes());
        p.extend_from_slice(&self.shard_index.to_be_bytes());
        p.extend_from_slice(&self.offset.to_be_bytes());
        p.extend_from_slice(self.stream_name.as_bytes());
        signer.seal(TokenKind::ShardIterator, &p)
    }

    pub fn decode(signer: &TokenSigner, token: &str) -> Option<IteratorPosition> {
        let p = signer.open(TokenKind::ShardIterator, token)?;
        if p.len() < 25 || p[0] != 1 {
            return None;
        }
        Some(IteratorPosition {
            issued_ms: i64::from_be_bytes(p[1..9].try_into().ok()?),
            stream_tag: u32::from_be_bytes(p[9..13].try_into().ok()?),
            shard_index: u32::from_be_bytes(p[13..17].try_into().ok()?),
            offset: u64::from_be_bytes(p[17..25].try_into().ok()?),
            stream_name: String::from_utf8(p[25..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> IteratorPosition {
        IteratorPosition {
            stream_name: "a".repeat(128),
            stream_tag: 7,
            shard_index: 3,
            offset: 99,
            issued_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn iterator_round_trips_and_fits_kinesis_limit() {
        let s = TokenSigner::new([9; 32]);
        let t = pos().encode(&s);
        assert!(t.len() <= 512, "{}", t.len());
        assert_eq!(IteratorPosition::decode(&s, &t), Some(pos()));
    }

    #[test]
    fn forged_altered_or_foreign_tokens_do_not_open() {
        let s = TokenSigner::new([9; 32]);
        let t = pos().encode(&s);
        assert!(IteratorPosition::decode(&TokenSigner::new([8; 32]), &t).is_none());
        let mut chars: Vec<char> = t.chars().collect();
        for i in [0, 5, chars.len() / 2, chars.len() - 1] {
            let orig = chars[i];
            chars[i] = if orig == 'A' { 'B' } else { 'A' };
            let altered: String = chars.iter().collect();
            assert!(IteratorPosition::decode(&s, &altered).is_none(), "altered at {i}");
            chars[i] = orig;
        }
        assert!(s.open(TokenKind::ListShards, &t).is_none());
        assert!(IteratorPosition::decode(&s, "not a token!").is_none());
        assert!(IteratorPosition::decode(&s, "").is_none());
    }
}
