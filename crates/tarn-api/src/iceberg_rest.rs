//! The Iceberg REST catalog under `/iceberg` (`/iceberg/v1/config`, `…/v1/namespaces`,
//! `…/namespaces/<ns>/tables/<table>`), so pyiceberg, Spark, Trino and DuckDB load the lake's
//! tables over HTTP. Read-only: segments and the crawler create and change tables, so writes
//! answer `UnsupportedOperationException`. Signed with SigV4 (service `tarn`; pyiceberg:
//! `rest.sigv4-enabled`, `rest.signing-name = tarn`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::query::{OwnRequest, QueryFailure, QueryService};
use crate::server::AppState;

/// Where the catalog is mounted: clients take `http://<tarn>/iceberg` as the catalog URI.
pub const PREFIX: &str = "/iceberg";

/// What the catalog answers to, as the config response lists it.
const ENDPOINTS: &[&str] = &[
    "GET /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
];

/// An error as the REST spec writes it: `{"error": {"message", "type", "code"}}`.
struct RestError {
    status: u16,
    kind: &'static str,
    message: String,
}

impl RestError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> RestError {
        RestError { status, kind, message: message.into() }
    }
}

/// A refused signature: 403 when none was given, 401 when it does not verify.
impl From<ApiError> for RestError {
    fn from(e: ApiError) -> RestError {
        let (status, kind) = match e.status {
            403 => (403, "ForbiddenException"),
            _ => (401, "NotAuthorizedException"),
        };
        RestError::new(status, kind, format!("{}: {}", e.code, e.message))
    }
}

/// The engine could not read the catalog.
fn failure(f: QueryFailure) -> RestError {
    let (QueryFailure::Invalid(message) | QueryFailure::Internal(message)) = f;
    RestError::new(500, "ServiceFailureException", message)
}

type Answer = Result<Option<Value>, RestError>;

pub(crate) async fn config(State(state): State<Arc<AppState>>, request: OwnRequest) -> Response {
    let answer = async {
        start(&state, &request, false)?;
        Ok(Some(json!({ "defaults": {}, "overrides": {}, "endpoints": ENDPOINTS })))
    };
    reply(&request.method, answer.await)
}

pub(crate) async fn namespaces(State(state): State<Arc<AppState>>, request: OwnRequest) -> Response {
    let answer = async {
        let service = start(&state, &request, false)?;
        if request
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("parent=") && kv.len() > "parent=".len())
        {
            return Ok(Some(json!({ "namespaces": [] }))); // layers have no children
        }
        let names = service.databases().await.map_err(failure)?;
        let list: Vec<Value> = names.into_iter().map(|n| json!([n])).collect();
        Ok(Some(json!({ "namespaces": list })))
    };
    reply(&request.method, answer.await)
}

pub(crate) async fn namespace(
    State(state): State<Arc<AppState>>,
    Path(namespace): Path<String>,
    request: OwnRequest,
) -> Response {
    let answer = async {
        let service = start(&state, &request, true)?;
        if !service.databases().await.map_err(failure)?.contains(&namespace) {
            return Err(no_namespace(&namespace));
        }
        Ok(Some(json!({ "namespace": [namespace], "properties": {} })))
    };
    reply(&request.method, answer.await)
}

pub(crate) async fn tables(
    State(state): State<Arc<AppState>>,
    Path(namespace): Path<String>,
    request: OwnRequest,
) -> Response {
    let answer = async {
        let service = start(&state, &request, false)?;
        if !service.databases().await.map_err(failure)?.contains(&namespace) {
            return Err(no_namespace(&namespace));
        }
        let tables = service.tables(namespace.clone()).await.map_err(failure)?;
        // Crawled tables are files, not Iceberg tables: the REST catalog cannot serve them.
        let identifiers: Vec<Value> = tables
            .into_iter()
            .filter(|t| t.iceberg)
            .map(|t| json!({ "namespace": [namespace.clone()], "name": t.name }))
            .collect();
        Ok(Some(json!({ "identifiers": identifiers })))
    };
    reply(&request.method, answer.await)
}

pub(crate) async fn table(
    State(state): State<Arc<AppState>>,
    Path((namespace, table)): Path<(String, String)>,
    request: OwnRequest,
) -> Response {
    let answer = async {
        let service = start(&state, &request, true)?;
        let Some((location, metadata)) =
            service.table_metadata(namespace.clone(), table.clone()).await.map_err(failure)?
        else {
            return Err(RestError::new(
                404,
                "NoSuchTableException",
                format!("Table does not exist: {namespace}.{table}"),
            ));
        };
        Ok(Some(json!({ "metadata-location": location, "metadata": metadata, "config": {} })))
    };
    reply(&request.method, answer.await)
}

/// Checks the method and the signature; the engine behind the catalog.
fn start(state: &AppState, request: &OwnRequest, head_allowed: bool) -> Result<Arc<dyn QueryService>, RestError> {
    let method = &request.method;
    let readable = method == Method::GET || (head_allowed && method == Method::HEAD);
    request.check_signature(state)?;
    if !readable {
        return Err(RestError::new(
            406,
            "UnsupportedOperationException",
            format!(
                "{method} {}: Tarn's REST catalog is read-only; tables are created and changed by segments \
                 and the crawler",
                request.uri.path()
            ),
        ));
    }
    state.query.clone().ok_or_else(|| RestError::new(503, "ServiceUnavailableException", "this server has no lake"))
}

fn no_namespace(namespace: &str) -> RestError {
    RestError::new(404, "NoSuchNamespaceException", format!("Namespace does not exist: {namespace}"))
}

fn reply(method: &Method, answer: Answer) -> Response {
    let (status, body) = match answer {
        Ok(Some(json)) if method != Method::HEAD => (StatusCode::OK, json.to_string()),
        Ok(_) => (StatusCode::NO_CONTENT, String::new()),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({ "error": { "message": e.message, "type": e.kind, "code": e.status } });
            (status, if method == Method::HEAD { String::new() } else { body.to_string() })
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
