use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let enforce = input.bool("EnforceConsumerDeletion")?.unwrap_or(false);
    v.finish()?;
    ctx.streams.delete_stream(&stream.resolve(ctx)?, enforce)?;
    Ok(crate::server::empty())
}
