use super::{Ctx, describe, execution_not_found, read_execution_id};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let id = read_execution_id(&input, &mut v)?;
    v.finish()?;
    let id = id.unwrap_or_default();
    let execution = ctx.executions.get(id).ok_or_else(|| execution_not_found(id))?;
    Ok(Obj::new().put("QueryExecution", describe(&execution)).done())
}
