use super::{Ctx, execution_not_found, read_execution_id};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{Input, Violations};
use crate::server::empty;

/// Cancels a queued or running query; stopping a finished one changes nothing (as in Athena).
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let id = read_execution_id(&input, &mut v)?;
    v.finish()?;
    let id = id.unwrap_or_default();
    if !ctx.executions.stop(id) {
        return Err(execution_not_found(id));
    }
    Ok(empty())
}
