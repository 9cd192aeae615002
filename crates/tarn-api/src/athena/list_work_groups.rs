use super::{Ctx, PRIMARY, engine_version};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    input.int(&mut v, "MaxResults", false, 1, 50)?;
    input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    v.finish()?;
    let primary = Obj::new()
        .put("Name", PRIMARY)
        .put("State", "ENABLED")
        .put("Description", "The workgroup of every query on this server")
        .put("CreationTime", crate::protocol::doc::timestamp(ctx.started_ms))
        .put("EngineVersion", engine_version())
        .done();
    Ok(Obj::new().put("WorkGroups", vec![primary]).done())
}
