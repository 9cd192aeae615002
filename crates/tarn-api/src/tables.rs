//! `GET /v1/tables` and `GET /v1/tables/<layer>/<table>`: the catalog as Glue shows it, for
//! `tarn tables`, `tarn describe` and scripts. Signed like `/v1/query` (SigV4, service `tarn`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;

use crate::error::ApiError;
use crate::query::{OwnRequest, QueryFailure, QueryService, TableInfo, error_reply};
use crate::server::AppState;

/// Every table of every layer (Iceberg and crawled): name, format, rows, files, bytes, last
/// update.
pub(crate) async fn list(State(state): State<Arc<AppState>>, request: OwnRequest) -> Response {
    let answer = async {
        let service = start(&state, Method::GET, &request)?;
        let mut tables = Vec::new();
        for database in service.databases().await.map_err(failure)? {
            for t in service.tables(database).await.map_err(failure)? {
                tables.push(summary(&t));
            }
        }
        Ok(serde_json::json!({ "tables": tables }))
    };
    reply(answer.await)
}

/// One table in full: columns with the schema version that added them, partitions with files,
/// rows and bytes, snapshots, the delivery checkpoint.
pub(crate) async fn describe(
    State(state): State<Arc<AppState>>,
    Path((layer, table)): Path<(String, String)>,
    request: OwnRequest,
) -> Response {
    let answer = async {
        let service = start(&state, Method::GET, &request)?;
        match service.table(layer.clone(), table.clone()).await.map_err(failure)? {
            Some(t) => Ok(t.detail),
            None => Err(ApiError::new("ResourceNotFoundException", 404, format!("Table {layer}.{table} not found."))),
        }
    };
    reply(answer.await)
}

/// `POST /v1/crawl` with `{"location": …, "layer": …, "table": …}`: registers the files under
/// the location as tables (see `tarn-crawl`) and answers with the crawl's report.
pub(crate) async fn crawl(State(state): State<Arc<AppState>>, request: OwnRequest) -> Response {
    let answer = async {
        let service = start(&state, Method::POST, &request)?;
        let asked: serde_json::Value = serde_json::from_slice(&request.body)
            .map_err(|e| ApiError::new("InvalidRequestException", 400, format!("the body is not JSON: {e}")))?;
        let text = |key: &str| asked.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let location =
            text("location").ok_or_else(|| ApiError::new("InvalidRequestException", 400, "location is required"))?;
        let layer = text("layer").ok_or_else(|| ApiError::new("InvalidRequestException", 400, "layer is required"))?;
        service.crawl(location, layer, text("table")).await.map_err(failure)
    };
    reply(answer.await)
}

/// The query service behind a signed request made with `expected`.
fn start(state: &AppState, expected: Method, request: &OwnRequest) -> Result<Arc<dyn QueryService>, ApiError> {
    if request.method != expected {
        return Err(ApiError::new("InvalidRequestException", 405, format!("use {expected}")));
    }
    request.check_signature(state)?;
    state.query.clone().ok_or_else(|| ApiError::new("ServiceUnavailableException", 503, "this server has no lake"))
}

fn summary(t: &TableInfo) -> serde_json::Value {
    let d = &t.detail;
    serde_json::json!({
        "layer": t.database,
        "name": t.name,
        // `iceberg`, or the format of a crawled table's files (`json`, `csv`, `parquet`).
        "format": if t.iceberg { serde_json::json!("iceberg") } else { d["format"].clone() },
        "rows": d["rows"],
        "files": d["files"],
        "bytes": d["bytes"],
        "partitions": d["partitions"].as_array().map_or(0, Vec::len),
        "snapshots": d["snapshots"].as_array().map_or(0, Vec::len),
        "columns": t.columns.len(),
        "last_updated_ms": t.updated_ms,
    })
}

pub(crate) fn failure(f: QueryFailure) -> ApiError {
    match f {
        QueryFailure::Invalid(m) => ApiError::new("InvalidRequestException", 400, m),
        QueryFailure::Internal(m) => ApiError::new("InternalServerException", 500, m),
    }
}

fn reply(answer: Result<serde_json::Value, ApiError>) -> Response {
    match answer {
        Ok(json) => {
            let mut response = Response::new(Body::from(json.to_string()));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => error_reply(&e),
    }
}
