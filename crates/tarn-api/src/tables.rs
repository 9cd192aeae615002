//! `GET /v1/tables` and `GET /v1/tables/<layer>/<table>`: the catalog as Glue shows it, for
//! `tarn tables`, `tarn describe` and scripts. Signed like `/v1/query` (SigV4, service `tarn`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;

use crate::error::ApiError;
use crate::query::{QueryFailure, QueryService, TableInfo, check_signature, error_reply};
use crate::server::AppState;

/// Every table of every layer (Iceberg and crawled): name, format, rows, files, bytes, last
/// update.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = async {
        let service = start(&state, Method::GET, &method, &uri, &headers, &body)?;
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
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = async {
        let service = start(&state, Method::GET, &method, &uri, &headers, &body)?;
        match service.table(layer.clone(), table.clone()).await.map_err(failure)? {
            Some(t) => Ok(t.detail),
            None => Err(ApiError::new("ResourceNotFoundException", 404, format!("Table {layer}.{table} not found."))),
        }
    };
    reply(answer.await)
}

/// `POST /v1/crawl` with `{"location": …, "layer": …, "table": …}`: registers the files under
/// the location as tables (see `tarn-crawl`) and answers with the crawl's report.
pub(crate) async fn crawl(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = async {
        if method != Method::POST {
            return Err(ApiError::new("InvalidRequestException", 405, "use POST"));
        }
        check_signature(&state, &method, &uri, &headers, &body)?;
        let service = state
            .query
            .clone()
            .ok_or_else(|| ApiError::new("ServiceUnavailableException", 503, "this server has no lake"))?;
        let request: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new("InvalidRequestException", 400, format!("the body is not JSON: {e}")))?;
        let text = |key: &str| request.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let location =
            text("location").ok_or_else(|| ApiError::new("InvalidRequestException", 400, "location is required"))?;
        let layer = text("layer").ok_or_else(|| ApiError::new("InvalidRequestException", 400, "layer is required"))?;
        service.crawl(location, layer, text("table")).await.map_err(failure)
    };
    reply(answer.await)
}

/// The query service behind a signed request made with `expected`.
fn start(
    state: &AppState,
    expected: Method,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<dyn QueryService>, ApiError> {
    if *method != expected {
        return Err(ApiError::new("InvalidRequestException", 405, format!("use {expected}")));
    }
    check_signature(state, method, uri, headers, body)?;
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
