use super::{Ctx, invalid_request, metadata_error, read_catalog, service, table_metadata, wait};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// The tables of a layer with their columns; `Expression` keeps names matching a pattern where
/// `*` is any run of characters (Athena's table-name filter). The token is the last name of the
/// page before.
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    read_catalog(&input, &mut v)?;
    let database = input.string(&mut v, "DatabaseName", true, 1, 128, None)?;
    let expression = input.string(&mut v, "Expression", false, 0, 256, None)?;
    let limit = input.int(&mut v, "MaxResults", false, 1, 50)?.unwrap_or(50) as usize;
    let token = input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    v.finish()?;
    let database = database.unwrap_or_default().to_ascii_lowercase();
    let service = service(ctx)?;
    if !wait(service.databases())?.contains(&database) {
        return Err(metadata_error(format!("Database {database} not found.")));
    }
    let tables: Vec<_> = wait(service.tables(database))?
        .into_iter()
        .filter(|t| expression.is_none_or(|e| e.is_empty() || matches_pattern(&e.to_ascii_lowercase(), &t.name)))
        .collect();
    let start = match token {
        None => 0,
        Some(t) => tables
            .iter()
            .position(|table| table.name == t)
            .map(|p| p + 1)
            .ok_or_else(|| invalid_request("the NextToken is not one this server gave"))?,
    };
    let page: Vec<_> = tables.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < tables.len()).then(|| page.last().map(|t| t.name.clone())).flatten();
    let list: Vec<Doc<'static>> = page.into_iter().map(table_metadata).collect();
    Ok(Obj::new().put("TableMetadataList", list).opt("NextToken", next).done())
}

/// `*` matches any run of characters, `|` separates alternatives; the rest matches itself.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alternative| glob(alternative.as_bytes(), name.as_bytes()))
}

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns_take_stars_and_alternatives() {
        assert!(matches_pattern("veh*", "vehicles"));
        assert!(matches_pattern("clicks|veh*", "vehicles"));
        assert!(!matches_pattern("veh", "vehicles"));
        assert!(matches_pattern("*cles", "vehicles"));
    }
}
