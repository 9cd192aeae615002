use super::{Ctx, child_shard_doc, records_doc};
use crate::error::ApiError;
use crate::protocol::input::{Input, STREAM_ARN, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let iterator = input.string(&mut v, "ShardIterator", true, 1, 512, None)?;
    let limit = input.int(&mut v, "Limit", false, 1, 10_000)?;
    input.string(&mut v, "StreamARN", false, 1, 2048, Some(STREAM_ARN))?;
    v.finish()?;
    let limit = limit.unwrap_or(10_000) as usize;
    let mut page = ctx.streams.get_records(iterator.expect("required"), limit)?;
    let records = records_doc(&mut page, ctx.metrics);
    let stream = page.stream_name.as_str();
    ctx.metrics.set("tarn_stream_iterator_age_milliseconds", &[("stream", stream)], page.millis_behind_latest as f64);
    let children: Vec<Doc<'static>> = page.child_shards.iter().map(child_shard_doc).collect();
    let at_end = page.next_iterator.is_none();
    Ok(Obj::new()
        .put("Records", records)
        .opt("NextShardIterator", page.next_iterator)
        .put("MillisBehindLatest", page.millis_behind_latest)
        .opt("ChildShards", at_end.then_some(children))
        .done())
}
