use super::Ctx;
use crate::error::ApiError;
use crate::protocol::input::{CONSUMER_ARN, Input, NAME, STREAM_ARN, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

/// The StreamARN / ConsumerName / ConsumerARN trio of the consumer actions, resolved.
pub(crate) fn find(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<tarn_streams::Consumer, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream_arn = input.string(&mut v, "StreamARN", false, 1, 2048, Some(STREAM_ARN))?;
    let name = input.string(&mut v, "ConsumerName", false, 1, 128, Some(NAME))?;
    let arn = input.string(&mut v, "ConsumerARN", false, 1, 2048, Some(CONSUMER_ARN))?;
    v.finish()?;
    let stream = stream_arn.map(|a| ctx.streams.resolve_name(None, Some(a))).transpose()?;
    Ok(ctx.streams.describe_consumer(stream.as_deref(), name, arn)?)
}

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let c = find(ctx, doc)?;
    let description = Obj::new()
        .put("ConsumerName", c.name)
        .put("ConsumerARN", c.arn)
        .put("ConsumerStatus", "ACTIVE")
        .put("ConsumerCreationTimestamp", timestamp(c.created_ms))
        .put("StreamARN", c.stream_arn);
    Ok(Obj::new().put("ConsumerDescription", description).done())
}
