//! Running one SQL statement over the lake: a DataFusion session whose schemas are the catalog's
//! namespaces and whose tables load lazily (one snapshot per table per query), with a reader of
//! the lake that counts the bytes the query scanned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider, TableProvider,
};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use tarn_lake::{Lake, LiveFile, MetadataCache, TableDescription, TableView};

use crate::folder_aggregates::FolderAggregates;
use crate::plan_cache::{PlanCache, PlanCacheCounts};
use crate::scan_store::{LAKE_URL, ScanStore};
use crate::statement::{Statement, classify};
use crate::struct_reads::{NarrowStructReads, NarrowedFooters};
use crate::table::{LakeTable, ScanCounters, TailBatch};
use crate::write::Written;
use crate::yield_points::JoinsYield;

/// The catalog name SQL may spell out (`tarn.layer.table`); `layer.table` is enough.
pub const CATALOG: &str = "tarn";

/// Athena's name for the Glue catalog, accepted as another name of the lake's catalog.
pub const ATHENA_CATALOG: &str = "awsdatacatalog";

/// Where the rows acknowledged after a table's checkpoint come from (the segment's stream).
#[async_trait]
pub trait TailSource: Send + Sync {
    /// The rows of `view`'s segment after `view.checkpoint`, converted to `view.schema`; empty for
    /// a table no segment delivers to.
    async fn tail(&self, view: &TableView) -> Result<Vec<TailBatch>, String>;
}

/// How queries run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Partitions each scan is split into (DataFusion's `target_partitions`).
    pub target_partitions: usize,
    /// Whether queries include the acknowledged rows not yet delivered.
    pub include_tail: bool,
    /// Whether CREATE TABLE, INSERT INTO and DROP TABLE run (`false`: reads only).
    pub allow_writes: bool,
    /// Most partitions one CREATE TABLE AS or INSERT may write (each is a Parquet writer held
    /// open until the statement ends).
    pub max_write_partitions: usize,
    /// Optimized plans kept for statements sent again (see `plan_cache`); 0: none.
    pub kept_plans: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            include_tail: true,
            allow_writes: true,
            max_write_partitions: 1000,
            kept_plans: 256,
        }
    }
}

/// A query's result and what it cost.
#[derive(Debug, Clone)]
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub rows: u64,
    /// Time from receiving the statement to its last batch, in microseconds.
    pub elapsed_us: u64,
    /// Bytes read from the lake's files (Athena's `DataScannedInBytes`).
    pub bytes_scanned: u64,
    /// Data files the scans had to open, and those their partition filters skipped.
    pub files_scanned: u64,
    pub files_pruned: u64,
    /// Rows read from streams because they are acknowledged but not yet in a file.
    pub tail_rows: u64,
    /// What a CREATE TABLE AS or INSERT INTO wrote (zero for reads).
    pub rows_written: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    /// The statement's optimized plan was kept from an earlier run of it (see `plan_cache`).
    pub plan_reused: bool,
}

/// Why a query failed: the statement (`User`) or Tarn (`Internal`).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    User(String),
    #[error("{0}")]
    Internal(String),
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_) => QueryError::User(e.strip_backtrace()),
            _ => QueryError::Internal(e.strip_backtrace()),
        }
    }
}

/// Runs SQL over the lake.
pub struct Engine {
    lake: Arc<Lake>,
    /// What every query's session starts from (a copy is cheaper than building one): the
    /// settings, Tarn's optimizer rules, and the runtime with the memory pool, spill files and
    /// the Parquet metadata cache that all queries share. Each query reads the lake through its
    /// own byte-counting `ScanStore`, which its tables hold.
    template: SessionState,
    metadata: Arc<MetadataCache>,
    tail: Option<Arc<dyn TailSource>>,
    plans: PlanCache,
    pub(crate) config: EngineConfig,
}

/// The tables of one query, loaded on first use and kept for the rest of the query so every
/// reference sees the same snapshot.
struct QueryTables {
    lake: Arc<Lake>,
    metadata: Arc<MetadataCache>,
    tail: Option<Arc<dyn TailSource>>,
    scan: Arc<ScanStore>,
    counters: Arc<ScanCounters>,
    loaded: Mutex<HashMap<(String, String), Arc<LakeTable>>>,
    /// Each Iceberg table's metadata file as the catalog named it when the query started.
    locations: HashMap<(String, String), String>,
    /// The crawler's tables, read once when the session starts.
    crawled: HashMap<(String, String), tarn_crawl::CrawledTable>,
}

impl QueryTables {
    async fn load(&self, namespace: &str, name: &str) -> datafusion::error::Result<Option<Arc<LakeTable>>> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(t) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Some(t.clone()));
        }
        let t0 = Instant::now();
        let view = match self.locations.get(&key) {
            Some(location) => self
                .lake
                .view_at(namespace, name, location, &self.metadata)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            None => None,
        };
        let Some(view) = view else { return self.load_crawled(namespace, name, key) };
        let t1 = Instant::now();
        let tail = match &self.tail {
            Some(source) => source.tail(&view).await.map_err(|e| {
                DataFusionError::Execution(format!("cannot read the undelivered rows of {namespace}.{name}: {e}"))
            })?,
            None => Vec::new(),
        };
        let t2 = Instant::now();
        let table = Arc::new(LakeTable::new(&view, &self.scan, self.lake.store(), tail, self.counters.clone())?);
        tracing::debug!(
            view_us = (t1 - t0).as_micros() as u64,
            tail_us = (t2 - t1).as_micros() as u64,
            table_us = t2.elapsed().as_micros() as u64,
            "table load"
        );
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(key, table.clone());
        Ok(Some(table))
    }
}

impl QueryTables {
    /// A table the crawler registered: its files as they are (Parquet, JSON lines or CSV).
    fn load_crawled(
        &self,
        namespace: &str,
        name: &str,
        key: (String, String),
    ) -> datafusion::error::Result<Option<Arc<LakeTable>>> {
        let Some(crawled) = self.crawled.get(&key) else { return Ok(None) };
        let store = self.lake.store();
        let view = TableView {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            schema: Arc::new(crawled.data_schema().map_err(DataFusionError::Execution)?),
            table_schema: Default::default(),
            snapshot_id: None,
            files: crawled
                .files
                .iter()
                .map(|f| LiveFile { path: store.url(&f.key), size: f.size, rows: 0, identity_values: Vec::new() })
                .collect(),
            checkpoint: None,
            location: store.url(&crawled.location),
            spec_partitioned: false,
            identity_partitions: Vec::new(),
        };
        let mut table = LakeTable::new(&view, &self.scan, store, Vec::new(), self.counters.clone())?;
        if crawled.format != tarn_crawl::FileFormat::Parquet {
            table = table.with_text_files(crawled.format);
        }
        let table = Arc::new(table);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(key, table.clone());
        Ok(Some(table))
    }
}

/// A namespace of the catalog as a DataFusion schema.
struct LakeSchema {
    namespace: String,
    names: Vec<String>,
    tables: Arc<QueryTables>,
}

impl std::fmt::Debug for LakeSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeSchema({})", self.namespace)
    }
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if !self.table_exist(name) {
            return Ok(None);
        }
        Ok(self.tables.load(&self.namespace, name).await?.map(|t| t as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

impl Engine {
    pub fn new(lake: Arc<Lake>, tail: Option<Arc<dyn TailSource>>, config: EngineConfig) -> Engine {
        let template = session_template(&lake, &config);
        let plans = PlanCache::new(config.kept_plans);
        Engine { lake, template, metadata: Arc::default(), tail, plans, config }
    }

    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// How often statements reused a kept plan.
    pub fn plan_cache_counts(&self) -> PlanCacheCounts {
        self.plans.counts()
    }

    /// `namespace.name` as `tarn describe` shows it (sharing the queries' manifest cache).
    pub async fn describe(&self, namespace: &str, name: &str) -> Result<Option<TableDescription>, QueryError> {
        self.lake
            .describe(namespace, name, &self.metadata)
            .await
            .map_err(|e| QueryError::Internal(format!("cannot describe {namespace}.{name}: {e}")))
    }

    /// Runs one statement: a query, EXPLAIN, SHOW or DESCRIBE, or one that writes a table
    /// (CREATE TABLE [AS SELECT], INSERT INTO, DROP TABLE).
    pub async fn query(&self, sql: &str) -> Result<Answer, QueryError> {
        self.query_in(sql, None).await
    }

    /// Runs one statement with `schema` (a namespace) as the one unqualified table names are
    /// looked up in, as Athena's `QueryExecutionContext.Database`; `None`: `default`.
    pub async fn query_in(&self, sql: &str, schema: Option<&str>) -> Result<Answer, QueryError> {
        let started = Instant::now();
        let scan = Arc::new(ScanStore::new(self.lake.store().clone()));
        let counters = Arc::new(ScanCounters::default());
        let default_schema = schema.unwrap_or("default");
        let statement = classify(sql)?;
        let ctx = self.session(scan.clone(), counters.clone(), default_schema).await?;
        let session_ready = started.elapsed();
        let mut plan_reused = false;
        let (schema, batches, written) = match statement {
            Statement::Read => {
                let (mut state, plan, schema, reused) = match self.plans.reuse(&ctx, default_schema, sql).await {
                    Some(kept) => (ctx.state(), kept.plan, kept.schema, true),
                    None => {
                        let options =
                            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
                        let frame = ctx.sql_with_options(sql, options).await?;
                        let schema = Arc::new(frame.schema().as_arrow().clone());
                        let (state, unoptimized) = frame.into_parts();
                        let plan = state.optimize(&unoptimized)?;
                        self.plans.keep(default_schema, sql, &unoptimized, &plan, &schema);
                        (state, plan, schema, false)
                    }
                };
                let planned = started.elapsed();
                // (Pruning is only worth doing twice, here and in the scans, where it can change the plan.)
                if state.config().target_partitions() > 1 && planned_bytes(&plan, &state)? <= SMALL_SCAN_BYTES {
                    state.config_mut().options_mut().execution.target_partitions = 1;
                }
                let physical = state.query_planner().create_physical_plan(&plan, &state).await?;
                let physical_planned = started.elapsed();
                let batches = collect(physical, state.task_ctx()).await?;
                tracing::debug!(
                    session_us = session_ready.as_micros() as u64,
                    reused,
                    plan_us = (planned - session_ready).as_micros() as u64,
                    physical_us = (physical_planned - planned).as_micros() as u64,
                    execute_us = (started.elapsed() - physical_planned).as_micros() as u64,
                    "query phases"
                );
                plan_reused = reused;
                (schema, batches, Written::default())
            }
            statement => {
                let (answer, written) = self.write(statement, &ctx, default_schema).await?;
                (answer.schema, answer.batches, written)
            }
        };
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let stats = Stats {
            rows,
            elapsed_us: started.elapsed().as_micros().min(u64::MAX as u128) as u64,
            bytes_scanned: scan.bytes_scanned(),
            files_scanned: counters.files_planned.load(std::sync::atomic::Ordering::Relaxed),
            files_pruned: counters.files_pruned.load(std::sync::atomic::Ordering::Relaxed),
            tail_rows: counters.tail_rows.load(std::sync::atomic::Ordering::Relaxed),
            rows_written: written.rows,
            files_written: written.files,
            bytes_written: written.bytes,
            plan_reused,
        };
        Ok(Answer { schema, batches, stats })
    }

    async fn session(
        &self,
        scan: Arc<ScanStore>,
        counters: Arc<ScanCounters>,
        default_schema: &str,
    ) -> Result<SessionContext, QueryError> {
        let mut state = self.template.clone();
        state.config_mut().options_mut().catalog.default_schema = default_schema.to_owned();
        // The copy shares the template's catalog list: this query's catalog goes into its own.
        state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
        let ctx = SessionContext::new_with_state(state);
        let t0 = Instant::now();
        let crawled: HashMap<(String, String), tarn_crawl::CrawledTable> = tarn_crawl::load_all(self.lake.dir())
            .map_err(|e| QueryError::Internal(format!("cannot read the crawled tables: {e}")))?
            .into_iter()
            .map(|t| ((t.namespace.clone(), t.name.clone()), t))
            .collect();
        let t1 = Instant::now();
        let listing =
            self.lake.listing().await.map_err(|e| QueryError::Internal(format!("cannot read the catalog: {e}")))?;
        tracing::debug!(
            crawled_us = (t1 - t0).as_micros() as u64,
            listing_us = t1.elapsed().as_micros() as u64,
            "session catalog"
        );
        let mut names: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut locations = HashMap::new();
        for (namespace, tables) in listing.namespaces {
            let list = names.entry(namespace.clone()).or_default();
            for (name, location) in tables {
                list.push(name.clone());
                locations.insert((namespace.clone(), name), location);
            }
        }
        let tables = Arc::new(QueryTables {
            lake: self.lake.clone(),
            metadata: self.metadata.clone(),
            tail: if self.config.include_tail { self.tail.clone() } else { None },
            scan,
            counters,
            loaded: Mutex::default(),
            locations,
            crawled,
        });
        let catalog = MemoryCatalogProvider::new();
        // Crawled tables beside the Iceberg ones (an Iceberg table of the same name wins).
        for (namespace, name) in tables.crawled.keys() {
            let list = names.entry(namespace.clone()).or_default();
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        for (namespace, names) in names {
            let schema = LakeSchema { namespace: namespace.clone(), names, tables: tables.clone() };
            catalog.register_schema(&namespace, Arc::new(schema))?;
        }
        if catalog.schema(default_schema).is_none() {
            let empty = LakeSchema { namespace: default_schema.into(), names: Vec::new(), tables: tables.clone() };
            catalog.register_schema(default_schema, Arc::new(empty))?;
        }
        let catalog = Arc::new(catalog);
        ctx.register_catalog(CATALOG, catalog.clone());
        // Athena code names the catalog `AwsDataCatalog` (`"awsdatacatalog"."layer"."table"`).
        ctx.register_catalog(ATHENA_CATALOG, catalog);
        Ok(ctx)
    }
}

/// Queries whose scans hold at most this many bytes (the files left after partition pruning,
/// plus the tail) run on one partition: splitting so little across the cores costs more in
/// repartitioning and merging than it saves (a one-hour query over that hour's files, about 300 KB,
/// ran in about 1.6 ms of server time on one partition, 1.9 ms on two).
const SMALL_SCAN_BYTES: u64 = 1 << 20;

/// What the lake-table scans of `plan` (optimized, so filters sit on the scans) will read, at most.
fn planned_bytes(plan: &LogicalPlan, state: &SessionState) -> Result<u64, DataFusionError> {
    let mut bytes = 0;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(table) = source_as_provider(&scan.source)?.as_any().downcast_ref::<LakeTable>()
        {
            // As the physical planner hands them to the scan: columns without their table.
            let filters = unnormalize_cols(scan.filters.iter().cloned());
            bytes += table.planned_bytes(state, &filters)?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(bytes)
}

/// The session every query copies (see [`Engine`]'s `template`).
fn session_template(lake: &Lake, config: &EngineConfig) -> SessionState {
    let mut options = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, "default")
        .with_create_default_catalog_and_schema(false)
        .with_target_partitions(config.target_partitions)
        .with_extension(Arc::new(NarrowedFooters::default()));
    // Filters are applied while decoding (late materialization), not after whole batches.
    options.options_mut().execution.parquet.pushdown_filters = true;
    options.options_mut().execution.parquet.reorder_filters = true;
    let runtime = RuntimeEnvBuilder::new().build_arc().expect("the default runtime environment builds");
    // DataFusion looks the scans' store up by URL; the Parquet reads themselves go through the
    // reader each table makes from its query's `ScanStore`, which counts the bytes.
    let url = ObjectStoreUrl::parse(LAKE_URL).expect("LAKE_URL is a URL");
    runtime.register_object_store(url.as_ref(), Arc::new(ScanStore::new(lake.store().clone())));
    SessionStateBuilder::new()
        .with_config(options)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rule(Arc::new(NarrowStructReads))
        .with_physical_optimizer_rule(Arc::new(JoinsYield))
        .with_physical_optimizer_rule(Arc::new(FolderAggregates))
        .build()
}

impl Stats {
    /// The elapsed time in whole milliseconds (Athena's `EngineExecutionTimeInMillis`).
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed_us / 1000
    }

    /// The elapsed time in milliseconds with microsecond precision, as `x-tarn-elapsed-ms` shows it.
    pub fn elapsed_ms_text(&self) -> String {
        format!("{}.{:03}", self.elapsed_us / 1000, self.elapsed_us % 1000)
    }
}
