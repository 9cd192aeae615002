//! The `tarn` binary: parses flags and configuration, then hands over to the library crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod allocator;
mod catalog_cmd;
mod client;
mod generate;
mod query_cmd;
mod query_service;
mod segment_cmd;
mod segments;
mod serve;

#[derive(Parser)]
#[command(
    name = "tarn",
    version,
    about = "A streaming data lake in one binary, speaking the AWS Kinesis, Firehose and Athena APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the Kinesis, Firehose and Athena APIs, SQL (/v1/query), the catalog (/v1/tables), /metrics and /health on one port.
    Serve(ServeArgs),
    /// Create, list, describe and delete data segments on a running server.
    #[command(subcommand)]
    Segment(segment_cmd::SegmentCommand),
    /// Run SQL over the lake of a running server (tables are `<layer>.<name>`).
    Query(query_cmd::QueryArgs),
    /// List the lake's tables with their rows, files, partitions and size.
    Tables(catalog_cmd::TablesArgs),
    /// Show a table: columns and their schema versions, partitions, snapshots, checkpoint.
    Describe(catalog_cmd::DescribeArgs),
    /// Register Parquet, JSON lines and CSV files (gzip'd or not, in Hive folders) as tables.
    Crawl(catalog_cmd::CrawlArgs),
    /// Produce realistic test records (vehicles, persons, clicks) at a given rate.
    Generate(generate::GenerateArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Config file (default: ./tarn.toml when it exists, else built-in defaults).
    #[arg(long, env = "TARN_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for all data; overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:4567 (port 0 picks a free one); overrides `listen`.
    #[arg(long)]
    listen: Option<String>,
    /// Accept unsigned requests (local experiments only); overrides `auth.enabled`.
    #[arg(long)]
    no_auth: bool,
}

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    // Errors are for operators: the message and its causes on one line, no backtrace.
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Segment(command) => segment_cmd::run(command),
        Command::Generate(args) => generate::run(args),
        Command::Query(args) => query_cmd::run(args),
        Command::Tables(args) => catalog_cmd::tables(args),
        Command::Describe(args) => catalog_cmd::describe(args),
        Command::Crawl(args) => catalog_cmd::crawl(args),
    }
}
