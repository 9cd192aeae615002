use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let target = input.int(&mut v, "TargetShardCount", true, 1, 100_000)?;
    input.enumeration(&mut v, "ScalingType", true, &["UNIFORM_SCALING"])?;
    v.finish()?;
    let name = stream.resolve(ctx)?;
    let target = target.expect("required") as u32;
    let current = ctx.streams.update_shard_count(&name, target)?;
    Ok(Obj::new()
        .put("StreamName", name.clone())
        .put("CurrentShardCount", current)
        .put("TargetShardCount", target)
        .put("StreamARN", ctx.streams.config().stream_arn(&name))
        .done())
}
