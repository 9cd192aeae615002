use super::{Ctx, invalid_request, read_catalog, service, wait};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// The lake's layers; the token is the last name of the page before.
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    read_catalog(&input, &mut v)?;
    let limit = input.int(&mut v, "MaxResults", false, 1, 50)?.unwrap_or(50) as usize;
    let token = input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    v.finish()?;
    let names = wait(service(ctx)?.databases())?;
    let start = match token {
        None => 0,
        Some(t) => names
            .iter()
            .position(|n| n == t)
            .map(|p| p + 1)
            .ok_or_else(|| invalid_request("the NextToken is not one this server gave"))?,
    };
    let page: Vec<&String> = names.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < names.len()).then(|| page.last().map(|n| (*n).clone())).flatten();
    let list: Vec<Doc<'static>> =
        page.into_iter().map(|n| Obj::new().put("Name", n.clone()).put("Parameters", Obj::new()).done()).collect();
    Ok(Obj::new().put("DatabaseList", list).opt("NextToken", next).done())
}
