//! JSON records to Arrow, for delivery into lake tables. Pure: values in, record batches out.
//!
//! The path a payload takes: [`split`] cuts a stream record's bytes into JSON objects (one object,
//! newline-delimited, or concatenated), [`keys`] applies the OpenX key options, [`infer`] evolves
//! the table's [`schema`] with what the new records show, and [`convert`] builds the Arrow batch.
//! [`direct`] does the same in one step for records whose fields the schema already has: it
//! reads payloads onto a token tape and fills the column builders from it, several times faster,
//! and hands the rest back to the general path.
//!
//! # Type policy
//!
//! Nothing is dropped silently; a value that fits no column is kept in the rescue column.
//!
//! 1. A column's type is fixed when the column first appears, from the records of the batch that
//!    introduced it: integers are `long`, other numbers `double`, `true`/`false` `boolean`,
//!    strings `string`, or `timestamp` when every one of them is an ISO-8601 date-time, objects
//!    `struct`, arrays `list`. Columns named in [`ConvertOptions::timestamp_columns`] are
//!    timestamps whatever the first values look like (epoch seconds, milliseconds or microseconds,
//!    told apart by magnitude, or ISO-8601 text). A column seen only as `null` is not created
//!    until a typed value arrives.
//! 2. Mixed types in the batch that introduces a column: `long` with `double` gives `double`,
//!    `timestamp` with other strings gives `string`, anything else gives `string` (values are
//!    written as their JSON text).
//! 3. Later values that do not match their column are converted when that loses nothing: an
//!    integral number into `long`, any number into `double`, anything into `string` (as JSON
//!    text), `"true"`/`"false"` into `boolean`, epoch numbers and ISO-8601 text into `timestamp`.
//! 4. Otherwise the column gets `null` for that row and the value goes, with its path, into the
//!    rescue column (`_rescued` by default): a JSON object text such as `{"speed":"fast"}`.
//! 5. A payload that is not JSON, or a JSON value that is not an object, is not a row: it is
//!    returned as a conversion error with its raw bytes, for the error output.
//!
//! Types never change once committed: Iceberg cannot turn a `long` column into a `double`, so
//! rules 3 and 4 apply instead.

pub mod convert;
pub mod direct;
pub mod infer;
pub mod keys;
pub mod parse;
pub mod schema;
pub mod split;
mod tape;
pub mod time;

pub use convert::{Converted, convert};
pub use direct::{DirectBatch, Objects, Reader, Refused};
pub use infer::{Shapes, evolve};
pub use keys::ConvertOptions;
pub use schema::{Column, ColumnType, TableSchema};
pub use split::{SplitError, split_payload};
