use super::{Ctx, describe};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let ids = input.list_of_strings("QueryExecutionIds")?;
    match &ids {
        None => v.add(None, &input.path("QueryExecutionIds"), "Member must not be null"),
        Some(ids) if ids.is_empty() || ids.len() > 50 => v.add(
            Some(format!("{ids:?}")),
            &input.path("QueryExecutionIds"),
            "Member must have length between 1 and 50",
        ),
        _ => {}
    }
    v.finish()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in ids.unwrap_or_default() {
        match ctx.executions.get(id) {
            Some(e) => found.push(describe(&e)),
            None => missing.push(
                Obj::new()
                    .put("QueryExecutionId", id.to_owned())
                    .put("ErrorCode", "INVALID_INPUT")
                    .put("ErrorMessage", format!("QueryExecution {id} was not found"))
                    .done(),
            ),
        }
    }
    Ok(Obj::new().put("QueryExecutions", found).put("UnprocessedQueryExecutionIds", missing).done())
}
