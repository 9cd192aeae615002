//! Tarn's AWS-compatible HTTP API.
//!
//! Request path: `server` (axum: one POST endpoint, `/metrics`, `/health`) → `sigv4` (who
//! signed it) → `protocol` (JSON 1.1 or CBOR body → [`protocol::Doc`]) → `kinesis::dispatch`,
//! `firehose::dispatch` or `athena::dispatch` (`X-Amz-Target` → one file per action, reading
//! input through `protocol::input`) → `tarn-streams` / `tarn-segments` / the query engine
//! (`query::QueryService`) → response `Doc` encoded in the request's protocol. Every failure
//! becomes an [`ApiError`] and is encoded once, in `server`.

mod actions;
pub mod athena;
pub mod error;
pub mod firehose;
pub mod iceberg_rest;
pub mod kinesis;
pub use tarn_metrics as metrics;
pub mod protocol;
pub mod query;
pub mod server;
pub mod sigv4;
mod tables;

pub use error::ApiError;
pub use query::{QueryFailure, QueryReply, QueryService};
pub use server::{ApiConfig, AppState, serve};
