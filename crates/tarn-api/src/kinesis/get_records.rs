use super::{Ctx, child_shard_doc};
use crate::error::ApiError;
use crate::protocol::doc::{Utf8Bytes, timestamp};
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
    let page = ctx.streams.get_records(iterator.expect("required"), limit)?;
    let stream = &page.stream_name;
    let mut bytes = 0u64;
    let records: Vec<Doc<'static>> = page
        .records
        .iter()
        .map(|r| {
            bytes += (r.data.len() + r.partition_key.len()) as u64;
            Obj::new()
                .put("SequenceNumber", page.sequence(r.offset).to_string())
                .put("ApproximateArrivalTimestamp", timestamp(r.arrival_ms))
                .put("Data", Doc::Blob(r.data.clone()))
                .put("PartitionKey", Doc::Text(Utf8Bytes::new(r.partition_key.clone())))
                .done()
        })
        .collect();
    ctx.metrics.add("tarn_stream_records_out_total", &[("stream", stream)], records.len() as u64);
    ctx.metrics.add("tarn_stream_bytes_out_total", &[("stream", stream)], bytes);
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
