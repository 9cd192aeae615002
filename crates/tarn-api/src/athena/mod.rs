//! The Athena API (`X-Amz-Target: AmazonAthena.<Action>`), one file per action, so that boto3
//! Athena code runs unchanged against the lake: statements run on Tarn's query engine
//! (`QueryService`), executions and their results are kept by [`executions::Executions`].
//! There is one workgroup, `primary`, and one catalog, `AwsDataCatalog` (the lake's).

use std::sync::Arc;

use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, Pattern, Violations};
use crate::protocol::{Doc, Obj};
use crate::query::{Pending, QueryService, TableInfo};

mod batch_get_query_execution;
pub mod executions;
mod get_data_catalog;
mod get_database;
mod get_query_execution;
mod get_query_results;
mod get_table_metadata;
mod get_work_group;
mod list_data_catalogs;
mod list_databases;
mod list_query_executions;
mod list_table_metadata;
mod list_work_groups;
mod start_query_execution;
mod stop_query_execution;

pub use executions::{AthenaLimits, Executions};

pub const TARGET_PREFIX: &str = "AmazonAthena";

/// The one data catalog: the lake's.
pub const CATALOG: &str = "AwsDataCatalog";

/// The workgroup every query runs in.
pub const PRIMARY: &str = "primary";

/// What an action needs from the server.
pub struct Ctx<'a> {
    pub executions: &'a Arc<Executions>,
    pub query: Option<&'a Arc<dyn QueryService>>,
    /// When the server started (the primary workgroup's creation time), epoch milliseconds.
    pub started_ms: i64,
}

type Handler = fn(&Ctx<'_>, &Doc<'_>) -> Result<Doc<'static>, ApiError>;

const ACTIONS: &[(&str, Handler)] = &[
    ("BatchGetQueryExecution", batch_get_query_execution::handle),
    ("GetDataCatalog", get_data_catalog::handle),
    ("GetDatabase", get_database::handle),
    ("GetQueryExecution", get_query_execution::handle),
    ("GetQueryResults", get_query_results::handle),
    ("GetTableMetadata", get_table_metadata::handle),
    ("GetWorkGroup", get_work_group::handle),
    ("ListDataCatalogs", list_data_catalogs::handle),
    ("ListDatabases", list_databases::handle),
    ("ListQueryExecutions", list_query_executions::handle),
    ("ListTableMetadata", list_table_metadata::handle),
    ("ListWorkGroups", list_work_groups::handle),
    ("StartQueryExecution", start_query_execution::handle),
    ("StopQueryExecution", stop_query_execution::handle),
];

pub fn is_operation(op: &str) -> bool {
    ACTIONS.iter().any(|(name, _)| *name == op)
}

pub fn dispatch(ctx: &Ctx<'_>, op: &str, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    crate::actions::find(ACTIONS, TARGET_PREFIX, op)?(ctx, doc)
}

/// `[a-zA-Z0-9._-]{1,128}`: workgroup names.
const WORKGROUP: Pattern = NAME;

/// Athena's request error, with the `AthenaErrorCode` it carries.
pub(crate) fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidRequestException", 400, message)
}

/// A `WorkGroup` member: `primary` when absent; any other name is not found.
pub(crate) fn read_workgroup(input: &Input<'_, '_>, v: &mut Violations) -> Result<String, ApiError> {
    let name = input.string(v, "WorkGroup", false, 1, 128, Some(WORKGROUP))?.unwrap_or(PRIMARY).to_owned();
    Ok(name)
}

pub(crate) fn check_workgroup(name: &str) -> Result<(), ApiError> {
    if name == PRIMARY {
        Ok(())
    } else {
        Err(invalid_request(format!("WorkGroup {name} is not found. This server has one workgroup: {PRIMARY}.")))
    }
}

/// The `QueryExecutionId` member every execution action takes.
pub(crate) fn read_execution_id<'d>(input: &Input<'d, '_>, v: &mut Violations) -> Result<Option<&'d str>, ApiError> {
    input.string(v, "QueryExecutionId", true, 1, 128, Some(EXECUTION_ID))
}

/// `[a-zA-Z_0-9-]{1,128}`: query execution ids.
const EXECUTION_ID: Pattern = Pattern {
    text: "[a-zA-Z_0-9-]{1,128}",
    matches: |s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
};

pub(crate) fn execution_not_found(id: &str) -> ApiError {
    invalid_request(format!("QueryExecution {id} was not found"))
}

/// One execution as GetQueryExecution and BatchGetQueryExecution describe it.
pub(crate) fn describe(e: &executions::Execution) -> Doc<'static> {
    let s = &e.submission;
    let mut status = Obj::new()
        .put("State", e.state.name())
        .opt("StateChangeReason", e.reason.clone())
        .put("SubmissionDateTime", crate::protocol::doc::timestamp(e.submitted_ms))
        .opt("CompletionDateTime", e.completed_ms.map(crate::protocol::doc::timestamp));
    if let Some(f) = &e.failure {
        status = status.put(
            "AthenaError",
            Obj::new()
                .put("ErrorCategory", f.category)
                .put("ErrorType", f.error_type)
                .put("Retryable", f.retryable)
                .put("ErrorMessage", f.message.clone()),
        );
    }
    let queued_ms = e.started_ms.unwrap_or(e.completed_ms.unwrap_or(e.submitted_ms)) - e.submitted_ms;
    let total_ms = e.completed_ms.map(|c| c - e.submitted_ms);
    let mut statistics = Obj::new()
        .put("EngineExecutionTimeInMillis", e.engine_ms as i64)
        .put("DataScannedInBytes", e.bytes_scanned as i64)
        .put("QueryQueueTimeInMillis", queued_ms.max(0))
        .put("ResultReuseInformation", Obj::new().put("ReusedPreviousResult", false));
    if let Some(total) = total_ms {
        statistics = statistics
            .put("TotalExecutionTimeInMillis", total.max(0))
            .put("ServiceProcessingTimeInMillis", (total - queued_ms - e.engine_ms as i64).max(0));
    }
    let output = s.output_location.as_ref().map(|location| {
        let suffix = if e.statement_type == executions::StatementType::Dml { "csv" } else { "txt" };
        let base = location.trim_end_matches('/');
        Obj::new().put("OutputLocation", format!("{base}/{}.{suffix}", e.id))
    });
    Obj::new()
        .put("QueryExecutionId", e.id.clone())
        .put("Query", s.query.clone())
        .put("StatementType", e.statement_type.name())
        .put("ResultConfiguration", output.unwrap_or_default())
        .put(
            "QueryExecutionContext",
            Obj::new()
                .opt("Database", s.database.clone())
                .put("Catalog", s.catalog.clone().unwrap_or("AwsDataCatalog".into())),
        )
        .put("Status", status)
        .put("Statistics", statistics)
        .put("WorkGroup", s.workgroup.clone())
        .put("EngineVersion", engine_version())
        .opt("SubstatementType", executions::StatementType::substatement(&s.query))
        .done()
}

pub(crate) fn engine_version() -> Obj {
    Obj::new().put("SelectedEngineVersion", "AUTO").put("EffectiveEngineVersion", "Tarn (DataFusion)")
}

/// The query engine, or the error of a server without one.
pub(crate) fn service<'a>(ctx: &Ctx<'a>) -> Result<&'a Arc<dyn QueryService>, ApiError> {
    ctx.query.ok_or_else(|| ApiError::new("InternalServerException", 500, "this server runs no query engine"))
}

/// Waits for a catalog call (actions run on the blocking pool, so they may block).
pub(crate) fn wait<T>(pending: Pending<T>) -> Result<T, ApiError> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ApiError::new("InternalServerException", 500, "no runtime to read the catalog on"))?;
    runtime.block_on(pending).map_err(|f| match f {
        crate::query::QueryFailure::Invalid(m) => invalid_request(m),
        crate::query::QueryFailure::Internal(m) => ApiError::new("InternalServerException", 500, m),
    })
}

/// A `CatalogName` member: required, and `AwsDataCatalog`.
pub(crate) fn read_catalog(input: &Input<'_, '_>, v: &mut Violations) -> Result<(), ApiError> {
    let name = input.string(v, "CatalogName", true, 1, 256, None)?;
    match name {
        Some(n) if !n.eq_ignore_ascii_case(CATALOG) => {
            Err(invalid_request(format!("Catalog {n} is not found. This server has one catalog: {CATALOG}.")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn metadata_error(message: impl Into<String>) -> ApiError {
    ApiError::new("MetadataException", 400, message)
}

/// A table as Athena's `TableMetadata`.
pub(crate) fn table_metadata(t: &TableInfo) -> Doc<'static> {
    let columns: Vec<Doc<'static>> = t
        .columns
        .iter()
        .map(|c| Obj::new().put("Name", c.name.clone()).put("Type", c.type_name.clone()).done())
        .collect();
    let keys: Vec<Doc<'static>> =
        t.partition_keys.iter().map(|k| Obj::new().put("Name", k.clone()).put("Type", "string").done()).collect();
    let parameters = Doc::Map(t.parameters.iter().map(|(k, v)| (k.clone().into(), Doc::from(v.clone()))).collect());
    Obj::new()
        .put("Name", t.name.clone())
        .put("CreateTime", crate::protocol::doc::timestamp(t.created_ms))
        .put("LastAccessTime", crate::protocol::doc::timestamp(t.updated_ms))
        .put("TableType", "EXTERNAL_TABLE")
        .put("Columns", columns)
        .put("PartitionKeys", keys)
        .put("Parameters", parameters)
        .done()
}
