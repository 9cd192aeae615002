//! Running the statements that write tables (see `statement`): the query part runs on the same
//! session as any read (so it sees the tail and its bytes scanned are counted), its batches
//! stream into Parquet files of the target table, and one commit makes them visible. A
//! statement that fails leaves nothing behind: its files are removed and a table it created is
//! dropped again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement as Sql};
use futures_util::StreamExt;
use tarn_lake::{Lake, NewTable, TableWriter};

use crate::engine::{Answer, Engine, QueryError, Stats};
use crate::statement::{Statement, Target};

/// Rows, files and bytes a statement wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

fn lake_error(e: tarn_lake::Error) -> QueryError {
    match e {
        tarn_lake::Error::Exists(_) => QueryError::User(e.to_string()),
        tarn_lake::Error::Other(m) => QueryError::User(m),
        tarn_lake::Error::Arrow(e) => QueryError::User(e.to_string()),
        other => QueryError::Internal(other.to_string()),
    }
}

/// A file name prefix no other statement uses.
fn file_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("sql-{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Engine {
    /// Runs a statement that writes; `ctx` is the statement's session.
    pub(crate) async fn write(
        &self,
        statement: Statement,
        ctx: &SessionContext,
        default_schema: &str,
    ) -> Result<(Answer, Written), QueryError> {
        if !self.config.allow_writes {
            return Err(QueryError::User(
                "this server runs read-only queries only (query.allow_writes = false)".into(),
            ));
        }
        let lake = self.lake().clone();
        match statement {
            Statement::Read => unreachable!("reads are not run here"),
            Statement::DropTable { target, if_exists } => {
                let (ns, name) = target.in_schema(default_schema);
                if lake.checkpoint_if_exists(&ns, &name).await.map_err(lake_error)?.is_some() {
                    return Err(QueryError::User(format!(
                        "{ns}.{name} is the table of a segment; delete the segment (tarn segment delete) instead"
                    )));
                }
                let dropped = lake.drop_table(&ns, &name).await.map_err(lake_error)?;
                if !dropped && !if_exists {
                    return Err(QueryError::User(format!("table {ns}.{name} does not exist")));
                }
                Ok((no_rows(), Written::default()))
            }
            Statement::CreateTable { target, if_not_exists, layout, query } => {
                let (ns, name) = target.in_schema(default_schema);
                if lake.existing(&ns, &name).await.map_err(lake_error)?.is_some() {
                    if if_not_exists {
                        return Ok((no_rows(), Written::default()));
                    }
                    return Err(QueryError::User(format!("table {ns}.{name} already exists")));
                }
                let frame = plan(ctx, query).await?;
                let schema = frame.schema().as_arrow().clone();
                let properties: Vec<(String, String)> = layout.properties.into_iter().collect();
                let new = NewTable {
                    namespace: &ns,
                    name: &name,
                    schema: &schema,
                    partitioning: &layout.partitioning,
                    compression: layout.compression,
                    properties: &properties,
                };
                let table = lake.create_table_from(&new).await.map_err(lake_error)?;
                // A statement stopped while it fills the table (StopQueryExecution, a client
                // gone) leaves no table behind, as a failed one does not.
                let mut undo = DropOnCancel { lake: Some(lake.clone()), namespace: ns.clone(), name: name.clone() };
                let filled = self.fill(&table, frame, None).await;
                undo.lake = None;
                match filled {
                    Ok(written) => Ok((rows_written(written.rows), written)),
                    Err(e) => {
                        if let Err(drop) = lake.drop_table(&ns, &name).await {
                            tracing::warn!(table = %format!("{ns}.{name}"), error = %drop, "cannot drop a table whose CREATE TABLE AS failed");
                        }
                        Err(e)
                    }
                }
            }
            Statement::Insert { target, columns, query } => {
                let (ns, name) = target.in_schema(default_schema);
                let Some(table) = lake.existing(&ns, &name).await.map_err(lake_error)? else {
                    return Err(QueryError::User(format!("table {ns}.{name} does not exist")));
                };
                let table_columns: Vec<String> =
                    table.metadata().current_schema().as_struct().fields().iter().map(|f| f.name.clone()).collect();
                let targets = if columns.is_empty() {
                    table_columns
                } else {
                    for c in &columns {
                        if !table_columns.contains(c) {
                            return Err(QueryError::User(format!("table {ns}.{name} has no column {c}")));
                        }
                    }
                    columns
                };
                let frame = plan(ctx, query).await?;
                let given = frame.schema().fields().len();
                if given != targets.len() {
                    return Err(QueryError::User(format!(
                        "INSERT INTO {} has {} target columns but the query gives {given}",
                        Target { namespace: Some(ns.clone()), name: name.clone() }.display(),
                        targets.len()
                    )));
                }
                let written = self.fill(&table, frame, Some(&targets)).await?;
                Ok((rows_written(written.rows), written))
            }
        }
    }

    /// Streams `frame`'s batches into new files of `table` and commits them; with `names`, the
    /// batches' columns are renamed to them by position (INSERT's column mapping).
    async fn fill(
        &self,
        table: &iceberg::table::Table,
        frame: DataFrame,
        names: Option<&[String]>,
    ) -> Result<Written, QueryError> {
        let writer =
            TableWriter::new(table, &file_prefix(), self.config.max_write_partitions).await.map_err(lake_error)?;
        // Stopped before the commit: the files written so far are deleted.
        let mut writer = AbandonOnCancel(Some(writer));
        let mut stream = frame.execute_stream().await?;
        let mut failure = None;
        while let Some(batch) = stream.next().await {
            let result = match batch {
                Ok(batch) => match rename(&batch, names) {
                    Ok(batch) => writer.get().write(&batch).await.map_err(lake_error),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                failure = Some(e);
                break;
            }
        }
        let writer = writer.0.take().expect("the writer is there until here");
        if let Some(e) = failure {
            writer.abandon().await;
            return Err(e);
        }
        // From here the statement finishes whether or not it is stopped: closing the files and
        // committing them run as their own task, so a stop cannot leave written files uncommitted
        // and undeleted.
        let (lake, table) = (self.lake().clone(), table.clone());
        let finish = tokio::spawn(async move {
            let rows = writer.rows();
            let files = writer.finish().await.map_err(lake_error)?;
            let written =
                Written { rows, files: files.len() as u64, bytes: files.iter().map(|f| f.file_size_in_bytes()).sum() };
            if !files.is_empty() {
                lake.commit_written(&table, files).await.map_err(lake_error)?;
            }
            Ok::<_, QueryError>(written)
        });
        finish.await.map_err(|e| QueryError::Internal(format!("the commit task failed: {e}")))?
    }
}

/// A table writer that, dropped before its files are finished (the statement was stopped),
/// deletes what it wrote, on a task of its own.
struct AbandonOnCancel(Option<TableWriter>);

impl AbandonOnCancel {
    fn get(&mut self) -> &mut TableWriter {
        self.0.as_mut().expect("the writer is there until it is taken")
    }
}

impl Drop for AbandonOnCancel {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(writer.abandon());
        }
    }
}

/// A table created by CREATE TABLE AS, dropped (on a task of its own) if the statement is
/// stopped before the table is filled; disarmed by taking `lake`.
struct DropOnCancel {
    lake: Option<Arc<Lake>>,
    namespace: String,
    name: String,
}

impl Drop for DropOnCancel {
    fn drop(&mut self) {
        if let Some(lake) = self.lake.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (namespace, name) = (std::mem::take(&mut self.namespace), std::mem::take(&mut self.name));
            runtime.spawn(async move {
                match lake.drop_table(&namespace, &name).await {
                    Ok(_) => tracing::info!(table = %format!("{namespace}.{name}"), "a stopped CREATE TABLE AS left no table"),
                    Err(e) => tracing::warn!(table = %format!("{namespace}.{name}"), error = %e, "cannot drop the table of a stopped CREATE TABLE AS"),
                }
            });
        }
    }
}

impl Target {
    fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

async fn plan(ctx: &SessionContext, query: Box<Query>) -> Result<DataFrame, QueryError> {
    let statement = DfStatement::Statement(Box::new(Sql::Query(query)));
    let plan = ctx.state().statement_to_plan(statement).await?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

fn rename(batch: &RecordBatch, names: Option<&[String]>) -> Result<RecordBatch, QueryError> {
    let Some(names) = names else { return Ok(batch.clone()) };
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| f.as_ref().clone().with_name(n.clone()).with_nullable(true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec())
        .map_err(|e| QueryError::Internal(e.to_string()))
}

fn no_rows() -> Answer {
    Answer { schema: Arc::new(Schema::empty()), batches: Vec::new(), stats: Stats::default() }
}

/// The answer of a statement that wrote `rows` rows: one row, column `rows`.
fn rows_written(rows: u64) -> Answer {
    let schema = Arc::new(Schema::new(vec![Field::new("rows", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![rows as i64]))])
        .expect("one Int64 column");
    Answer { schema, batches: vec![batch], stats: Stats::default() }
}
