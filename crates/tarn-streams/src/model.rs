//! Stream and shard metadata as persisted in each stream's `stream.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sequence::SequenceNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

/// A shard's identity, range and lineage. Hash keys are stored as decimal strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    #[serde(with = "u128_string")]
    pub start_hash: u128,
    #[serde(with = "u128_string")]
    pub end_hash: u128,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    pub created_ms: i64,
    /// Set once the shard is closed by a reshard: no more writes, readable until it expires.
    pub closed: Option<ClosedShard>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ClosedShard {
    /// One past the last offset the shard will ever hold.
    pub end_offset: u64,
    pub closed_ms: i64,
}

impl ShardMeta {
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }
    pub fn contains(&self, hash: u128) -> bool {
        self.start_hash <= hash && hash <= self.end_hash
    }
}

/// The shard id string for an index: `shardId-000000000007`.
pub fn shard_id(index: u32) -> String {
    std::str::from_utf8(&shard_id_bytes(index)).expect("the template and digits are ASCII").to_owned()
}

/// [`shard_id`] as ASCII bytes, without allocating. Written digit by digit into a fixed template:
/// PutRecords answers with one per record, and `format!`'s zero padding (a character at a time)
/// made that a few percent of ingest.
pub fn shard_id_bytes(index: u32) -> [u8; 20] {
    let mut id = *b"shardId-000000000000";
    let mut rest = index;
    for digit in id.iter_mut().rev() {
        if rest == 0 {
            break;
        }
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    id
}

/// Accepts `shardId-000000000007`, and, as AWS does, the lenient forms `shardId-7` and `7`.
pub fn parse_shard_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("shardId-").unwrap_or(s);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    /// Random per stream; part of every sequence number and iterator, so that numbers from a
    /// deleted stream of the same name are recognised as foreign.
    pub tag: u32,
    pub created_ms: i64,
    /// CREATING until then.
    pub active_at_ms: i64,
    /// UPDATING until then (after a reshard or mode change).
    pub updating_until_ms: i64,
    pub retention_hours: u32,
    pub mode: StreamMode,
    pub max_record_size_kib: u32,
    pub shards: Vec<ShardMeta>,
    pub tags: BTreeMap<String, String>,
    pub consumers: Vec<ConsumerMeta>,
    pub encryption_key: Option<String>,
    /// Times of recent UpdateShardCount calls, for AWS's per-day limit.
    #[serde(default)]
    pub scaling_ops_ms: Vec<i64>,
    #[serde(default)]
    pub mode_switches_ms: Vec<i64>,
}

impl StreamMeta {
    pub fn status(&self, now_ms: i64) -> StreamStatus {
        if now_ms < self.active_at_ms {
            StreamStatus::Creating
        } else if now_ms < self.updating_until_ms {
            StreamStatus::Updating
        } else {
            StreamStatus::Active
        }
    }

    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.index == index)
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &ShardMeta> {
        self.shards.iter().filter(|s| s.is_open())
    }

    pub fn next_shard_index(&self) -> u32 {
        self.shards.iter().map(|s| s.index + 1).max().unwrap_or(0)
    }

    pub fn children_of(&self, index: u32) -> impl Iterator<Item = &ShardMeta> {
        self.shards.iter().filter(move |s| s.parent == Some(index) || s.adjacent_parent == Some(index))
    }

    /// The sequence number of the record at `offset` in a shard.
    pub fn record_sequence(&self, shard_index: u32, offset: u64) -> SequenceNumber {
        SequenceNumber::of_record(self.tag, shard_index, offset)
    }

    /// A shard's StartingSequenceNumber: just before its first record.
    pub fn start_sequence(&self, shard_index: u32) -> SequenceNumber {
        SequenceNumber::new(self.tag, shard_index, 0)
    }

    /// A closed shard's EndingSequenceNumber: its last record's (its start if it has none).
    pub fn end_sequence(&self, shard: &ShardMeta) -> Option<SequenceNumber> {
        shard.closed.map(|c| SequenceNumber::new(self.tag, shard.index, c.end_offset))
    }
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_format_and_parse_leniently() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(shard_id(0), "shardId-000000000000");
        assert_eq!(shard_id(u32::MAX), "shardId-004294967295");
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        assert_eq!(parse_shard_id("shardId-7"), Some(7));
        assert_eq!(parse_shard_id("7"), Some(7));
        assert_eq!(parse_shard_id("shardId-"), None);
        assert_eq!(parse_shard_id("shard-7"), None);
    }
}
