use super::{Ctx, StreamRef, check_tag_chars, read_tags};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let tags = read_tags(&input, &mut v, true)?;
    v.finish()?;
    check_tag_chars(&tags)?;
    ctx.streams.add_tags(&stream.resolve(ctx)?, tags.into_iter().collect())?;
    Ok(crate::server::empty())
}
