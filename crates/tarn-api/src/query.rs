//! `POST /v1/query`: SQL over the lake, for scripts and `curl --aws-sigv4 "aws:amz:<region>:tarn"`.
//! The body is the statement (plain text, the format in `?format=`), or JSON
//! `{"sql": "...", "format": "json" | "csv" | "table"}`. The answer is the rows in that format;
//! rows, elapsed time and bytes scanned come in `x-tarn-*` headers (and in the JSON answer).
//! Signed like every other call (SigV4, service name `tarn`). The engine itself lives outside
//! this crate, behind [`QueryService`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::protocol::Codec;
use crate::server::{AppState, error_body, flat_headers};
use crate::sigv4;

/// The service name requests to `/v1/query` are signed for.
pub const SIGNING_NAME: &str = "tarn";

/// A query's answer, ready to send.
#[derive(Debug, Clone)]
pub struct QueryReply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `x-tarn-rows`, `x-tarn-bytes-scanned` and the like.
    pub headers: Vec<(&'static str, String)>,
}

/// Why a query failed.
#[derive(Debug, Clone)]
pub enum QueryFailure {
    /// The statement is wrong (syntax, unknown table, a statement that is not allowed).
    Invalid(String),
    /// Tarn could not run it (storage unreachable, a bug).
    Internal(String),
}

pub type QueryFuture = Pin<Box<dyn Future<Output = Result<QueryReply, QueryFailure>> + Send>>;

/// A result column as Athena describes it (`ColumnInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    pub name: String,
    /// Athena's type name: `varchar`, `bigint`, `row(a integer)`…
    pub type_name: String,
    pub precision: i32,
    pub scale: i32,
}

/// A finished query as Athena's `GetQueryResults` pages through it: every value as text
/// (`None`: SQL NULL), with what the query cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResults {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Vec<Option<String>>>,
    pub bytes_scanned: u64,
    pub engine_ms: u64,
    /// Rows a CREATE TABLE AS or INSERT INTO wrote (Athena's `UpdateCount`).
    pub rows_written: u64,
}

impl QueryResults {
    /// Roughly the memory the rows take, for keeping many results within a budget.
    pub fn size_bytes(&self) -> usize {
        let cell = std::mem::size_of::<Option<String>>();
        let text: usize = self.rows.iter().flatten().map(|v| cell + v.as_ref().map_or(0, String::len)).sum();
        text + self.rows.len() * std::mem::size_of::<Vec<Option<String>>>()
    }
}

pub type ResultsFuture = Pin<Box<dyn Future<Output = Result<QueryResults, QueryFailure>> + Send>>;

/// A column as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    /// Glue's type name: `string`, `bigint`, `struct<fuel:double>`…
    pub type_name: String,
}

/// A table of the lake as the catalog describes it (Athena's `TableMetadata`, `/v1/tables`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub database: String,
    pub name: String,
    pub columns: Vec<CatalogColumn>,
    /// Hive folder keys (string columns).
    pub partition_keys: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub location: String,
    pub parameters: Vec<(String, String)>,
    /// An Iceberg table (the REST catalog serves it); otherwise files the crawler registered.
    pub iceberg: bool,
    /// Everything `tarn describe` shows (partitions, snapshots, checkpoint), as JSON.
    pub detail: serde_json::Value,
}

pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, QueryFailure>> + Send>>;

/// Runs SQL; implemented by the server binary on top of `tarn-query`.
pub trait QueryService: Send + Sync {
    /// Runs `sql` and renders its rows in `format` (`json`, `csv` or `table`).
    fn query(&self, sql: String, format: String) -> QueryFuture;

    /// Runs `sql` with unqualified table names looked up in `database` (a layer), for the Athena
    /// API. Dropping the future cancels the query.
    fn results(&self, sql: String, database: Option<String>) -> ResultsFuture;

    /// The layers of the lake (Iceberg namespaces, and layers of crawled tables), sorted.
    fn databases(&self) -> Pending<Vec<String>>;

    /// Every table of `database` described (Iceberg tables and crawled ones), sorted by name.
    fn tables(&self, database: String) -> Pending<Vec<TableInfo>>;

    /// One table described; `None` if there is no such table.
    fn table(&self, database: String, name: String) -> Pending<Option<TableInfo>>;

    /// A table's current metadata file: its location and its content (Iceberg's table metadata
    /// JSON), for the Iceberg REST catalog; `None` if there is no such table.
    fn table_metadata(&self, database: String, name: String) -> Pending<Option<(String, serde_json::Value)>>;

    /// The key `url` names in the lake's storage (a `file://` path under a local lake,
    /// `s3://<bucket>/<prefix>/…` of a lake on S3); `None` when it lies elsewhere.
    fn storage_key(&self, url: &str) -> Option<String>;

    /// Stores `body` under `key` of the lake's storage.
    fn put_object(&self, key: String, body: Vec<u8>) -> Pending<()>;

    /// Crawls `location` (a URL or a folder of the lake's storage) into tables of `database`;
    /// `table` names the single table the location becomes. Returns the crawl's report.
    fn crawl(&self, location: String, database: String, table: Option<String>) -> Pending<serde_json::Value>;
}

pub(crate) async fn handle(State(state): State<Arc<AppState>>, request: OwnRequest) -> Response {
    match run(&state, request).await {
        Ok(reply) => {
            let mut response = Response::new(Body::from(reply.body));
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
            for (name, value) in reply.headers {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            response
        }
        Err(e) => error_reply(&e),
    }
}

/// An error of Tarn's own HTTP endpoints, in AWS's JSON error form.
pub(crate) fn error_reply(e: &ApiError) -> Response {
    let mut response = Response::new(Body::from(error_body(Codec::Json, e)));
    *response.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Ok(v) = HeaderValue::from_str(e.code) {
        h.insert("x-amzn-errortype", v);
    }
    response
}

/// A call to one of Tarn's own endpoints (`/v1/query`, `/v1/tables`, `/v1/crawl`, the Iceberg
/// REST catalog), read whole: what their SigV4 check and their handlers need.
pub(crate) struct OwnRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for OwnRequest {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        // The body is read as axum's `Bytes` reads it (within the body limit kept in the
        // request's extensions).
        let mut raw = Request::new(body);
        *raw.extensions_mut() = std::mem::take(&mut parts.extensions);
        let body = Bytes::from_request(raw, state).await.map_err(IntoResponse::into_response)?;
        Ok(OwnRequest { method: parts.method, uri: parts.uri, headers: parts.headers, body })
    }
}

impl OwnRequest {
    /// Checks the SigV4 signature (service name `tarn`).
    pub(crate) fn check_signature(&self, state: &AppState) -> Result<(), ApiError> {
        let Some(credentials) = &state.config.credentials else { return Ok(()) };
        let flat = flat_headers(&self.headers);
        let request = sigv4::SignedRequest {
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query().unwrap_or(""),
            headers: &flat,
            body: &self.body,
        };
        sigv4::verify(&request, SIGNING_NAME, state.streams.now(), |key| credentials.get(key).cloned())?;
        Ok(())
    }
}

async fn run(state: &AppState, request: OwnRequest) -> Result<QueryReply, ApiError> {
    if request.method != Method::POST {
        return Err(ApiError::new("InvalidRequestException", 405, "POST the statement to /v1/query"));
    }
    request.check_signature(state)?;
    let OwnRequest { uri, headers, body, .. } = request;
    let Some(service) = state.query.clone() else {
        return Err(ApiError::new("ServiceUnavailableException", 503, "this server runs no query engine"));
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let format_param =
        uri.query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("format=")).map(str::to_owned);
    let (sql, format) = if is_json {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new("InvalidRequestException", 400, format!("the body is not JSON: {e}")))?;
        let sql = doc.get("sql").and_then(|v| v.as_str()).ok_or_else(|| {
            ApiError::new("InvalidRequestException", 400, "the JSON body needs \"sql\": the statement to run")
        })?;
        let format = doc.get("format").and_then(|v| v.as_str()).map(str::to_owned);
        (sql.to_owned(), format.or(format_param))
    } else {
        let sql = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::new("InvalidRequestException", 400, "the statement is not UTF-8"))?;
        (sql, format_param)
    };
    if sql.trim().is_empty() {
        return Err(ApiError::new("InvalidRequestException", 400, "no statement: POST the SQL to run"));
    }
    let format = format.unwrap_or_else(|| "json".into());
    service.query(sql, format).await.map_err(|failure| match failure {
        QueryFailure::Invalid(message) => ApiError::new("InvalidRequestException", 400, message),
        QueryFailure::Internal(message) => ApiError::new("InternalServerException", 500, message),
    })
}
