//! Retention, tags, stream mode, consumers and ListShards.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{ConsumerMeta, ShardMeta, StreamMode, StreamStatus, parse_shard_id};
use crate::service::Streams;
use crate::token::TokenKind;

pub const MIN_RETENTION_HOURS: u32 = 24;
pub const MAX_RETENTION_HOURS: u32 = 8760;

/// ListShards' ShardFilter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardFilter {
    AfterShardId(u32),
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp(i64),
    FromTimestamp(i64),
}

/// A registered enhanced fan-out consumer.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    pub arn: String,
    pub stream_arn: String,
    pub created_ms: i64,
}

impl Streams {
    fn with_meta<T>(&self, name: &str, f: impl FnOnce(&mut crate::model::StreamMeta, i64) -> Result<T>) -> Result<T> {
        let stream = self.stream(name)?;
        let now = self.now();
        let mut st = stream.write();
        let previous = st.meta.clone();
        let out = f(&mut st.meta, now)?;
        if let Err(e) = self.persist(&stream, &st.meta) {
            st.meta = previous;
            return Err(e);
        }
        Ok(out)
    }

    pub fn change_retention(&self, name: &str, hours: u32, increase: bool) -> Result<()> {
        let acct = self.config.account_id.clone();
        if hours < MIN_RETENTION_HOURS {
            return Err(Error::invalid(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention period ({hours} \
                 hours) is too short."
            )));
        }
        if hours > MAX_RETENTION_HOURS {
            return Err(Error::invalid(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} \
                 hours) is too long."
            )));
        }
        self.with_meta(name, |meta, _| {
            let current = meta.retention_hours;
            if increase && hours < current {
                return Err(Error::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} under account {acct} can not be \
                     shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
                )));
            }
            if !increase && hours > current {
                return Err(Error::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} under account {acct} can not be \
                     longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
                )));
            }
            meta.retention_hours = hours;
            Ok(())
        })
    }

    pub fn add_tags(&self, name: &str, tags: BTreeMap<String, String>) -> Result<()> {
        let limit_error = self.too_many_tags(name);
        let max = self.config.max_tags_per_stream;
        self.with_meta(name, |meta, _| {
            let mut merged = meta.tags.clone();
            merged.extend(tags);
            if merged.len() > max {
                return Err(limit_error);
            }
            meta.tags = merged;
            Ok(())
        })
    }

    pub fn remove_tags(&self, name: &str, keys: &[String]) -> Result<()> {
        self.with_meta(name, |meta, _| {
            for k in keys {
                meta.tags.remove(k);
            }
            Ok(())
        })
    }

    pub fn update_stream_mode(&self, name: &str, mode: StreamMode) -> Result<()> {
        let acct = self.config.account_id.clone();
        let transition = self.config.transition_ms;
        self.with_meta(name, |meta, now| {
            let status = meta.status(now);
            if status != StreamStatus::Active {
                return Err(Error::in_use(format!(
                    "Stream {name} under account {acct} not ACTIVE, instead in state {}",
                    status.as_str()
                )));
            }
            meta.mode_switches_ms.retain(|&t| now - t < 86_400_000);
            if meta.mode != mode && meta.mode_switches_ms.len() >= 2 {
                return Err(Error::limit(format!(
                    "Stream {name} under account {acct} has already switched capacity mode twice in the last 24 hours."
                )));
            }
            if meta.mode != mode {
                meta.mode = mode;
                meta.mode_switches_ms.push(now);
                meta.updating_until_ms = now + transition;
            }
            Ok(())
        })
    }

    fn consumer_arn(&self, stream: &str, name: &str, created_ms: i64) -> String {
        format!("{}/consumer/{name}:{}", self.config.stream_arn(stream), created_ms / 1000)
    }

    fn consumer_of(&self, stream: &str, c: &ConsumerMeta) -> Consumer {
        Consumer {
            name: c.name.clone(),
            arn: self.consumer_arn(stream, &c.name, c.created_ms),
            stream_arn: self.config.stream_arn(stream),
            created_ms: c.created_ms,
        }
    }

    pub fn register_consumer(&self, stream: &str, name: &str) -> Result<Consumer> {
        let acct = self.config.account_id.clone();
        let max = self.config.max_consumers_per_stream;
        let meta = self.with_meta(stream, |meta, now| {
            if meta.consumers.iter().any(|c| c.name == name) {
                return Err(Error::in_use(format!(
                    "Consumer {name} under stream {stream} under account {acct} already exists."
                )));
            }
            if meta.consumers.len() >= max {
                return Err(Error::limit(format!(
                    "Stream {stream} under account {acct} already has {max} consumers, the most it may have."
                )));
            }
            let c = ConsumerMeta { name: name.to_owned(), created_ms: now };
            meta.consumers.push(c.clone());
            Ok(c)
        })?;
        Ok(self.consumer_of(stream, &meta))
    }

    pub fn list_consumers(&self, stream: &str) -> Result<Vec<Consumer>> {
        let snapshot = self.snapshot(stream)?;
        Ok(snapshot.meta.consumers.iter().map(|c| self.consumer_of(stream, c)).collect())
    }

    /// Finds a consumer by its ARN, or by stream and name.
    pub fn describe_consumer(&self, stream: Option<&str>, name: Option<&str>, arn: Option<&str>) -> Result<Consumer> {
        let (stream, name) = self.consumer_key(stream, name, arn)?;
        let found =
            self.list_consumers(&stream)?.into_iter().find(|c| c.name == name && arn.is_none_or(|a| a == c.arn));
        found.ok_or_else(|| {
            Error::not_found(format!(
                "Consumer {name} under stream {stream} under account {} not found.",
                self.config.account_id
            ))
        })
    }

    fn consumer_key(&self, stream: Option<&str>, name: Option<&str>, arn: Option<&str>) -> Result<(String, String)> {
        if let Some(arn) = arn {
            // arn:aws:kinesis:region:acct:stream/<stream>/consumer/<name>:<epoch>
            let rest = arn.split_once(":stream/").map(|(_, r)| r);
            let parsed = rest.and_then(|r| {
                let (s, c) = r.split_once("/consumer/")?;
                let (n, _) = c.rsplit_once(':')?;
                Some((s.to_owned(), n.to_owned()))
            });
            return parsed.ok_or_else(|| Error::invalid(format!("Invalid ConsumerARN {arn}.")));
        }
        match (stream, name) {
            (Some(s), Some(n)) => Ok((s.to_owned(), n.to_owned())),
            _ => Err(Error::invalid("Either ConsumerARN or both StreamARN and ConsumerName must be provided.")),
        }
    }

    pub fn deregister_consumer(&self, stream: Option<&str>, name: Option<&str>, arn: Option<&str>) -> Result<()> {
        let c = self.describe_consumer(stream, name, arn)?;
        let (stream, _) = self.consumer_key(stream, name, arn)?;
        self.with_meta(&stream, |meta, _| {
            meta.consumers.retain(|m| m.name != c.name);
            Ok(())
        })
    }

    /// The shards a ListShards call selects, in shard order.
    pub fn list_shards(
        &self,
        stream: &str,
        filter: &ShardFilter,
        exclusive_start: Option<&str>,
    ) -> Result<Vec<ShardMeta>> {
        let snapshot = self.snapshot(stream)?;
        let meta = &snapshot.meta;
        let after = exclusive_start.and_then(parse_shard_id);
        let mut shards: Vec<ShardMeta> = meta
            .shards
            .iter()
            .filter(|s| match *filter {
                ShardFilter::AfterShardId(id) => s.index > id,
                ShardFilter::AtTrimHorizon => {
                    s.parent.is_none_or(|p| meta.shard(p).is_none())
                        && s.adjacent_parent.is_none_or(|p| meta.shard(p).is_none())
                }
                ShardFilter::FromTrimHorizon => true,
                ShardFilter::AtLatest => s.is_open(),
                ShardFilter::AtTimestamp(ts) => s.created_ms <= ts && s.closed.is_none_or(|c| c.closed_ms > ts),
                ShardFilter::FromTimestamp(ts) => s.closed.is_none_or(|c| c.closed_ms >= ts),
            })
            .filter(|s| after.is_none_or(|a| s.index > a))
            .cloned()
            .collect();
        shards.sort_by_key(|s| s.index);
        Ok(shards)
    }

    /// A ListShards NextToken: where the next page starts, valid for 300 seconds.
    pub fn list_shards_token(&self, stream: &str, last_shard: u32, filter: &ShardFilter) -> String {
        let filter_bytes = match *filter {
            ShardFilter::AfterShardId(id) => [0u8].into_iter().chain(i64::from(id).to_be_bytes()).collect::<Vec<_>>(),
            ShardFilter::AtTrimHorizon => vec![1],
            ShardFilter::FromTrimHorizon => vec![2],
            ShardFilter::AtLatest => vec![3],
            ShardFilter::AtTimestamp(ts) => [4u8].into_iter().chain(ts.to_be_bytes()).collect(),
            ShardFilter::FromTimestamp(ts) => [5u8].into_iter().chain(ts.to_be_bytes()).collect(),
        };
        let mut p = Vec::new();
        p.extend_from_slice(&self.now().to_be_bytes());
        p.extend_from_slice(&last_shard.to_be_bytes());
        p.push(filter_bytes.len() as u8);
        p.extend_from_slice(&filter_bytes);
        p.extend_from_slice(stream.as_bytes());
        self.signer.seal(TokenKind::ListShards, &p)
    }

    /// Opens a ListShards NextToken: `(stream, last shard listed, filter)`.
    pub fn open_list_shards_token(&self, token: &str) -> Result<(String, u32, ShardFilter)> {
        let invalid = || Error::invalid(format!("Invalid NextToken {token}."));
        let p = self.signer.open(TokenKind::ListShards, token).ok_or_else(invalid)?;
        if p.len() < 13 {
            return Err(invalid());
        }
        let issued = i64::from_be_bytes(p[0..8].try_into().map_err(|_| invalid())?);
        if self.now() - issued > 300_000 {
            return Err(Error::new(
                crate::error::ErrorKind::ExpiredNextToken,
                format!("The NextToken {token} has expired."),
            ));
        }
        let last = u32::from_be_bytes(p[8..12].try_into().map_err(|_| invalid())?);
        let flen = p[12] as usize;
        let f = p.get(13..13 + flen).ok_or_else(invalid)?;
        let num = |b: &[u8]| b.get(1..9).and_then(|x| x.try_into().ok()).map(i64::from_be_bytes).ok_or_else(invalid);
        let filter = match f.first() {
            Some(0) => ShardFilter::AfterShardId(num(f)? as u32),
            Some(1) => ShardFilter::AtTrimHorizon,
            Some(2) => ShardFilter::FromTrimHorizon,
            Some(3) => ShardFilter::AtLatest,
            Some(4) => ShardFilter::AtTimestamp(num(f)?),
            Some(5) => ShardFilter::FromTimestamp(num(f)?),
            _ => return Err(invalid()),
        };
        let stream = String::from_utf8(p[13 + flen..].to_vec()).map_err(|_| invalid())?;
        Ok((stream, last, filter))
    }
}
