use super::Ctx;
use super::describe_stream_consumer::find;
use crate::error::ApiError;
use crate::protocol::Doc;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let c = find(ctx, doc)?;
    ctx.streams.deregister_consumer(None, None, Some(&c.arn))?;
    Ok(crate::server::empty())
}
