//! GetShardIterator and GetRecords.

use tarn_log::Record;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ShardMeta, StreamStatus, shard_id};
use crate::sequence::{SequenceError, SequenceNumber};
use crate::service::Streams;
use crate::token::IteratorPosition;

/// Where a new iterator starts.
#[derive(Debug, Clone)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtSequenceNumber(String),
    AfterSequenceNumber(String),
    AtTimestamp(i64),
}

/// What GetRecords returns.
#[derive(Debug)]
pub struct RecordsPage {
    pub stream_name: String,
    pub stream_tag: u32,
    pub shard_index: u32,
    pub records: Vec<Record>,
    /// None once the end of a closed shard was reached.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: i64,
    /// Set when the end of a closed shard was reached.
    pub child_shards: Vec<ShardMeta>,
    /// Offset to continue from (for SubscribeToShard continuation numbers).
    pub next_offset: u64,
}

impl RecordsPage {
    /// The sequence number of the record at `offset`.
    pub fn sequence(&self, offset: u64) -> SequenceNumber {
        SequenceNumber::of_record(self.stream_tag, self.shard_index, offset)
    }

    /// Where a reader stands after this page, for SubscribeToShard's ContinuationSequenceNumber:
    /// resuming AFTER it continues exactly here.
    pub fn continuation(&self) -> SequenceNumber {
        SequenceNumber::new(self.stream_tag, self.shard_index, self.next_offset)
    }
}

fn format_utc(ms: i64) -> String {
    // "Thu Jan 22 01:22:02 UTC 2015", as AWS's expired-iterator message writes times.
    let ((year, month, day), (h, m, s)) = tarn_time::civil_from_millis(ms);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let weekday = WEEKDAYS[ms.div_euclid(86_400_000).rem_euclid(7) as usize];
    format!("{weekday} {} {day:02} {h:02}:{m:02}:{s:02} UTC {year}", MONTHS[(month - 1) as usize])
}

impl Streams {
    fn shard_missing(&self, stream: &str, shard: &str) -> Error {
        Error::not_found(format!(
            "Shard {shard} in stream {stream} under account {} does not exist",
            self.config.account_id
        ))
    }

    pub fn get_shard_iterator(&self, stream_name: &str, shard: &str, start: StartingPosition) -> Result<String> {
        Ok(self.start_position(stream_name, shard, start)?.encode(&self.signer))
    }

    /// Where a reader starting at `start` stands; SubscribeToShard reads from it directly.
    pub fn start_position(&self, stream_name: &str, shard: &str, start: StartingPosition) -> Result<IteratorPosition> {
        let stream = self.stream(stream_name)?;
        let now = self.now();
        let st = stream.read();
        if st.meta.status(now) == StreamStatus::Creating {
            return Err(self.shard_missing(stream_name, shard));
        }
        let index = crate::model::parse_shard_id(shard).ok_or_else(|| self.shard_missing(stream_name, shard))?;
        let meta = st.meta.shard(index).ok_or_else(|| self.shard_missing(stream_name, &shard_id(index)))?;
        let log = &st.logs[&index];
        let end = meta.closed.map_or_else(|| log.durable_end(), |c| c.end_offset.min(log.durable_end()));
        let check_sequence = |s: &str| -> Result<u64> {
            let invalid = |why: &str| {
                Error::invalid(format!(
                    "StartingSequenceNumber {s} used in GetShardIterator on shard {} in stream {stream_name} under \
                     account {} is invalid{why}.",
                    shard_id(index),
                    self.config.account_id
                ))
            };
            let seq = match SequenceNumber::parse(s) {
                Ok(seq) => seq,
                Err(SequenceError::Malformed) => return Err(invalid("")),
                Err(SequenceError::Foreign) => return Err(invalid(" because it did not come from this stream")),
            };
            if seq.stream_tag != st.meta.tag {
                return Err(invalid(" because it did not come from this stream"));
            }
            if seq.shard_index != index {
                return Err(Error::invalid(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id(seq.shard_index),
                    shard_id(index)
                )));
            }
            if seq.position > end {
                return Err(invalid(""));
            }
            Ok(seq.position)
        };
        let offset = match start {
            StartingPosition::TrimHorizon => log.start_offset(),
            StartingPosition::Latest => end,
            // A position is one past its record's offset: AT reads that record, AFTER the next.
            StartingPosition::AtSequenceNumber(s) => check_sequence(&s)?.saturating_sub(1),
            StartingPosition::AfterSequenceNumber(s) => check_sequence(&s)?,
            StartingPosition::AtTimestamp(ts) => {
                if ts > now {
                    return Err(Error::invalid(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. \
                         timestampInMillis: {ts}, currentTimestampInMillis: {now}"
                    )));
                }
                log.offset_at_time(ts)?.min(end)
            }
        };
        Ok(IteratorPosition {
            stream_name: stream_name.to_owned(),
            stream_tag: st.meta.tag,
            shard_index: index,
            offset,
            issued_ms: now,
        })
    }

    /// Decodes and checks an iterator: genuine, unexpired, and for a stream that still exists.
    pub fn open_iterator(&self, token: &str) -> Result<IteratorPosition> {
        let pos =
            IteratorPosition::decode(&self.signer, token).ok_or_else(|| Error::invalid("Invalid ShardIterator."))?;
        let now = self.now();
        if now - pos.issued_ms > self.config.iterator_ttl_ms {
            return Err(Error::new(
                ErrorKind::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further \
                     in the future than the tolerated delay of {} milliseconds.",
                    format_utc(pos.issued_ms),
                    format_utc(now),
                    self.config.iterator_ttl_ms
                ),
            ));
        }
        Ok(pos)
    }

    pub fn get_records(&self, token: &str, limit: usize) -> Result<RecordsPage> {
        let pos = self.open_iterator(token)?;
        self.read_from(&pos, limit, self.config.max_get_records_bytes)
    }

    /// Reads from an iterator position; used by GetRecords and by SubscribeToShard.
    pub fn read_from(&self, pos: &IteratorPosition, limit: usize, max_bytes: usize) -> Result<RecordsPage> {
        let stream = self.stream(&pos.stream_name)?;
        let now = self.now();
        let (log, closed_end, throttle) = {
            let st = stream.read();
            if st.meta.tag != pos.stream_tag {
                return Err(self.shard_missing(&pos.stream_name, &shard_id(pos.shard_index)));
            }
            let meta = st
                .meta
                .shard(pos.shard_index)
                .ok_or_else(|| self.shard_missing(&pos.stream_name, &shard_id(pos.shard_index)))?;
            (
                st.logs[&pos.shard_index].clone(),
                meta.closed.map(|c| c.end_offset),
                st.throttles[&pos.shard_index].clone(),
            )
        };
        if self.config.shard_throughput_limits && !throttle.admit_read(now) {
            return Err(Error::new(
                ErrorKind::ProvisionedThroughputExceeded,
                format!(
                    "Rate exceeded for shard {} in stream {} under account {}.",
                    shard_id(pos.shard_index),
                    pos.stream_name,
                    self.config.account_id
                ),
            ));
        }
        let limit = limit.min(self.config.max_get_records_entries);
        let mut page = log.read(pos.offset, limit, max_bytes)?;
        if let Some(end) = closed_end {
            page.records.retain(|r| r.offset < end);
            page.next_offset = page.next_offset.min(end);
        }
        if self.config.shard_throughput_limits {
            throttle.charge_read(page.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum());
        }
        let durable_end = log.durable_end();
        let millis_behind_latest = match page.records.last() {
            _ if page.next_offset >= durable_end => 0,
            Some(last) => (now - last.arrival_ms).max(0),
            None => log.last_arrival_ms().map_or(0, |t| (now - t).max(0)),
        };
        let at_end_of_closed = closed_end.is_some_and(|end| page.next_offset >= end);
        let (next_iterator, child_shards) = if at_end_of_closed {
            let st = stream.read();
            (None, st.meta.children_of(pos.shard_index).cloned().collect())
        } else {
            let next = IteratorPosition { offset: page.next_offset, issued_ms: now, ..pos.clone() };
            (Some(next.encode(&self.signer)), Vec::new())
        };
        Ok(RecordsPage {
            stream_name: pos.stream_name.clone(),
            stream_tag: pos.stream_tag,
            shard_index: pos.shard_index,
            records: page.records,
            next_iterator,
            millis_behind_latest,
            child_shards,
            next_offset: page.next_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_format_matches_aws_text() {
        assert_eq!(super::format_utc(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(super::format_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
