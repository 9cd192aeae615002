use tarn_streams::model::parse_shard_id;

use super::{Ctx, StreamRef, encryption, enhanced_monitoring, mode_doc, shard_doc};
use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

/// DescribeStream answers at most this many shards a page, whatever Limit asks.
const MAX_SHARDS_PER_PAGE: usize = 100;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let limit = input.int(&mut v, "Limit", false, 1, 10_000)?;
    let start = input.string(&mut v, "ExclusiveStartShardId", false, 1, 128, Some(NAME))?;
    v.finish()?;
    let snap = ctx.streams.snapshot(&stream.resolve(ctx)?)?;
    let meta = &snap.meta;
    let after = start.and_then(parse_shard_id);
    let limit = (limit.unwrap_or(100) as usize).min(MAX_SHARDS_PER_PAGE);
    let mut shards: Vec<_> = meta.shards.iter().filter(|s| after.is_none_or(|a| s.index > a)).collect();
    shards.sort_by_key(|s| s.index);
    let has_more = shards.len() > limit;
    let page: Vec<Doc<'static>> = shards.iter().take(limit).map(|s| shard_doc(meta, s)).collect();
    let description = Obj::new()
        .put("StreamName", meta.name.clone())
        .put("StreamARN", snap.arn.clone())
        .put("StreamStatus", snap.status.as_str())
        .put("StreamModeDetails", mode_doc(meta.mode))
        .put("Shards", page)
        .put("HasMoreShards", has_more)
        .put("RetentionPeriodHours", meta.retention_hours)
        .put("StreamCreationTimestamp", timestamp(meta.created_ms))
        .put("EnhancedMonitoring", enhanced_monitoring())
        .put("EncryptionType", encryption(meta))
        .opt("KeyId", meta.encryption_key.clone());
    Ok(Obj::new().put("StreamDescription", description).done())
}
