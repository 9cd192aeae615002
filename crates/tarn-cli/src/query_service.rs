//! The server's query engine: `tarn-query` over the lake, reading each segment's undelivered
//! tail from its stream (`tarn-delivery`'s tail reader), answering `/v1/query`.

use std::sync::Arc;

use tarn_api::metrics::Metrics;
use tarn_api::query::{CatalogColumn, Pending, QueryResults, ResultColumn, ResultsFuture, TableInfo};
use tarn_api::{QueryFailure, QueryReply, QueryService};
use tarn_delivery::TailReader;
use tarn_lake::{TableDescription, TableView};
use tarn_query::{Engine, Format, QueryError, Stats, TailBatch, TailSource};
use tarn_segments::Segments;

use crate::segments::DeliveryRunner;

/// The tails of the segments that deliver into the lake.
pub struct SegmentTails {
    pub reader: Arc<TailReader>,
    pub segments: Arc<Segments>,
    pub runner: Arc<DeliveryRunner>,
}

#[tarn_query::async_trait]
impl TailSource for SegmentTails {
    async fn tail(&self, view: &TableView) -> Result<Vec<TailBatch>, String> {
        let Some(def) = self.segments.list().into_iter().find(|d| d.layer == view.namespace && d.table == view.name)
        else {
            return Ok(Vec::new()); // a table no segment delivers to (written by another engine)
        };
        let spec = self.runner.spec(&def)?;
        let rows = match self.reader.read_unchanged(&spec, view.checkpoint.as_ref(), &view.table_schema) {
            Some(rows) => rows,
            None => self.read(spec, view).await?,
        };
        Ok(rows.into_iter().map(|(folder, batch)| TailBatch { folder, batch }).collect())
    }
}

impl SegmentTails {
    /// The tail read from the stream, on a blocking thread (it may read and convert much).
    async fn read(
        &self,
        spec: tarn_delivery::DeliverySpec,
        view: &TableView,
    ) -> Result<tarn_delivery::TailRows, String> {
        let reader = self.reader.clone();
        let checkpoint = view.checkpoint.clone();
        let schema = view.table_schema.clone();
        tokio::task::spawn_blocking(move || reader.read(&spec, checkpoint.as_ref(), &schema))
            .await
            .map_err(|e| format!("the tail reader failed: {e}"))?
    }
}

/// `/v1/query` on the engine. Queries run on their own runtime (`runtime`), so a heavy one never
/// occupies the threads that serve the Kinesis and Firehose APIs.
pub struct EngineService {
    pub engine: Arc<Engine>,
    pub runtime: tokio::runtime::Handle,
    pub metrics: Arc<Metrics>,
}

/// Counts a statement's outcome and, when it ran, its engine time and bytes scanned, under `api`
/// (`query`: `/v1/query`; `athena`).
fn record(metrics: &Metrics, api: &str, result: Result<&Stats, &QueryFailure>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(QueryFailure::Invalid(_)) => "user_error",
        Err(QueryFailure::Internal(_)) => "internal_error",
    };
    metrics.add("tarn_query_total", &[("api", api), ("outcome", outcome)], 1);
    if let Ok(stats) = result {
        metrics.observe("tarn_query_duration_seconds", &[("api", api)], stats.elapsed_us as f64 / 1e6);
        metrics.add("tarn_query_bytes_scanned_total", &[("api", api)], stats.bytes_scanned);
        if stats.plan_reused {
            metrics.add("tarn_query_plans_reused_total", &[("api", api)], 1);
        }
    }
}

impl QueryService for EngineService {
    fn query(&self, sql: String, format: String) -> tarn_api::query::QueryFuture {
        let engine = self.engine.clone();
        let runtime = self.runtime.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let format = Format::from_name(&format)
                .ok_or_else(|| QueryFailure::Invalid(format!("unknown format {format:?}: use json, csv or table")))?;
            let answer = OnQueryRuntime(runtime.spawn(async move { engine.query(&sql).await })).finish().await;
            record(&metrics, "query", answer.as_ref().map(|a| &a.stats));
            let answer = answer?;
            let stats = &answer.stats;
            tracing::debug!(rows = stats.rows, us = stats.elapsed_us, bytes = stats.bytes_scanned, "query");
            let body = tarn_query::render_reply(&answer, format).map_err(|e| QueryFailure::Internal(e.to_string()))?;
            let headers = vec![
                ("x-tarn-rows", stats.rows.to_string()),
                ("x-tarn-elapsed-ms", stats.elapsed_ms_text()),
                ("x-tarn-bytes-scanned", stats.bytes_scanned.to_string()),
                ("x-tarn-files-scanned", stats.files_scanned.to_string()),
                ("x-tarn-files-pruned", stats.files_pruned.to_string()),
                ("x-tarn-tail-rows", stats.tail_rows.to_string()),
                ("x-tarn-rows-written", stats.rows_written.to_string()),
                ("x-tarn-files-written", stats.files_written.to_string()),
                ("x-tarn-bytes-written", stats.bytes_written.to_string()),
                ("x-tarn-plan-reused", stats.plan_reused.to_string()),
            ];
            Ok(QueryReply { content_type: format.content_type(), body, headers })
        })
    }

    fn results(&self, sql: String, database: Option<String>) -> ResultsFuture {
        let engine = self.engine.clone();
        let task = self.runtime.spawn(async move {
            let answer = engine.query_in(&sql, database.as_deref()).await?;
            let text = tarn_query::text_results(&answer).map_err(|e| QueryError::Internal(e.to_string()))?;
            Ok((answer.stats, text))
        });
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let outcome = OnQueryRuntime(task).finish().await;
            record(&metrics, "athena", outcome.as_ref().map(|(stats, _)| stats));
            let (stats, text) = outcome?;
            let columns = text
                .columns
                .into_iter()
                .map(|c| ResultColumn { name: c.name, type_name: c.type_name, precision: c.precision, scale: c.scale })
                .collect();
            Ok(QueryResults {
                columns,
                rows: text.rows,
                bytes_scanned: stats.bytes_scanned,
                engine_ms: stats.elapsed_ms(),
                rows_written: stats.rows_written,
            })
        })
    }

    fn databases(&self) -> Pending<Vec<String>> {
        self.catalog(|engine| async move {
            let mut names = engine.lake().namespaces().await.map_err(lake_error)?;
            names.extend(crawled(&engine)?.into_iter().map(|t| t.namespace));
            names.sort();
            names.dedup();
            Ok(names)
        })
    }

    fn tables(&self, database: String) -> Pending<Vec<TableInfo>> {
        self.catalog(|engine| async move {
            let mut tables = Vec::new();
            if engine.lake().namespaces().await.map_err(lake_error)?.contains(&database) {
                for name in engine.lake().tables(&database).await.map_err(lake_error)? {
                    if let Some(d) = engine.describe(&database, &name).await? {
                        tables.push(table_info(d));
                    }
                }
            }
            for t in crawled(&engine)?.into_iter().filter(|t| t.namespace == database) {
                // An Iceberg table of the same name wins, as it does in SQL.
                if !tables.iter().any(|i| i.name == t.name) {
                    tables.push(crawled_info(&engine, &t)?);
                }
            }
            tables.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(tables)
        })
    }

    fn table(&self, database: String, name: String) -> Pending<Option<TableInfo>> {
        self.catalog(|engine| async move {
            if let Some(d) = engine.describe(&database, &name).await? {
                return Ok(Some(table_info(d)));
            }
            match tarn_crawl::load(engine.lake().dir(), &database, &name).map_err(crawled_error)? {
                Some(t) => Ok(Some(crawled_info(&engine, &t)?)),
                None => Ok(None),
            }
        })
    }

    fn table_metadata(&self, database: String, name: String) -> Pending<Option<(String, serde_json::Value)>> {
        self.catalog(|engine| async move {
            let Some(table) = engine.lake().existing(&database, &name).await.map_err(lake_error)? else {
                return Ok(None);
            };
            let location = table.metadata_location().unwrap_or_default().to_owned();
            let metadata = serde_json::to_value(table.metadata())
                .map_err(|e| QueryError::Internal(format!("cannot write the metadata of {database}.{name}: {e}")))?;
            Ok(Some((location, metadata)))
        })
    }

    fn storage_key(&self, url: &str) -> Option<String> {
        self.engine.lake().store().key_of(url).map(str::to_owned)
    }

    fn put_object(&self, key: String, body: Vec<u8>) -> Pending<()> {
        self.catalog(|engine| async move {
            engine.lake().store().put(&key, body.into()).await.map_err(|e| QueryError::Internal(e.to_string()))
        })
    }

    fn crawl(&self, location: String, database: String, table: Option<String>) -> Pending<serde_json::Value> {
        self.catalog(|engine| async move {
            let lake = engine.lake();
            let store = lake.store();
            let location = if location.starts_with('/') { format!("file://{location}") } else { location };
            let key = if location.contains("://") {
                store.key_of(&location).map(str::to_owned).ok_or_else(|| {
                    QueryError::User(format!("{location} is outside the lake's storage {}", store.url("")))
                })?
            } else {
                location.trim_matches('/').to_owned()
            };
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            let report = tarn_crawl::crawl(store, lake.dir(), &key, &database, table.as_deref(), now)
                .await
                .map_err(QueryError::User)?;
            serde_json::to_value(report).map_err(|e| QueryError::Internal(e.to_string()))
        })
    }
}

impl EngineService {
    /// Runs a catalog read on the query runtime.
    fn catalog<T, F>(&self, read: impl FnOnce(Arc<Engine>) -> F + Send + 'static) -> Pending<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
    {
        let engine = self.engine.clone();
        let task = self.runtime.spawn(async move { read(engine).await });
        Box::pin(OnQueryRuntime(task).finish())
    }
}

/// The crawled tables' definitions.
fn crawled(engine: &Engine) -> Result<Vec<tarn_crawl::CrawledTable>, QueryError> {
    tarn_crawl::load_all(engine.lake().dir()).map_err(crawled_error)
}

fn crawled_error(e: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(format!("cannot read the crawled tables' definitions: {e}"))
}

/// A crawled table as the API shows it: Glue's parameters for a crawled table (classification,
/// record count, size).
fn crawled_info(engine: &Engine, t: &tarn_crawl::CrawledTable) -> Result<TableInfo, QueryError> {
    let location = engine.lake().store().url(&t.location);
    let d = t.describe(location.clone()).map_err(QueryError::Internal)?;
    let detail = serde_json::to_value(&d).unwrap_or_default();
    let partition_keys = d.partition_keys.clone();
    let columns = d
        .columns
        .iter()
        .filter(|c| !partition_keys.contains(&c.name))
        .map(|c| CatalogColumn { name: c.name.clone(), type_name: c.type_name.clone() })
        .collect();
    let parameters = vec![
        ("classification".to_owned(), d.format.to_owned()),
        ("location".to_owned(), location.clone()),
        ("recordCount".to_owned(), d.rows.to_string()),
        ("sizeKey".to_owned(), d.bytes.to_string()),
        ("typeOfData".to_owned(), "file".to_owned()),
        ("crawls".to_owned(), d.crawls.to_string()),
    ];
    Ok(TableInfo {
        database: d.namespace,
        name: d.name,
        columns,
        partition_keys,
        created_ms: d.created_ms,
        updated_ms: d.last_updated_ms,
        location,
        parameters,
        iceberg: false,
        detail,
    })
}

/// A table's description as the API shows it.
fn table_info(d: TableDescription) -> TableInfo {
    let detail = serde_json::to_value(&d).unwrap_or_default();
    let mut parameters: Vec<(String, String)> = d.properties.into_iter().collect();
    parameters.push(("table_type".into(), "ICEBERG".into()));
    parameters.push(("classification".into(), "parquet".into()));
    parameters.push(("location".into(), d.location.clone()));
    TableInfo {
        database: d.namespace,
        name: d.name,
        columns: d.columns.into_iter().map(|c| CatalogColumn { name: c.name, type_name: c.type_name }).collect(),
        partition_keys: d.partition_keys,
        created_ms: d.created_ms,
        updated_ms: d.last_updated_ms,
        location: d.location,
        parameters,
        iceberg: true,
        detail,
    }
}

fn lake_error(e: tarn_lake::Error) -> QueryError {
    QueryError::Internal(format!("cannot read the catalog: {e}"))
}

/// A query running on the query runtime; dropping it (a stopped Athena query, a client gone)
/// cancels the query there.
struct OnQueryRuntime<T>(tokio::task::JoinHandle<Result<T, QueryError>>);

impl<T> OnQueryRuntime<T> {
    async fn finish(mut self) -> Result<T, QueryFailure> {
        let outcome = (&mut self.0).await.map_err(|e| QueryFailure::Internal(format!("the query task failed: {e}")))?;
        outcome.map_err(|e| match e {
            QueryError::User(m) => QueryFailure::Invalid(m),
            QueryError::Internal(m) => {
                tracing::error!(error = %m, "query failed");
                QueryFailure::Internal(m)
            }
        })
    }
}

impl<T> Drop for OnQueryRuntime<T> {
    fn drop(&mut self) {
        self.0.abort(); // nothing left to cancel when it has finished
    }
}
