//! `tarn serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tarn_api::{ApiConfig, AppState};
use tarn_config::Config;
use tarn_lake::Store;
use tarn_streams::{Streams, StreamsConfig, system_clock};
use tracing_subscriber::EnvFilter;

use crate::ServeArgs;

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let file = args.config.clone().or_else(|| {
        let default = std::path::PathBuf::from("tarn.toml");
        default.exists().then_some(default)
    });
    let mut config = Config::load(file.as_deref(), std::env::vars())?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
    }
    if args.no_auth {
        config.auth.enabled = false;
    }
    Ok(config)
}

fn streams_config(c: &Config) -> StreamsConfig {
    let k = &c.kinesis;
    StreamsConfig {
        account_id: k.account_id.clone(),
        region: k.region.clone(),
        shard_limit: k.shard_limit,
        max_record_bytes: k.max_record_bytes,
        max_put_records_bytes: k.max_put_records_bytes,
        max_put_records_entries: k.max_put_records_entries,
        max_get_records_bytes: k.max_get_records_bytes,
        max_get_records_entries: k.max_get_records_entries,
        iterator_ttl_ms: k.iterator_ttl_seconds as i64 * 1000,
        max_tags_per_stream: k.max_tags_per_stream,
        max_consumers_per_stream: k.max_consumers_per_stream,
        transition_ms: k.transition_ms as i64,
        shard_throughput_limits: k.shard_throughput_limits,
        log: tarn_log::LogConfig {
            segment_max_bytes: c.storage.segment_max_bytes,
            segment_max_age_ms: c.storage.segment_max_age_seconds as i64 * 1000,
            sync_interval: std::time::Duration::from_micros(c.storage.sync_interval_micros),
            cache_window_bytes: c.storage.cache_window_mib.saturating_mul(1024 * 1024),
            direct_io: c.storage.direct_io,
        },
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).context("the `log` setting is not a valid filter")?)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.clone();
    let sc = streams_config(&config);
    let streams = tokio::task::spawn_blocking(move || Streams::open(&data_dir, sc, system_clock()))
        .await?
        .with_context(|| format!("cannot open the streams under {}", config.data_dir.display()))?;
    let streams = Arc::new(streams);
    let credentials = config.credentials();
    match &credentials {
        None => tracing::warn!("authentication is OFF: any caller may use every API (auth.enabled = false)"),
        Some(keys) if config.auth.credentials.is_empty() => tracing::warn!(
            access_key = tarn_config::DEV_ACCESS_KEY,
            "authentication is on (SigV4) with the built-in development key only; configure auth.credentials"
        ),
        Some(keys) => tracing::info!(keys = keys.len(), "authentication is on (SigV4)"),
    }
    let api = ApiConfig {
        credentials: credentials.map(|k| k.into_iter().collect()),
        max_request_bytes: config.kinesis.max_request_bytes,
        subscription_lifetime: Duration::from_secs(config.kinesis.subscription_seconds),
        athena: tarn_api::athena::AthenaLimits {
            max_running: config.query.max_running_queries.max(1),
            max_active: config.query.max_active_queries.max(1),
            max_results_bytes: (config.query.max_results_mib as usize).saturating_mul(1 << 20),
            max_kept: config.query.kept_executions.max(1),
        },
    };
    let metrics = Arc::new(tarn_api::metrics::Metrics::default());
    let segments = Arc::new(tarn_segments::Segments::open(&config.data_dir)?);
    for def in crate::segments::declared(&config, &streams)? {
        segments.declare(def)?;
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        data_dir = %config.data_dir.display(),
        allocator_purge_delay_ms = crate::allocator::purge_delay_ms(),
        log_direct_io = config.storage.direct_io,
        "tarn is serving the Kinesis API"
    );
    // One machine-readable line on stdout, for scripts and tests that ask for port 0.
    println!("tarn listening on {addr}");

    let store = crate::segments::lake_store(&config, |name| std::env::var(name).ok())?;
    if let Store::S3 { .. } = &store {
        // Delivery retries while the store is unreachable; say so at once rather than at the first flush.
        match store.head("warehouse/.reachable").await {
            Ok(_) => tracing::info!(lake = %store.url(""), "lake files go to S3"),
            Err(e) => tracing::error!(error = %e, "the lake's S3 location does not answer yet; delivery will retry"),
        }
    }
    let runner = Arc::new(crate::segments::DeliveryRunner::new(
        streams.clone(),
        metrics.clone(),
        config.data_dir.join("lake"),
        store.clone(),
    ));
    segments.run_with(runner.clone());

    let lake = tarn_lake::Lake::open_with(&config.data_dir.join("lake"), Some(store.clone()))
        .await
        .context("cannot open the lake's catalog for queries")?;
    let tails = crate::query_service::SegmentTails {
        reader: Arc::new(tarn_delivery::TailReader::new(
            streams.clone(),
            (config.query.max_tail_mib * 1024 * 1024) as usize,
        )),
        segments: segments.clone(),
        runner: runner.clone(),
    };
    let q = &config.query;
    let engine_config = tarn_query::EngineConfig {
        target_partitions: if q.target_partitions == 0 {
            tarn_query::EngineConfig::default().target_partitions
        } else {
            q.target_partitions
        },
        include_tail: q.include_tail,
        allow_writes: q.allow_writes,
        max_write_partitions: q.max_write_partitions,
        kept_plans: q.kept_plans,
    };
    let engine = tarn_query::Engine::new(Arc::new(lake), Some(Arc::new(tails)), engine_config);
    let query_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("query")
        .enable_all()
        .build()
        .context("cannot start the query runtime")?;
    let service = crate::query_service::EngineService {
        engine: Arc::new(engine),
        runtime: query_runtime.handle().clone(),
        metrics: metrics.clone(),
    };
    let query: Arc<dyn tarn_api::QueryService> = Arc::new(service);
    for crawler in config.crawlers.clone() {
        let query = query.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(crawler.interval_minutes * 60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let run = query.crawl(crawler.location.clone(), crawler.layer.clone(), crawler.table.clone());
                match run.await {
                    Ok(report) => tracing::info!(location = %crawler.location, report = %report, "scheduled crawl"),
                    Err(e) => tracing::warn!(location = %crawler.location, error = ?e, "scheduled crawl failed"),
                }
            }
        });
    }
    let state = AppState::with_query(streams.clone(), api, metrics.clone(), segments.clone(), Some(query));

    let retention_every = Duration::from_secs(config.kinesis.retention_check_seconds);
    let retention_streams = streams.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let s = retention_streams.clone();
            match tokio::task::spawn_blocking(move || s.enforce_retention()).await {
                Ok(Ok((0, 0))) => {}
                Ok(Ok((segments, shards))) => tracing::info!(segments, shards, "dropped expired data"),
                Ok(Err(e)) => tracing::error!(error = %e, "retention pass failed"),
                Err(e) => tracing::error!(error = %e, "retention task panicked"),
            }
        }
    });

    tarn_api::serve(listener, state, shutdown_signal()).await?;
    query_runtime.shutdown_background();
    tokio::task::spawn_blocking(move || runner.stop_all()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    /// The defaults live twice (the shipped config, and the library's for embedders and tests);
    /// mapped through `streams_config` they must agree, so neither drifts unnoticed.
    #[test]
    fn config_defaults_match_the_streams_library_defaults() {
        let from_config = super::streams_config(&tarn_config::Config::default());
        assert_eq!(format!("{from_config:?}"), format!("{:?}", tarn_streams::StreamsConfig::default()));
    }
}
