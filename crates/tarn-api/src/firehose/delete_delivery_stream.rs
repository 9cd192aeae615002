use tarn_segments::SourceKind;

use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    input.bool("AllowForceDelete")?;
    v.finish()?;
    let name = name.expect("required");
    // The delivery flushes what it buffered before it stops; the table and its data stay.
    let def = ctx.segments.delete(name).map_err(|e| ctx.segment_error(e))?;
    if def.source == SourceKind::DirectPut {
        ctx.streams.delete_stream(&def.stream, false)?;
    }
    Ok(Obj::new().done())
}
