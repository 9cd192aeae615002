use super::{Ctx, read_name, tag_list};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let start = input.string(&mut v, "ExclusiveStartTagKey", false, 1, 128, None)?;
    let limit = input.int(&mut v, "Limit", false, 1, 50)?.unwrap_or(50) as usize;
    v.finish()?;
    let def = ctx.segment(name.expect("required"))?;
    let tags: std::collections::BTreeMap<String, String> =
        def.tags.into_iter().filter(|(k, _)| start.is_none_or(|s| k.as_str() > s)).collect();
    let more = tags.len() > limit;
    let page: Vec<Doc<'static>> = tag_list(&tags).into_iter().take(limit).collect();
    Ok(Obj::new().put("Tags", page).put("HasMoreTags", more).done())
}
