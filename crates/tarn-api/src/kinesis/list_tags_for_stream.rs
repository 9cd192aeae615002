use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let start = input.string(&mut v, "ExclusiveStartTagKey", false, 1, 128, None)?;
    let limit = input.int(&mut v, "Limit", false, 1, 50)?;
    v.finish()?;
    let snap = ctx.streams.snapshot(&stream.resolve(ctx)?)?;
    let limit = limit.unwrap_or(50) as usize;
    let tags: Vec<_> = snap.meta.tags.iter().filter(|(k, _)| start.is_none_or(|s| k.as_str() > s)).collect();
    let page: Vec<Doc<'static>> = tags
        .iter()
        .take(limit)
        .map(|(k, v)| Obj::new().put("Key", (*k).clone()).put("Value", (*v).clone()).done())
        .collect();
    Ok(Obj::new().put("Tags", page).put("HasMoreTags", tags.len() > limit).done())
}
