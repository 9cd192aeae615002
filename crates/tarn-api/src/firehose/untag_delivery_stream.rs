use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let keys = input.list_of_strings("TagKeys")?;
    match &keys {
        None => v.add(None, "tagKeys", "Member must not be null"),
        Some(k) if k.is_empty() || k.len() > 50 => {
            v.add(Some("[...]".into()), "tagKeys", "Member must have length between 1 and 50")
        }
        _ => {}
    }
    v.finish()?;
    let name = name.expect("required");
    ctx.segment(name)?;
    let keys = keys.expect("required");
    ctx.segments
        .update(name, false, |def| {
            keys.iter().for_each(|k| {
                def.tags.remove(*k);
            });
            Ok(())
        })
        .map_err(|e| ctx.segment_error(e))?;
    Ok(Obj::new().done())
}
