use super::Ctx;
use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, STREAM_ARN, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let arn = input.string(&mut v, "StreamARN", true, 1, 2048, Some(STREAM_ARN))?;
    let name = input.string(&mut v, "ConsumerName", true, 1, 128, Some(NAME))?;
    v.finish()?;
    let stream = ctx.streams.resolve_name(None, arn)?;
    let c = ctx.streams.register_consumer(&stream, name.expect("required"))?;
    let consumer = Obj::new()
        .put("ConsumerName", c.name)
        .put("ConsumerARN", c.arn)
        .put("ConsumerStatus", "ACTIVE")
        .put("ConsumerCreationTimestamp", timestamp(c.created_ms));
    Ok(Obj::new().put("Consumer", consumer).done())
}
