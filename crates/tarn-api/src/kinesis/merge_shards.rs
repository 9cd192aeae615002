use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, NAME, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let a = input.string(&mut v, "ShardToMerge", true, 1, 128, Some(NAME))?;
    let b = input.string(&mut v, "AdjacentShardToMerge", true, 1, 128, Some(NAME))?;
    v.finish()?;
    ctx.streams.merge_shards(&stream.resolve(ctx)?, a.expect("required"), b.expect("required"))?;
    Ok(crate::server::empty())
}
