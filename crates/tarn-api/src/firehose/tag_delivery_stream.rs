use super::{Ctx, read_name, read_tags};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    if input.list_of_structures("Tags")?.is_none() {
        v.add(None, "tags", "Member must not be null");
    }
    let tags = read_tags(&input, &mut v)?;
    v.finish()?;
    let name = name.expect("required");
    ctx.segment(name)?;
    ctx.segments
        .update(name, false, |def| {
            def.tags.extend(tags);
            if def.tags.len() > 50 {
                return Err(tarn_segments::SegmentError::Invalid("A delivery stream can have at most 50 tags.".into()));
            }
            Ok(())
        })
        .map_err(|e| match e {
            tarn_segments::SegmentError::Invalid(m) => ApiError::new("LimitExceededException", 400, m),
            other => ctx.segment_error(other),
        })?;
    Ok(Obj::new().done())
}
