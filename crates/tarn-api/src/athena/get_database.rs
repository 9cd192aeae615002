use super::{Ctx, metadata_error, read_catalog, service, wait};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    read_catalog(&input, &mut v)?;
    let name = input.string(&mut v, "DatabaseName", true, 1, 128, None)?;
    v.finish()?;
    let name = name.unwrap_or_default().to_ascii_lowercase();
    if !wait(service(ctx)?.databases())?.contains(&name) {
        return Err(metadata_error(format!("Database {name} not found.")));
    }
    Ok(Obj::new().put("Database", Obj::new().put("Name", name).put("Parameters", Obj::new())).done())
}
