//! Where delivery stands in its stream: for every shard, the offset of the next record to deliver.
//!
//! Committed with the data as the snapshot's `tarn.checkpoint`: shard id → the sequence number of
//! the last delivered record (the shard's starting sequence number while none is). A sequence
//! number's position is its record's offset + 1, so it is also the next offset to read, and it
//! names the stream it came from: a checkpoint of a deleted stream of the same name is not used.

use std::collections::BTreeMap;

use tarn_streams::SequenceNumber;
use tarn_streams::model::{ShardMeta, parse_shard_id, shard_id};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    stream_tag: u32,
    next: BTreeMap<u32, u64>,
}

impl Cursor {
    pub fn new(stream_tag: u32) -> Cursor {
        Cursor { stream_tag, next: BTreeMap::new() }
    }

    /// The cursor a committed checkpoint describes; entries that are not this stream's are dropped.
    pub fn from_checkpoint(stream_tag: u32, checkpoint: &BTreeMap<String, String>) -> Cursor {
        let mut cursor = Cursor::new(stream_tag);
        for (shard, sequence) in checkpoint {
            let (Some(index), Ok(seq)) = (parse_shard_id(shard), SequenceNumber::parse(sequence)) else { continue };
            if seq.stream_tag == stream_tag && seq.shard_index == index {
                cursor.next.insert(index, seq.position);
            }
        }
        cursor
    }

    pub fn to_checkpoint(&self) -> BTreeMap<String, String> {
        self.next
            .iter()
            .map(|(&shard, &next)| (shard_id(shard), SequenceNumber::new(self.stream_tag, shard, next).to_string()))
            .collect()
    }

    pub fn stream_tag(&self) -> u32 {
        self.stream_tag
    }

    /// The next offset to read in `shard` (0 for a shard never read).
    pub fn next(&self, shard: u32) -> u64 {
        self.next.get(&shard).copied().unwrap_or(0)
    }

    /// Whether `shard` has a position yet (read before, or in the checkpoint).
    pub fn knows(&self, shard: u32) -> bool {
        self.next.contains_key(&shard)
    }

    /// Every shard with a position, and that position.
    pub fn positions(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.next.iter().map(|(&shard, &next)| (shard, next))
    }

    pub fn advance(&mut self, shard: u32, next: u64) {
        self.next.insert(shard, next);
    }

    fn finished(&self, shard: &ShardMeta) -> bool {
        shard.closed.is_some_and(|c| self.next(shard.index) >= c.end_offset)
    }

    /// The shards to read now: not finished, and whose parents are finished (or expired), so that
    /// a partition key's records are delivered in order across a reshard.
    pub fn readable(&self, shards: &[ShardMeta]) -> Vec<u32> {
        let done = |parent: Option<u32>| {
            parent.is_none_or(|p| shards.iter().find(|s| s.index == p).is_none_or(|s| self.finished(s)))
        };
        shards
            .iter()
            .filter(|s| !self.finished(s) && done(s.parent) && done(s.adjacent_parent))
            .map(|s| s.index)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tarn_streams::model::ClosedShard;

    use super::*;

    fn shard(index: u32, parent: Option<u32>, closed_at: Option<u64>) -> ShardMeta {
        ShardMeta {
            index,
            start_hash: 0,
            end_hash: u128::MAX,
            parent,
            adjacent_parent: None,
            created_ms: 0,
            closed: closed_at.map(|end_offset| ClosedShard { end_offset, closed_ms: 0 }),
        }
    }

    #[test]
    fn round_trips_through_a_checkpoint_and_ignores_other_streams() {
        let mut c = Cursor::new(7);
        c.advance(0, 120);
        c.advance(3, 0);
        let checkpoint = c.to_checkpoint();
        assert_eq!(checkpoint.keys().collect::<Vec<_>>(), ["shardId-000000000000", "shardId-000000000003"]);
        assert_eq!(Cursor::from_checkpoint(7, &checkpoint), c);
        // The same name recreated has another tag: nothing carries over.
        assert_eq!(Cursor::from_checkpoint(8, &checkpoint), Cursor::new(8));
        // An entry filed under the wrong shard is not trusted either.
        let swapped =
            BTreeMap::from([("shardId-000000000001".to_string(), checkpoint["shardId-000000000000"].clone())]);
        assert_eq!(Cursor::from_checkpoint(7, &swapped).next(1), 0);
    }

    #[test]
    fn children_wait_until_their_parent_is_delivered() {
        let shards = [shard(0, None, Some(50)), shard(1, Some(0), None), shard(2, Some(0), None)];
        let mut c = Cursor::new(1);
        assert_eq!(c.readable(&shards), [0]);
        c.advance(0, 49);
        assert_eq!(c.readable(&shards), [0]);
        c.advance(0, 50);
        assert_eq!(c.readable(&shards), [1, 2]);
        // A parent that expired is no reason to wait.
        assert_eq!(Cursor::new(1).readable(&shards[1..]), [1, 2]);
    }
}
