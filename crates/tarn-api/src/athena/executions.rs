//! The query executions of the Athena API: submitted, queued behind a limit of running queries,
//! run on the query engine, and kept (with their results, within a memory budget) for
//! GetQueryExecution and GetQueryResults. Executions live in memory; a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::error::ApiError;
use crate::query::{QueryFailure, QueryResults, QueryService};

/// How many queries run and how much the server keeps (`[query]` in `tarn.toml`).
#[derive(Debug, Clone)]
pub struct AthenaLimits {
    /// Queries that run at once; the others wait as QUEUED.
    pub max_running: usize,
    /// Queued and running queries together; StartQueryExecution refuses more with
    /// TooManyRequestsException.
    pub max_active: usize,
    /// Memory for the results of finished queries; the oldest results are dropped first. A single
    /// result larger than this fails its query.
    pub max_results_bytes: usize,
    /// Finished executions remembered (for GetQueryExecution and ListQueryExecutions).
    pub max_kept: usize,
}

impl Default for AthenaLimits {
    fn default() -> Self {
        AthenaLimits { max_running: 4, max_active: 100, max_results_bytes: 512 << 20, max_kept: 10_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "QUEUED",
            State::Running => "RUNNING",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::Cancelled => "CANCELLED",
        }
    }

    fn is_active(self) -> bool {
        matches!(self, State::Queued | State::Running)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementType {
    Ddl,
    Dml,
    Utility,
}

impl StatementType {
    /// From the statement's first keyword, as Athena classifies statements.
    pub fn of(sql: &str) -> StatementType {
        let keyword = first_keyword(sql).to_ascii_uppercase();
        match keyword.as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" | "INSERT" | "UNLOAD" | "UPDATE" | "DELETE" | "MERGE" => {
                StatementType::Dml
            }
            "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" => StatementType::Utility,
            _ => StatementType::Ddl,
        }
    }

    /// Athena's finer classification (`SubstatementType`), for the statements Tarn runs.
    pub fn substatement(sql: &str) -> Option<&'static str> {
        let keyword = first_keyword(sql).to_ascii_uppercase();
        let has_query = sql.to_ascii_uppercase().split(|c: char| !c.is_ascii_alphabetic()).any(|w| w == "SELECT");
        Some(match keyword.as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" => "SELECT",
            "INSERT" => "INSERT",
            "CREATE" if has_query => "CREATE_TABLE_AS_SELECT",
            "CREATE" => "CREATE_TABLE",
            "DROP" => "DROP_TABLE",
            "EXPLAIN" => "EXPLAIN",
            "DESCRIBE" | "DESC" => "DESCRIBE_TABLE",
            "SHOW" => "SHOW",
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            StatementType::Ddl => "DDL",
            StatementType::Dml => "DML",
            StatementType::Utility => "UTILITY",
        }
    }
}

/// The first word of a statement, past blanks, comments and opening parentheses.
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            rest = trimmed;
            break;
        }
    }
    let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    &rest[..end]
}

/// Why a query failed, as Athena's `AthenaError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1 system, 2 user, 3 other.
    pub category: i64,
    /// Athena's error type: 1000 user error, 200 engine error.
    pub error_type: i64,
    pub retryable: bool,
    pub message: String,
}

/// What StartQueryExecution asked for.
#[derive(Debug, Clone)]
pub struct Submission {
    pub query: String,
    pub database: Option<String>,
    pub catalog: Option<String>,
    pub workgroup: String,
    pub output_location: Option<String>,
    pub client_token: Option<String>,
}

/// One execution as GetQueryExecution describes it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub id: String,
    pub submission: Submission,
    pub statement_type: StatementType,
    pub state: State,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    pub failure: Option<Failure>,
    pub submitted_ms: i64,
    pub started_ms: Option<i64>,
    pub completed_ms: Option<i64>,
    pub engine_ms: u64,
    pub bytes_scanned: u64,
    /// The rows, while kept; see [`Execution::results_dropped`].
    pub results: Option<Arc<QueryResults>>,
    /// The results were dropped to keep newer ones within the budget.
    pub results_dropped: bool,
}

impl Execution {
    /// Whether the results open with a row of column names: queries and EXPLAIN do, SHOW and
    /// DESCRIBE (plain lists) do not.
    pub fn has_header_row(&self) -> bool {
        let keyword = first_keyword(&self.submission.query);
        self.statement_type != StatementType::Utility || keyword.eq_ignore_ascii_case("EXPLAIN")
    }
}

/// Writes `results` as CSV to `url` when it lies in the lake's storage. The CSV is made on a
/// blocking thread: results run to many megabytes, and this task runs on the API's runtime.
async fn write_output(service: &dyn QueryService, url: &str, results: Arc<QueryResults>) -> Result<(), String> {
    let Some(key) = service.storage_key(url) else { return Ok(()) };
    let csv = tokio::task::spawn_blocking(move || results_csv(&results)).await.map_err(|e| e.to_string())?;
    service.put_object(key, csv).await.map_err(|e| match e {
        QueryFailure::Invalid(m) | QueryFailure::Internal(m) => m,
    })
}

/// A result as Athena writes it to its OutputLocation: a header row of column names, then the
/// rows; every value in double quotes (quotes inside doubled), NULL as an empty field.
pub fn results_csv(results: &QueryResults) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, value: Option<&str>) {
        if let Some(v) = value {
            out.push(b'"');
            out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        }
    }
    let mut out = Vec::new();
    let header = results.columns.iter().map(|c| Some(c.name.as_str()));
    let rows = results.rows.iter().map(|r| r.iter().map(Option::as_deref).collect::<Vec<_>>());
    for row in std::iter::once(header.collect::<Vec<_>>()).chain(rows) {
        for (j, value) in row.into_iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            field(&mut out, value);
        }
        out.push(b'\n');
    }
    out
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct Executions {
    limits: AthenaLimits,
    clock: Clock,
    running: Arc<Semaphore>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Execution>,
    /// Ids in submission order, oldest first.
    order: VecDeque<String>,
    /// ClientRequestToken → id, so a retried start does not run the query twice.
    tokens: HashMap<String, String>,
    aborts: HashMap<String, AbortHandle>,
    results_bytes: usize,
}

impl Executions {
    /// `clock` gives epoch milliseconds.
    pub fn new(limits: AthenaLimits, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Arc<Executions> {
        let running = Arc::new(Semaphore::new(limits.max_running.max(1)));
        Arc::new(Executions { limits, clock: Arc::new(clock), running, inner: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `submission` and starts it on the current tokio runtime; its id. A start with a
    /// ClientRequestToken seen before answers the earlier execution's id.
    pub fn submit(
        self: &Arc<Self>,
        submission: Submission,
        service: Arc<dyn QueryService>,
    ) -> Result<String, ApiError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ApiError::new("InternalServerException", 500, "no runtime to run the query on"))?;
        let mut inner = self.lock();
        if let Some(id) = submission.client_token.as_ref().and_then(|t| inner.tokens.get(t)) {
            return Ok(id.clone());
        }
        let active = inner.by_id.values().filter(|e| e.state.is_active()).count();
        if active >= self.limits.max_active {
            return Err(ApiError::new(
                "TooManyRequestsException",
                400,
                format!(
                    "{active} queries are queued or running, the most this server accepts ([query] max_active_queries); \
                     retry when some have finished"
                ),
            ));
        }
        let id = new_id();
        let execution = Execution {
            id: id.clone(),
            statement_type: StatementType::of(&submission.query),
            submission: submission.clone(),
            state: State::Queued,
            reason: None,
            failure: None,
            submitted_ms: (self.clock)(),
            started_ms: None,
            completed_ms: None,
            engine_ms: 0,
            bytes_scanned: 0,
            results: None,
            results_dropped: false,
        };
        if let Some(token) = &submission.client_token {
            inner.tokens.insert(token.clone(), id.clone());
        }
        inner.by_id.insert(id.clone(), execution);
        inner.order.push_back(id.clone());
        self.forget_oldest(&mut inner);
        let this = self.clone();
        let task_id = id.clone();
        let task = runtime.spawn(async move {
            let Ok(_permit) = this.running.clone().acquire_owned().await else { return };
            if !this.mark_running(&task_id) {
                return;
            }
            let dml = StatementType::of(&submission.query) == StatementType::Dml;
            let mut outcome = service.results(submission.query, submission.database).await.map(Arc::new);
            // As Athena does, the rows of a query also go to the OutputLocation as CSV, when it
            // lies in the lake's storage (elsewhere there is nothing to write to).
            if let (Ok(results), Some(location), true) = (&outcome, &submission.output_location, dml) {
                let url = format!("{}/{task_id}.csv", location.trim_end_matches('/'));
                if let Err(message) = write_output(service.as_ref(), &url, results.clone()).await {
                    outcome = Err(QueryFailure::Internal(format!("cannot write the results to {url}: {message}")));
                }
            }
            this.finish(&task_id, outcome);
        });
        inner.aborts.insert(id.clone(), task.abort_handle());
        Ok(id)
    }

    /// A copy of one execution.
    pub fn get(&self, id: &str) -> Option<Execution> {
        self.lock().by_id.get(id).cloned()
    }

    /// Ids of `workgroup`'s executions, newest first.
    pub fn ids(&self, workgroup: &str) -> Vec<String> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .rev()
            .filter(|id| inner.by_id.get(*id).is_some_and(|e| e.submission.workgroup == workgroup))
            .cloned()
            .collect()
    }

    /// Cancels a queued or running execution; a finished one stays as it is. `false` when the
    /// id is unknown.
    pub fn stop(&self, id: &str) -> bool {
        let now = (self.clock)();
        let mut inner = self.lock();
        let Some(execution) = inner.by_id.get_mut(id) else { return false };
        if execution.state.is_active() {
            execution.state = State::Cancelled;
            execution.reason = Some("Query cancelled by user".into());
            execution.completed_ms = Some(now);
            if let Some(abort) = inner.aborts.remove(id) {
                abort.abort();
            }
        }
        true
    }

    fn mark_running(&self, id: &str) -> bool {
        let now = (self.clock)();
        let mut inner = self.lock();
        match inner.by_id.get_mut(id) {
            Some(e) if e.state == State::Queued => {
                e.state = State::Running;
                e.started_ms = Some(now);
                true
            }
            _ => false,
        }
    }

    fn finish(&self, id: &str, outcome: Result<Arc<QueryResults>, QueryFailure>) {
        let now = (self.clock)();
        let mut inner = self.lock();
        inner.aborts.remove(id);
        let budget = self.limits.max_results_bytes;
        let outcome = outcome.and_then(|results| {
            let size = results.size_bytes();
            if size > budget {
                return Err(QueryFailure::Invalid(format!(
                    "the result holds about {} MiB, more than the {} MiB the server keeps for query results \
                     ([query] max_results_mib); add a LIMIT or aggregate",
                    size >> 20,
                    budget >> 20
                )));
            }
            Ok((results, size))
        });
        let Some(execution) = inner.by_id.get_mut(id) else { return };
        if execution.state != State::Running {
            return; // cancelled meanwhile
        }
        execution.completed_ms = Some(now);
        let kept = match outcome {
            Ok((results, size)) => {
                execution.state = State::Succeeded;
                execution.engine_ms = results.engine_ms;
                execution.bytes_scanned = results.bytes_scanned;
                execution.results = Some(results);
                size
            }
            Err(failure) => {
                let (category, error_type, retryable, message) = match failure {
                    QueryFailure::Invalid(m) => (2, 1000, false, m),
                    QueryFailure::Internal(m) => (1, 200, true, m),
                };
                execution.state = State::Failed;
                execution.reason = Some(message.clone());
                execution.failure = Some(Failure { category, error_type, retryable, message });
                0
            }
        };
        inner.results_bytes += kept;
        self.drop_oldest_results(&mut inner, id);
    }

    /// Drops the results of the oldest executions (never `keep`'s) until the rest fit the budget.
    fn drop_oldest_results(&self, inner: &mut Inner, keep: &str) {
        let Inner { by_id, order, results_bytes, .. } = inner;
        for id in order.iter() {
            if *results_bytes <= self.limits.max_results_bytes {
                break;
            }
            if id == keep {
                continue;
            }
            if let Some(e) = by_id.get_mut(id)
                && let Some(results) = e.results.take()
            {
                *results_bytes -= results.size_bytes();
                e.results_dropped = true;
            }
        }
    }

    /// Forgets the oldest finished executions beyond `max_kept`.
    fn forget_oldest(&self, inner: &mut Inner) {
        while inner.order.len() > self.limits.max_kept {
            let Some(position) =
                inner.order.iter().position(|id| inner.by_id.get(id).is_none_or(|e| !e.state.is_active()))
            else {
                return;
            };
            let Some(id) = inner.order.remove(position) else { return };
            if let Some(e) = inner.by_id.remove(&id) {
                if let Some(results) = e.results {
                    inner.results_bytes -= results.size_bytes();
                }
                if let Some(token) = e.submission.client_token {
                    inner.tokens.remove(&token);
                }
            }
        }
    }
}

/// A query execution id in Athena's form (a random UUID).
fn new_id() -> String {
    let n: u128 = rand::random();
    let hex = format!("{:032x}", (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62));
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_types_follow_the_first_keyword() {
        assert_eq!(StatementType::of("  -- a note\n /* more */ (SELECT 1)"), StatementType::Dml);
        assert_eq!(StatementType::of("with t as (select 1) select * from t"), StatementType::Dml);
        assert_eq!(StatementType::of("SHOW TABLES"), StatementType::Utility);
        assert_eq!(StatementType::of("explain select 1"), StatementType::Utility);
        assert_eq!(StatementType::of("CREATE TABLE t AS SELECT 1"), StatementType::Ddl);
    }

    #[test]
    fn ids_look_like_athena_ids() {
        let id = new_id();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert_ne!(new_id(), id);
    }
}
