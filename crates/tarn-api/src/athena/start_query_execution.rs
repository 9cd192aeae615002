use super::executions::Submission;
use super::{Ctx, check_workgroup, invalid_request, read_workgroup};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// Athena's limit on a statement, in bytes.
const MAX_QUERY_BYTES: usize = 262_144;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let query = input.string(&mut v, "QueryString", true, 1, MAX_QUERY_BYTES, None)?;
    let token = input.string(&mut v, "ClientRequestToken", false, 32, 128, None)?;
    let workgroup = read_workgroup(&input, &mut v)?;
    let (database, catalog) = match input.structure("QueryExecutionContext")? {
        Some(context) => (
            context.string(&mut v, "Database", false, 1, 255, None)?,
            context.string(&mut v, "Catalog", false, 1, 256, None)?,
        ),
        None => (None, None),
    };
    let output_location = match input.structure("ResultConfiguration")? {
        Some(result) => result.string(&mut v, "OutputLocation", false, 0, 1024, None)?,
        None => None,
    };
    let parameters = input.list_of_strings("ExecutionParameters")?;
    v.finish()?;
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(invalid_request(format!(
            "the query string is {} bytes; Athena accepts at most {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    check_workgroup(&workgroup)?;
    if let Some(catalog) = catalog
        && !catalog.eq_ignore_ascii_case("AwsDataCatalog")
    {
        return Err(invalid_request(format!(
            "Catalog {catalog} is not found. This server has one catalog: AwsDataCatalog (the lake)."
        )));
    }
    let query = match parameters {
        Some(values) if !values.is_empty() => bind_parameters(query, &values).map_err(invalid_request)?,
        _ => query.to_owned(),
    };
    let Some(service) = ctx.query else {
        return Err(ApiError::new("InternalServerException", 500, "this server runs no query engine"));
    };
    let submission = Submission {
        query,
        database: database.map(|d| d.to_ascii_lowercase()),
        catalog: catalog.map(str::to_owned),
        workgroup,
        output_location: output_location.filter(|l| !l.is_empty()).map(str::to_owned),
        client_token: token.map(str::to_owned),
    };
    let id = ctx.executions.submit(submission, service.clone())?;
    Ok(Obj::new().put("QueryExecutionId", id).done())
}

/// Replaces each `?` placeholder of `sql` (outside strings, quoted names and comments) with the
/// next of `values`, as written (Athena takes parameters as SQL literals: `'text'`, `42`).
fn bind_parameters(sql: &str, values: &[&str]) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut next = values.iter();
    let mut used = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break; // a doubled quote closes and reopens: same result
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut previous = ' ';
                for d in chars.by_ref() {
                    out.push(d);
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            '?' => match next.next() {
                Some(value) => {
                    out.push_str(value);
                    used += 1;
                }
                None => {
                    return Err(format!(
                        "the query has more ? placeholders than the {} ExecutionParameters given",
                        values.len()
                    ));
                }
            },
            _ => out.push(c),
        }
    }
    if used != values.len() {
        return Err(format!("{} ExecutionParameters given for {used} ? placeholders in the query", values.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::bind_parameters;

    #[test]
    fn placeholders_take_the_parameters_in_order() {
        let sql = "SELECT '?' AS q, \"a?\" FROM t -- why?\nWHERE a = ? /* ? */ AND b = ?";
        let bound = bind_parameters(sql, &["'x'", "42"]).unwrap();
        assert_eq!(bound, "SELECT '?' AS q, \"a?\" FROM t -- why?\nWHERE a = 'x' /* ? */ AND b = 42");
        assert!(bind_parameters("SELECT ?", &["1", "2"]).is_err());
        assert!(bind_parameters("SELECT ?, ?", &["1"]).is_err());
    }
}
