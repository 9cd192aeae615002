//! `tarn query "SELECT ..."`: SQL over the lake of a running server (`POST /v1/query`), printed as
//! a table, CSV or JSON; rows, time and bytes scanned go to standard error.

use anyhow::Context;

use crate::client::{AwsError, Endpoint};

#[derive(clap::Args)]
pub struct QueryArgs {
    /// The statement: `SELECT … FROM <layer>.<table>`, EXPLAIN, SHOW TABLES, DESCRIBE.
    sql: String,
    /// table, csv or json.
    #[arg(long, default_value = "table")]
    format: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&serde_json::json!({"sql": args.sql, "format": args.format}))?;
    let answer = args.endpoint.post("/v1/query", "application/json", None, tarn_api::query::SIGNING_NAME, &body)?;
    if answer.status != 200 {
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .with_context(|| format!("HTTP {}: {}", answer.status, String::from_utf8_lossy(&answer.body)))?;
        return Err(AwsError::from_json(&json).into());
    }
    use std::io::Write;
    std::io::stdout().write_all(&answer.body)?;
    if args.format == "json" {
        println!();
    }
    let stat = |name: &str| answer.header(name).unwrap_or("?").to_owned();
    let tail = stat("x-tarn-tail-rows");
    let written = stat("x-tarn-files-written");
    eprintln!(
        "{} rows in {} ms; {} bytes scanned in {} files ({} skipped by partition){}{}",
        stat("x-tarn-rows"),
        stat("x-tarn-elapsed-ms"),
        stat("x-tarn-bytes-scanned"),
        stat("x-tarn-files-scanned"),
        stat("x-tarn-files-pruned"),
        if tail == "0" { String::new() } else { format!("; {tail} rows not yet delivered") },
        if written == "0" || written == "?" {
            String::new()
        } else {
            format!(
                "; wrote {} rows in {written} files ({} bytes)",
                stat("x-tarn-rows-written"),
                stat("x-tarn-bytes-written")
            )
        }
    );
    Ok(())
}
