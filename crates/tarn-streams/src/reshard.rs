//! SplitShard, MergeShards and UpdateShardCount.
//!
//! A reshard closes parent shards at their current end (no more writes, still readable) and opens
//! children with the parents recorded as lineage. It holds the stream's write lock, which
//! PutRecords holds (shared) only while appending, so no write lands in a shard after it closed.
//! UpdateShardCount is carried out as AWS does it: a series of splits and then merges, so every
//! child has at most two parents and readers can follow the lineage.

use std::sync::Arc;

use tarn_log::ShardLog;

use crate::error::{Error, Result};
use crate::model::{ClosedShard, ShardMeta, StreamMode, StreamStatus, shard_id};
use crate::service::{StreamState, Streams};

/// Most UpdateShardCount calls per rolling 24 hours.
const SCALING_OPS_PER_DAY: usize = 10;
const DAY_MS: i64 = 86_400_000;

impl Streams {
    fn check_reshardable(&self, name: &str, st: &StreamState, now: i64) -> Result<()> {
        if st.meta.mode == StreamMode::OnDemand {
            return Err(Error::validation(format!(
                "This API is not supported for on-demand streams. Stream {name} under account {} is in ON_DEMAND mode.",
                self.config.account_id
            )));
        }
        let status = st.meta.status(now);
        if status != StreamStatus::Active {
            return Err(Error::in_use(format!(
                "Stream {name} under account {} not ACTIVE, instead in state {}",
                self.config.account_id,
                status.as_str()
            )));
        }
        Ok(())
    }

    fn open_shard(&self, name: &str, st: &StreamState, shard: &str) -> Result<u32> {
        let missing = || {
            Error::not_found(format!(
                "Could not find shard {shard} in stream {name} under account {}.",
                self.config.account_id
            ))
        };
        let index = crate::model::parse_shard_id(shard).ok_or_else(missing)?;
        let meta = st.meta.shard(index).ok_or_else(missing)?;
        if !meta.is_open() {
            return Err(Error::in_use(format!(
                "Shard {} in stream {name} under account {} has already been merged or split, and thus is not \
                 eligible for merging or splitting.",
                shard_id(index),
                self.config.account_id
            )));
        }
        Ok(index)
    }

    /// Closes `parents` and opens a child for each `(start, end, parent, adjacent)`; returns the
    /// new indexes. Logs are created before the metadata that names them is persisted.
    fn reshard(
        &self,
        dir: &std::path::Path,
        st: &mut StreamState,
        parents: &[u32],
        children: &[(u128, u128, Option<u32>, Option<u32>)],
        now: i64,
    ) -> Result<Vec<u32>> {
        let mut indexes = Vec::with_capacity(children.len());
        let mut new_logs = Vec::new();
        let first = st.meta.next_shard_index();
        for (next, &(start_hash, end_hash, parent, adjacent_parent)) in (first..).zip(children) {
            let log = ShardLog::open(dir.join("shards").join(shard_id(next)), self.config.log)?;
            new_logs.push((next, Arc::new(log)));
            st.meta.shards.push(ShardMeta {
                index: next,
                start_hash,
                end_hash,
                parent,
                adjacent_parent,
                created_ms: now,
                closed: None,
            });
            indexes.push(next);
        }
        for &p in parents {
            let end_offset = st.logs[&p].written_end();
            let shard = st.meta.shards.iter_mut().find(|s| s.index == p).expect("parent exists");
            shard.closed = Some(ClosedShard { end_offset, closed_ms: now });
        }
        tarn_log::sync_dir(&dir.join("shards"))?;
        for (index, log) in new_logs {
            st.logs.insert(index, log);
            st.throttles.insert(index, Arc::default());
        }
        st.rebuild_routes();
        Ok(indexes)
    }

    pub fn split_shard(&self, name: &str, shard: &str, new_starting_hash_key: u128) -> Result<()> {
        let stream = self.stream(name)?;
        let now = self.now();
        let mut st = stream.write();
        self.check_reshardable(name, &st, now)?;
        let index = self.open_shard(name, &st, shard)?;
        let parent = st.meta.shard(index).expect("open shard").clone();
        if !(new_starting_hash_key > parent.start_hash.saturating_add(1) && new_starting_hash_key < parent.end_hash) {
            return Err(Error::invalid(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {} in stream {name} under \
                 account {} is not both greater than one plus the shard's StartingHashKey {} and less than the \
                 shard's EndingHashKey {}.",
                shard_id(index),
                self.config.account_id,
                parent.start_hash,
                parent.end_hash
            )));
        }
        self.check_shard_quota(1, Some((&stream, &st)))?;
        let children = [
            (parent.start_hash, new_starting_hash_key - 1, Some(index), None),
            (new_starting_hash_key, parent.end_hash, Some(index), None),
        ];
        let previous = st.meta.clone();
        self.reshard(&stream.dir, &mut st, &[index], &children, now)?;
        st.meta.updating_until_ms = now + self.config.transition_ms;
        self.commit(&stream, &mut st, previous)
    }

    pub fn merge_shards(&self, name: &str, shard: &str, adjacent: &str) -> Result<()> {
        let stream = self.stream(name)?;
        let now = self.now();
        let mut st = stream.write();
        self.check_reshardable(name, &st, now)?;
        let a = self.open_shard(name, &st, shard)?;
        let b = self.open_shard(name, &st, adjacent)?;
        let (sa, sb) = (st.meta.shard(a).expect("open").clone(), st.meta.shard(b).expect("open").clone());
        let adjacent_pair = a != b
            && (sa.end_hash.checked_add(1) == Some(sb.start_hash) || sb.end_hash.checked_add(1) == Some(sa.start_hash));
        if !adjacent_pair {
            return Err(Error::invalid(format!(
                "Shards {} and {} in stream {name} under account {} are not an adjacent pair of shards eligible for \
                 merging",
                shard_id(a),
                shard_id(b),
                self.config.account_id
            )));
        }
        let child = (sa.start_hash.min(sb.start_hash), sa.end_hash.max(sb.end_hash), Some(a), Some(b));
        let previous = st.meta.clone();
        self.reshard(&stream.dir, &mut st, &[a, b], &[child], now)?;
        st.meta.updating_until_ms = now + self.config.transition_ms;
        self.commit(&stream, &mut st, previous)
    }

    /// Persists a reshard, or puts the previous metadata back if that fails.
    fn commit(
        &self,
        stream: &crate::service::Stream,
        st: &mut StreamState,
        previous: crate::model::StreamMeta,
    ) -> Result<()> {
        if let Err(e) = self.persist(stream, &st.meta) {
            st.meta = previous;
            st.rebuild_routes();
            return Err(e);
        }
        Ok(())
    }

    /// Returns the open shard count before the change.
    pub fn update_shard_count(&self, name: &str, target: u32) -> Result<u32> {
        let stream = self.stream(name)?;
        let now = self.now();
        let mut st = stream.write();
        self.check_reshardable(name, &st, now)?;
        let current = st.meta.open_shards().count() as u32;
        if target > current * 2 || target * 2 < current {
            return Err(Error::limit(format!(
                "UpdateShardCount cannot scale up over double your current open shard count or scale down below \
                 half your current open shard count for stream {name} under account {}. Current open shard count: \
                 {current}, target shard count: {target}.",
                self.config.account_id
            )));
        }
        st.meta.scaling_ops_ms.retain(|&t| now - t < DAY_MS);
        if st.meta.scaling_ops_ms.len() >= SCALING_OPS_PER_DAY {
            return Err(Error::limit(format!(
                "Stream {name} under account {} has reached the limit of {SCALING_OPS_PER_DAY} UpdateShardCount \
                 operations in a rolling 24-hour period.",
                self.config.account_id
            )));
        }
        if target > current {
            self.check_shard_quota(target - current, Some((&stream, &st)))?;
        }
        let previous = st.meta.clone();
        if target != current {
            let boundaries: Vec<u128> = crate::hash_key::even_ranges(target).iter().skip(1).map(|r| r.0).collect();
            // Splits: cut every open shard at each target boundary strictly inside it.
            let open: Vec<ShardMeta> = st.meta.open_shards().cloned().collect();
            for shard in open {
                let cuts: Vec<u128> =
                    boundaries.iter().copied().filter(|&b| b > shard.start_hash && b <= shard.end_hash).collect();
                let mut piece = shard;
                for b in cuts {
                    let children = [
                        (piece.start_hash, b - 1, Some(piece.index), None),
                        (b, piece.end_hash, Some(piece.index), None),
                    ];
                    let made = self.reshard(&stream.dir, &mut st, &[piece.index], &children, now)?;
                    piece = st.meta.shard(made[1]).expect("just made").clone();
                }
            }
            // Merges: join neighbouring pieces that fall in the same target range.
            let ranges = crate::hash_key::even_ranges(target);
            for (start, end) in ranges {
                loop {
                    let mut inside: Vec<ShardMeta> =
                        st.meta.open_shards().filter(|s| s.start_hash >= start && s.end_hash <= end).cloned().collect();
                    if inside.len() < 2 {
                        break;
                    }
                    inside.sort_by_key(|s| s.start_hash);
                    let (a, b) = (&inside[0], &inside[1]);
                    let child = (a.start_hash, b.end_hash, Some(a.index), Some(b.index));
                    self.reshard(&stream.dir, &mut st, &[a.index, b.index], &[child], now)?;
                }
            }
        }
        st.meta.scaling_ops_ms.push(now);
        st.meta.updating_until_ms = now + self.config.transition_ms;
        self.commit(&stream, &mut st, previous)?;
        Ok(current)
    }
}
