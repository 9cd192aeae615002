use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let keys = input.list_of_strings("TagKeys")?;
    match &keys {
        None => v.add(None, "tagKeys", "Member must not be null"),
        Some(k) if k.is_empty() => {
            v.add(Some("[]".into()), "tagKeys", "Member must have length greater than or equal to 1")
        }
        Some(k) if k.len() > 50 => {
            v.add(Some("[...]".into()), "tagKeys", "Member must have length less than or equal to 50")
        }
        _ => {}
    }
    v.finish()?;
    let keys: Vec<String> = keys.unwrap_or_default().into_iter().map(str::to_owned).collect();
    ctx.streams.remove_tags(&stream.resolve(ctx)?, &keys)?;
    Ok(crate::server::empty())
}
