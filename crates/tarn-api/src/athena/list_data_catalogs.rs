use super::{CATALOG, Ctx};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(_ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    input.int(&mut v, "MaxResults", false, 2, 50)?;
    input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    v.finish()?;
    let catalog = Obj::new().put("CatalogName", CATALOG).put("Type", "GLUE").done();
    Ok(Obj::new().put("DataCatalogsSummary", vec![catalog]).done())
}
