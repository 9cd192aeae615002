//! The Kinesis Data Streams API (`X-Amz-Target: Kinesis_20131202.<Action>`), one file per action.
//! Each action reads and validates its input, calls `tarn-streams`, and builds its output.

use tarn_streams::model::{ShardMeta, StreamMeta, StreamMode, shard_id};
use tarn_streams::{RecordsPage, SequenceNumber, Streams};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::protocol::input::{Input, NAME, STREAM_ARN, Violations, length_within};
use crate::protocol::records::RecordList;
use crate::protocol::{Doc, Obj};

mod add_tags_to_stream;
mod create_stream;
mod decrease_stream_retention_period;
mod delete_stream;
mod deregister_stream_consumer;
mod describe_limits;
mod describe_stream;
mod describe_stream_consumer;
mod describe_stream_summary;
mod get_records;
mod get_shard_iterator;
mod increase_stream_retention_period;
mod list_shards;
mod list_stream_consumers;
mod list_streams;
mod list_tags_for_stream;
mod merge_shards;
mod put_record;
pub(crate) mod put_records;
mod register_stream_consumer;
mod remove_tags_from_stream;
mod split_shard;
pub mod subscribe_to_shard;
mod update_shard_count;
mod update_stream_mode;

pub const TARGET_PREFIX: &str = "Kinesis_20131202";

/// What an action needs from the server.
pub struct Ctx<'a> {
    pub streams: &'a Streams,
    pub metrics: &'a Metrics,
}

type Handler = fn(&Ctx<'_>, &Doc<'_>) -> Result<Doc<'static>, ApiError>;

const ACTIONS: &[(&str, Handler)] = &[
    ("AddTagsToStream", add_tags_to_stream::handle),
    ("CreateStream", create_stream::handle),
    ("DecreaseStreamRetentionPeriod", decrease_stream_retention_period::handle),
    ("DeleteStream", delete_stream::handle),
    ("DeregisterStreamConsumer", deregister_stream_consumer::handle),
    ("DescribeLimits", describe_limits::handle),
    ("DescribeStream", describe_stream::handle),
    ("DescribeStreamConsumer", describe_stream_consumer::handle),
    ("DescribeStreamSummary", describe_stream_summary::handle),
    ("GetRecords", get_records::handle),
    ("GetShardIterator", get_shard_iterator::handle),
    ("IncreaseStreamRetentionPeriod", increase_stream_retention_period::handle),
    ("ListShards", list_shards::handle),
    ("ListStreamConsumers", list_stream_consumers::handle),
    ("ListStreams", list_streams::handle),
    ("ListTagsForStream", list_tags_for_stream::handle),
    ("MergeShards", merge_shards::handle),
    ("PutRecord", put_record::handle),
    (PUT_RECORDS, put_records::handle),
    ("RegisterStreamConsumer", register_stream_consumer::handle),
    ("RemoveTagsFromStream", remove_tags_from_stream::handle),
    ("SplitShard", split_shard::handle),
    ("UpdateShardCount", update_shard_count::handle),
    ("UpdateStreamMode", update_stream_mode::handle),
];

/// SubscribeToShard streams its answer, so it is dispatched by the server, not through ACTIONS.
pub const SUBSCRIBE_TO_SHARD: &str = "SubscribeToShard";
/// Has a JSON fast path (`put_records::handle_json`) beside its entry in the action table.
pub const PUT_RECORDS: &str = "PutRecords";

pub fn is_operation(op: &str) -> bool {
    op == SUBSCRIBE_TO_SHARD || ACTIONS.iter().any(|(name, _)| *name == op)
}

pub fn dispatch(ctx: &Ctx<'_>, op: &str, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    crate::actions::find(ACTIONS, TARGET_PREFIX, op)?(ctx, doc)
}

/// The longest StreamName, in characters.
const STREAM_NAME_MAX: usize = 128;
/// The longest StreamARN, in characters.
const STREAM_ARN_MAX: usize = 2048;

/// The `StreamName` and `StreamARN` members most actions take.
pub(crate) struct StreamRef<'d> {
    name: Option<&'d str>,
    arn: Option<&'d str>,
}

impl<'d> StreamRef<'d> {
    pub fn read(input: &Input<'d, '_>, v: &mut Violations) -> Result<StreamRef<'d>, ApiError> {
        Ok(StreamRef {
            name: input.string(v, "StreamName", false, 1, STREAM_NAME_MAX, Some(NAME))?,
            arn: input.string(v, "StreamARN", false, 1, STREAM_ARN_MAX, Some(STREAM_ARN))?,
        })
    }

    /// Whether the name and ARN pass the checks of [`StreamRef::read`] (for a caller that took
    /// them from the body without a document).
    pub fn valid(&self) -> bool {
        self.name.is_none_or(|n| length_within(n, 1, STREAM_NAME_MAX) && (NAME.matches)(n))
            && self.arn.is_none_or(|a| length_within(a, 1, STREAM_ARN_MAX) && (STREAM_ARN.matches)(a))
    }

    /// Call after the violations are finished: the stream's name.
    pub fn resolve(&self, ctx: &Ctx<'_>) -> Result<String, ApiError> {
        Ok(ctx.streams.resolve_name(self.name, self.arn)?)
    }

    pub fn given(&self) -> bool {
        self.name.is_some() || self.arn.is_some()
    }
}

pub(crate) fn hash_range(s: &ShardMeta) -> Doc<'static> {
    Obj::new().put("StartingHashKey", s.start_hash.to_string()).put("EndingHashKey", s.end_hash.to_string()).done()
}

/// A shard as DescribeStream and ListShards show it.
pub(crate) fn shard_doc(stream: &StreamMeta, s: &ShardMeta) -> Doc<'static> {
    let start = stream.start_sequence(s.index).to_string();
    let end = stream.end_sequence(s).map(|e| e.to_string());
    Obj::new()
        .put("ShardId", shard_id(s.index))
        .opt("ParentShardId", s.parent.map(shard_id))
        .opt("AdjacentParentShardId", s.adjacent_parent.map(shard_id))
        .put("HashKeyRange", hash_range(s))
        .put("SequenceNumberRange", Obj::new().put("StartingSequenceNumber", start).opt("EndingSequenceNumber", end))
        .done()
}

/// A child shard as GetRecords and SubscribeToShard report it at the end of a closed shard.
pub(crate) fn child_shard_doc(s: &ShardMeta) -> Doc<'static> {
    let parents: Vec<Doc<'static>> =
        s.parent.iter().chain(s.adjacent_parent.iter()).map(|&p| shard_id(p).into()).collect();
    Obj::new().put("ShardId", shard_id(s.index)).put("ParentShards", parents).put("HashKeyRange", hash_range(s)).done()
}

/// The records of a page as GetRecords and SubscribeToShard return them (taken out of the page),
/// counted into the stream's outgoing metrics.
pub(crate) fn records_doc(page: &mut RecordsPage, metrics: &Metrics) -> Doc<'static> {
    let records = std::mem::take(&mut page.records);
    let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
    let labels = [("stream", page.stream_name.as_str())];
    metrics.add("tarn_stream_records_out_total", &labels, records.len() as u64);
    metrics.add("tarn_stream_bytes_out_total", &labels, bytes as u64);
    let sequence_base = SequenceNumber::new(page.stream_tag, page.shard_index, 0).to_u128();
    Doc::Records(Box::new(RecordList { sequence_base, records }))
}

pub(crate) fn mode_doc(mode: StreamMode) -> Doc<'static> {
    Obj::new().put("StreamMode", mode.as_str()).done()
}

pub(crate) fn enhanced_monitoring() -> Doc<'static> {
    vec![Obj::new().put("ShardLevelMetrics", Vec::<Doc<'static>>::new()).done()].into()
}

pub(crate) fn encryption(meta: &StreamMeta) -> &'static str {
    if meta.encryption_key.is_some() { "KMS" } else { "NONE" }
}

/// Reads a `Tags` map member with AWS's tag rules.
pub(crate) fn read_tags(
    input: &Input<'_, '_>,
    v: &mut Violations,
    required: bool,
) -> Result<Vec<(String, String)>, ApiError> {
    let tags = input.map_of_strings("Tags")?;
    let path = input.path("Tags");
    match &tags {
        None if required => v.add(None, &path, "Member must not be null"),
        Some(t) if t.is_empty() => {
            v.add(Some("{}".into()), &path, "Member must have length greater than or equal to 1")
        }
        Some(t) if t.len() > 200 => {
            v.add(Some("{...}".into()), &path, "Member must have length less than or equal to 200")
        }
        _ => {}
    }
    let tags = tags.unwrap_or_default();
    for (k, val) in &tags {
        if k.is_empty() || k.chars().count() > 128 {
            v.add(Some(format!("'{k}'")), &path, "Member must have length between 1 and 128 for every key");
        }
        if val.chars().count() > 256 {
            v.add(Some(format!("'{val}'")), &path, "Member must have length less than or equal to 256 for every value");
        }
    }
    Ok(tags.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// AWS's tag character rule: Unicode letters, digits, white space, `_ . / = + - % @` (and `:`).
pub(crate) fn check_tag_chars(tags: &[(String, String)]) -> Result<(), ApiError> {
    let ok = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_./=+-%@:".contains(c));
    if tags.iter().any(|(k, v)| !ok(k) || !ok(v)) {
        return Err(ApiError::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
        ));
    }
    if tags.iter().any(|(k, _)| k.starts_with("aws:")) {
        return Err(ApiError::invalid_argument("Tag keys may not start with the reserved prefix 'aws:'."));
    }
    Ok(())
}
