use super::{Ctx, metadata_error, read_catalog, service, table_metadata, wait};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    read_catalog(&input, &mut v)?;
    let database = input.string(&mut v, "DatabaseName", true, 1, 128, None)?;
    let table = input.string(&mut v, "TableName", true, 1, 128, None)?;
    v.finish()?;
    let (database, table) =
        (database.unwrap_or_default().to_ascii_lowercase(), table.unwrap_or_default().to_ascii_lowercase());
    match wait(service(ctx)?.table(database.clone(), table.clone()))? {
        Some(t) => Ok(Obj::new().put("TableMetadata", table_metadata(&t)).done()),
        None => Err(metadata_error(format!("Table {database}.{table} not found."))),
    }
}
