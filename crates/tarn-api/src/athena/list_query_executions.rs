use super::{Ctx, check_workgroup, invalid_request, read_workgroup};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// Newest first, up to 50 a page; the token is the last id of the page before.
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let limit = input.int(&mut v, "MaxResults", false, 0, 50)?.unwrap_or(50) as usize;
    let token = input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    let workgroup = read_workgroup(&input, &mut v)?;
    v.finish()?;
    check_workgroup(&workgroup)?;
    let ids = ctx.executions.ids(&workgroup);
    let start = match token {
        None => 0,
        Some(t) => ids.iter().position(|id| id == t).map(|p| p + 1).ok_or_else(|| {
            invalid_request("the NextToken is not one this server gave, or its query is no longer kept")
        })?,
    };
    let page: Vec<String> = ids.iter().skip(start).take(limit).cloned().collect();
    let more = start + page.len() < ids.len() && !page.is_empty();
    let next = if more { page.last().cloned() } else { None };
    let page: Vec<Doc<'static>> = page.into_iter().map(Doc::from).collect();
    Ok(Obj::new().put("QueryExecutionIds", page).opt("NextToken", next).done())
}
