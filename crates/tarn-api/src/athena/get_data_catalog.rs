use super::{CATALOG, Ctx, invalid_request};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(_ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = input.string(&mut v, "Name", true, 1, 256, None)?;
    v.finish()?;
    let name = name.unwrap_or_default();
    if !name.eq_ignore_ascii_case(CATALOG) {
        return Err(invalid_request(format!("Catalog {name} is not found. This server has one catalog: {CATALOG}.")));
    }
    let catalog = Obj::new()
        .put("Name", CATALOG)
        .put("Description", "The lake's Iceberg catalog")
        .put("Type", "GLUE")
        .put("Parameters", Obj::new())
        .put("Status", "CREATE_COMPLETE");
    Ok(Obj::new().put("DataCatalog", catalog).done())
}
