//! The HTTP server: one POST endpoint for every AWS JSON/CBOR operation (told apart by
//! `X-Amz-Target`), plus `/metrics` and `/health`. HTTP/1.1 and cleartext HTTP/2 share the port.
//!
//! Decoding, the action itself (which may wait on an fsync) and encoding run on tokio's blocking
//! pool, so the I/O threads only move bytes. The exception is ingest's hot path, Kinesis
//! PutRecords in JSON ([`fast_put`]): bodies up to [`INLINE_PUT_MAX_BODY`] are decoded and
//! appended on the I/O thread, and every such request awaits its fsync there instead of parking a
//! blocking thread on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tarn_streams::Streams;

use crate::athena::{AthenaLimits, Executions};
use crate::error::ApiError;
use crate::kinesis::subscribe_to_shard::{self, Subscription, Subscriptions};
use crate::metrics::Metrics;
use crate::protocol::{Codec, Doc, Obj};
use crate::query::QueryService;
use crate::sigv4;
use crate::{athena, firehose, kinesis};
use tarn_segments::Segments;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Access key → secret. `None` turns authentication off (local use only).
    pub credentials: Option<HashMap<String, String>>,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// How long a SubscribeToShard call streams before the client must resubscribe.
    pub subscription_lifetime: Duration,
    /// Running queries and kept results of the Athena API.
    pub athena: AthenaLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            credentials: None,
            max_request_bytes: 8 * 1024 * 1024,
            subscription_lifetime: Duration::from_secs(300),
            athena: AthenaLimits::default(),
        }
    }
}

pub struct AppState {
    pub streams: Arc<Streams>,
    pub config: ApiConfig,
    /// Shared with the parts that run beside the API (delivery), which report into it too.
    pub metrics: Arc<Metrics>,
    pub subscriptions: Subscriptions,
    /// The data segments, which the Firehose API creates, changes and lists.
    pub segments: Arc<Segments>,
    /// SQL over the lake (`/v1/query`); `None` in servers without a query engine.
    pub query: Option<Arc<dyn QueryService>>,
    /// The Athena API's query executions.
    pub athena: Arc<Executions>,
    /// Epoch milliseconds at start (the creation time of the `primary` workgroup).
    pub started_ms: i64,
}

impl AppState {
    pub fn new(
        streams: Arc<Streams>,
        config: ApiConfig,
        metrics: Arc<Metrics>,
        segments: Arc<Segments>,
    ) -> Arc<AppState> {
        AppState::with_query(streams, config, metrics, segments, None)
    }

    pub fn with_query(
        streams: Arc<Streams>,
        config: ApiConfig,
        metrics: Arc<Metrics>,
        segments: Arc<Segments>,
        query: Option<Arc<dyn QueryService>>,
    ) -> Arc<AppState> {
        let clock = streams.clone();
        let athena = Executions::new(config.athena.clone(), move || clock.now());
        let started_ms = streams.now();
        Arc::new(AppState {
            streams,
            config,
            metrics,
            subscriptions: Subscriptions::default(),
            segments,
            query,
            athena,
            started_ms,
        })
    }
}

/// What a request produced: a whole body, or a subscription to stream.
enum Outcome {
    Body(Vec<u8>),
    /// A body to send once the written records are durable.
    Durable(Vec<u8>, tarn_streams::Written),
    Subscribe(Subscription),
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_request_bytes;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/v1/query", any(crate::query::handle))
        .route("/v1/tables", any(crate::tables::list))
        .route("/v1/crawl", any(crate::tables::crawl))
        .route("/v1/tables/{layer}/{table}", any(crate::tables::describe))
        .route("/iceberg/v1/config", any(crate::iceberg_rest::config))
        .route("/iceberg/v1/namespaces", any(crate::iceberg_rest::namespaces))
        .route("/iceberg/v1/namespaces/{namespace}", any(crate::iceberg_rest::namespace))
        .route("/iceberg/v1/namespaces/{namespace}/tables", any(crate::iceberg_rest::tables))
        .route("/iceberg/v1/namespaces/{namespace}/tables/{table}", any(crate::iceberg_rest::table))
        .fallback(aws_request)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    for usage in state.streams.usage() {
        let stream = [("stream", usage.name.as_str())];
        state.metrics.set("tarn_stream_storage_bytes", &stream, usage.storage_bytes as f64);
        state.metrics.set("tarn_stream_open_shards", &stream, usage.open_shards as f64);
        state.metrics.set("tarn_stream_fsyncs", &stream, usage.fsyncs as f64);
        state.metrics.set("tarn_stream_cached_bytes", &stream, usage.cached_bytes as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// A request as the blocking worker sees it.
struct Call {
    method: Method,
    uri: Uri,
    headers: Vec<(String, String)>,
    target: Option<String>,
    codec: Codec,
    body: Bytes,
}

async fn aws_request(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let codec = Codec::from_content_type(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    let mut flat = flat_headers(&headers);
    // HTTP/2 carries the host as the :authority pseudo-header, which hyper keeps in the URI.
    // Clients sign it as `host`, or (the JavaScript SDK) as `:authority` itself.
    if let Some(authority) = uri.authority() {
        if !flat.iter().any(|(k, _)| k == "host") {
            flat.push(("host".into(), authority.to_string()));
        }
        flat.push((":authority".into(), authority.to_string()));
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = Call { method, uri, headers: flat, target, codec, body };
    let worker_state = state.clone();
    let started = Instant::now();
    let inline = call.body.len() <= INLINE_PUT_MAX_BODY;
    let (operation, result, codec) = match inline.then(|| fast_put(&state, &call)).flatten() {
        Some(result) => (kinesis::PUT_RECORDS.to_owned(), result, codec),
        None => match tokio::task::spawn_blocking(move || process(&worker_state, call, !inline)).await {
            Ok(r) => r,
            Err(e) => ("unknown".to_owned(), Err(ApiError::internal(format!("request handler failed: {e}"))), codec),
        },
    };
    // Nothing is acknowledged before it is durable.
    let result = match result {
        Ok(Outcome::Durable(body, written)) => {
            written.durable().await.map(|()| Outcome::Body(body)).map_err(ApiError::from)
        }
        other => other,
    };
    let code = result.as_ref().err().map_or("OK", |e| e.code);
    state.metrics.add("tarn_api_requests_total", &[("operation", &operation), ("code", code)], 1);
    state.metrics.observe(
        "tarn_api_request_duration_seconds",
        &[("operation", &operation)],
        started.elapsed().as_secs_f64(),
    );
    match result {
        Ok(Outcome::Body(body)) => respond(StatusCode::OK, codec, body, None),
        Ok(Outcome::Durable(..)) => unreachable!("durable outcomes are awaited above"),
        Ok(Outcome::Subscribe(sub)) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
            let lifetime = state.config.subscription_lifetime;
            tokio::spawn(subscribe_to_shard::run(state.clone(), sub, codec, lifetime, tx));
            let frames = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|frame| (Ok::<_, std::convert::Infallible>(frame), rx))
            });
            let mut response = Response::new(Body::from_stream(frames));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.amazon.eventstream"));
            response
        }
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(operation, code = e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(operation, code = e.code, message = %e.message, "request refused");
            }
            error_response(codec, &e)
        }
    }
}

/// Header names and values as the SigV4 verifier reads them.
pub(crate) fn flat_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

fn respond(status: StatusCode, codec: Codec, body: Vec<u8>, error_type: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(codec.content_type()));
    let request_id = format!("{:032x}", rand::random::<u128>());
    h.insert("x-amzn-requestid", HeaderValue::from_str(&request_id).expect("hex is a valid header"));
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-errortype", t);
    }
    response
}

pub fn error_body(codec: Codec, e: &ApiError) -> Vec<u8> {
    let doc =
        Doc::Map(vec![("__type".into(), Doc::Str(e.code.into())), (e.message_key().into(), e.message.clone().into())]);
    codec.encode(&doc)
}

fn error_response(codec: Codec, e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    respond(status, codec, error_body(codec, e), Some(e.code))
}

/// Checks the request's SigV4 signature, when authentication is on.
fn authenticate(state: &AppState, call: &Call, signing_name: &str) -> Result<(), ApiError> {
    let Some(credentials) = &state.config.credentials else { return Ok(()) };
    let request = sigv4::SignedRequest {
        method: call.method.as_str(),
        path: call.uri.path(),
        query: call.uri.query().unwrap_or(""),
        headers: &call.headers,
        body: &call.body,
    };
    sigv4::verify(&request, signing_name, state.streams.now(), |key| credentials.get(key).cloned()).map(|_principal| ())
}

/// PutRecords bodies up to this size take [`fast_put`] on the I/O thread (SigV4's SHA-256 alone
/// runs at about 1.8 GB/s here: 0.6 ms for 1 MiB); larger ones, up to 5 MiB, take it on the
/// blocking pool, so that one request does not hold up the other connections of its I/O thread.
const INLINE_PUT_MAX_BODY: usize = 1024 * 1024;

/// Kinesis PutRecords in JSON as producers send it: authenticated, decoded and appended (on the
/// I/O thread, or on the blocking pool past [`INLINE_PUT_MAX_BODY`]), leaving the fsync to be
/// awaited on the I/O thread ([`Outcome::Durable`]). `None`: not such a
/// request, or a body the fast path does not take; it then goes through [`process`], which says
/// what is wrong with it the way AWS does.
fn fast_put(state: &AppState, call: &Call) -> Option<Result<Outcome, ApiError>> {
    let target = call.target.as_deref()?.strip_prefix(kinesis::TARGET_PREFIX)?.strip_prefix('.')?;
    if call.codec != Codec::Json || call.method != Method::POST || target != kinesis::PUT_RECORDS {
        return None;
    }
    if let Err(e) = authenticate(state, call, "kinesis") {
        return Some(Err(e));
    }
    let ctx = kinesis::Ctx { streams: &state.streams, metrics: &state.metrics };
    let written = kinesis::put_records::handle_json(&ctx, &call.body)?;
    Some(written.map(|(body, written)| Outcome::Durable(body, written)))
}

/// `try_fast_put`: the request may be a PutRecords that [`fast_put`] takes (one too large to
/// have been tried on the I/O thread).
fn process(state: &AppState, call: Call, try_fast_put: bool) -> (String, Result<Outcome, ApiError>, Codec) {
    let codec = call.codec;
    if let Some(result) = try_fast_put.then(|| fast_put(state, &call)).flatten() {
        return (kinesis::PUT_RECORDS.to_owned(), result, codec);
    }
    let Some(target) = call.target.as_deref() else {
        return ("unknown".into(), Err(ApiError::unknown_operation("Missing X-Amz-Target header")), codec);
    };
    let (service, op) = target.split_once('.').unwrap_or((target, ""));
    let operation = op.to_owned();
    let result = (|| {
        let signing_name = match service {
            kinesis::TARGET_PREFIX if kinesis::is_operation(op) => "kinesis",
            firehose::TARGET_PREFIX if firehose::is_operation(op) => "firehose",
            athena::TARGET_PREFIX if athena::is_operation(op) => "athena",
            _ => return Err(ApiError::unknown_operation(format!("Unknown operation {target}"))),
        };
        if call.method != Method::POST {
            return Err(ApiError::new(
                "AccessDeniedException",
                403,
                "Unable to determine service/operation name to be authorized",
            ));
        }
        authenticate(state, &call, signing_name)?;
        let doc = codec.decode(&call.body)?;
        if service == athena::TARGET_PREFIX {
            let ctx =
                athena::Ctx { executions: &state.athena, query: state.query.as_ref(), started_ms: state.started_ms };
            return Ok(Outcome::Body(codec.encode(&athena::dispatch(&ctx, op, &doc)?)));
        }
        if service == firehose::TARGET_PREFIX {
            let ctx = firehose::Ctx { streams: &state.streams, segments: &state.segments, metrics: &state.metrics };
            return Ok(Outcome::Body(codec.encode(&firehose::dispatch(&ctx, op, &doc)?)));
        }
        let ctx = kinesis::Ctx { streams: &state.streams, metrics: &state.metrics };
        if op == kinesis::SUBSCRIBE_TO_SHARD {
            return Ok(Outcome::Subscribe(subscribe_to_shard::start(&ctx, &state.subscriptions, &doc)?));
        }
        let output = kinesis::dispatch(&ctx, op, &doc)?;
        Ok(Outcome::Body(codec.encode(&output)))
    })();
    (operation, result, codec)
}

/// An empty structure, the output of operations that return nothing.
pub fn empty() -> Doc<'static> {
    Obj::new().done()
}
