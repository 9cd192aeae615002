use base64::Engine as _;

use super::executions::State;
use super::{Ctx, execution_not_found, invalid_request, read_execution_id};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// Rows as Athena pages them: for a query, the first row of the first page holds the column
/// names; every value is text, and a null has no `VarCharValue`.
pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let id = read_execution_id(&input, &mut v)?;
    let token = input.string(&mut v, "NextToken", false, 1, 1024, None)?;
    let limit = input.int(&mut v, "MaxResults", false, 1, 1000)?.unwrap_or(1000) as usize;
    input.enumeration(&mut v, "QueryResultType", false, &["DATA_MANIFEST", "DATA_ROWS"])?;
    v.finish()?;
    let id = id.unwrap_or_default();
    let execution = ctx.executions.get(id).ok_or_else(|| execution_not_found(id))?;
    match execution.state {
        State::Succeeded => {}
        State::Queued | State::Running => {
            return Err(invalid_request(format!(
                "Query has not yet finished. Current state: {}",
                execution.state.name()
            )));
        }
        State::Failed | State::Cancelled => {
            let reason = execution.reason.as_deref().unwrap_or("");
            return Err(invalid_request(format!(
                "Query did not finish successfully. Final query state: {}\n{reason}",
                execution.state.name()
            )));
        }
    }
    let Some(results) = execution.results.clone() else {
        return Err(invalid_request(format!(
            "The results of query {id} are no longer kept: the server keeps the newest results within \
             [query] max_results_mib. Run the query again."
        )));
    };
    // Rows are numbered with the header row as row 0 when there is one.
    let header = execution.has_header_row();
    let total = results.rows.len() + usize::from(header);
    let start = match token {
        None => 0,
        Some(t) => read_token(t, id)
            .filter(|&o| o <= total)
            .ok_or_else(|| invalid_request("The NextToken is not one this server gave for this query execution"))?,
    };
    let end = (start + limit).min(total);
    let mut rows = Vec::with_capacity(end - start);
    for n in start..end {
        let data: Vec<Doc<'static>> = if header && n == 0 {
            results.columns.iter().map(|c| Obj::new().put("VarCharValue", c.name.clone()).done()).collect()
        } else {
            let row = &results.rows[n - usize::from(header)];
            row.iter().map(|value| Obj::new().opt("VarCharValue", value.clone()).done()).collect()
        };
        rows.push(Obj::new().put("Data", data).done());
    }
    let columns: Vec<Doc<'static>> = results
        .columns
        .iter()
        .map(|c| {
            Obj::new()
                .put("CatalogName", "hive")
                .put("SchemaName", "")
                .put("TableName", "")
                .put("Name", c.name.clone())
                .put("Label", c.name.clone())
                .put("Type", c.type_name.clone())
                .put("Precision", i64::from(c.precision))
                .put("Scale", i64::from(c.scale))
                .put("Nullable", "UNKNOWN")
                .put("CaseSensitive", c.type_name == "varchar")
                .done()
        })
        .collect();
    let result_set = Obj::new().put("Rows", rows).put("ResultSetMetadata", Obj::new().put("ColumnInfo", columns));
    Ok(Obj::new()
        .put("UpdateCount", results.rows_written as i64)
        .put("ResultSet", result_set)
        .opt("NextToken", (end < total).then(|| write_token(end, id)))
        .done())
}

fn write_token(offset: usize, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}:{id}"))
}

fn read_token(token: &str, id: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (offset, token_id) = text.split_once(':')?;
    (token_id == id).then(|| offset.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::{read_token, write_token};

    #[test]
    fn tokens_belong_to_their_query() {
        let token = write_token(1000, "abc");
        assert_eq!(read_token(&token, "abc"), Some(1000));
        assert_eq!(read_token(&token, "other"), None);
        assert_eq!(read_token("not-a-token", "abc"), None);
    }
}
