//! `tarn tables` and `tarn describe <layer>.<table>`: the lake's catalog as Glue shows it, read
//! from a running server (`GET /v1/tables`, `GET /v1/tables/<layer>/<table>`); `tarn crawl`
//! registers files other tools wrote (`POST /v1/crawl`).

use anyhow::Context;
use serde_json::Value;

use crate::client::Endpoint;

#[derive(clap::Args)]
pub struct TablesArgs {
    /// text or json.
    #[arg(long, default_value = "text")]
    format: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    /// The table: `<layer>.<table>`.
    table: String,
    /// text or json.
    #[arg(long, default_value = "text")]
    format: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct CrawlArgs {
    /// The folder to crawl: `s3://bucket/prefix/…` or a path of the lake's storage (relative to
    /// its root, or absolute for a local lake).
    location: String,
    /// The layer (database) the tables go into.
    #[arg(long)]
    layer: String,
    /// One table for the whole location, with this name (default: a table per sub-folder that is
    /// not a `key=value` partition, or the location's last folder).
    #[arg(long)]
    table: Option<String>,
    /// text or json.
    #[arg(long, default_value = "text")]
    format: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub fn crawl(args: CrawlArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({"location": args.location, "layer": args.layer, "table": args.table});
    let answer = args.endpoint.post(
        "/v1/crawl",
        "application/json",
        None,
        tarn_api::query::SIGNING_NAME,
        body.to_string().as_bytes(),
    )?;
    let json: Value = serde_json::from_slice(&answer.body)
        .with_context(|| format!("HTTP {}: {}", answer.status, String::from_utf8_lossy(&answer.body)))?;
    if answer.status != 200 {
        return Err(crate::client::AwsError::from_json(&json).into());
    }
    if args.format == "json" {
        println!("{json}");
        return Ok(());
    }
    let mut rows = vec![
        ["TABLE", "FORMAT", "FILES", "NEW FILES", "NEW PARTITIONS", "NEW COLUMNS", "WIDENED"]
            .map(String::from)
            .to_vec(),
    ];
    let list = |v: &Value| v.as_array().map_or(String::new(), |a| a.iter().map(text).collect::<Vec<_>>().join(","));
    for t in json["tables"].as_array().cloned().unwrap_or_default() {
        let name = if t["created"].as_bool() == Some(true) {
            format!("{} (new)", text(&t["table"]))
        } else {
            text(&t["table"])
        };
        rows.push(vec![
            name,
            text(&t["format"]),
            text(&t["files"]),
            text(&t["files_added"]),
            list(&t["partitions_added"]),
            list(&t["columns_added"]),
            list(&t["columns_widened"]),
        ]);
        for u in t["unreadable"].as_array().cloned().unwrap_or_default() {
            eprintln!("unreadable, left out: {}", text(&u));
        }
    }
    print!("{}", aligned(&rows));
    if json["skipped_count"].as_u64().unwrap_or(0) > 0 {
        eprintln!("{} files passed over (not Parquet, JSON or CSV, or hidden)", json["skipped_count"]);
    }
    Ok(())
}

pub fn tables(args: TablesArgs) -> anyhow::Result<()> {
    let json = args.endpoint.get_json("/v1/tables", tarn_api::query::SIGNING_NAME)?;
    if args.format == "json" {
        println!("{json}");
        return Ok(());
    }
    let tables = json["tables"].as_array().cloned().unwrap_or_default();
    let mut rows = vec![
        ["TABLE", "FORMAT", "ROWS", "FILES", "PARTITIONS", "SIZE", "SNAPSHOTS", "UPDATED (UTC)"]
            .map(String::from)
            .to_vec(),
    ];
    for t in &tables {
        let format = match text(&t["format"]).as_str() {
            "iceberg" => "iceberg".to_owned(),
            files => format!("{files} (crawled)"),
        };
        rows.push(vec![
            format!("{}.{}", text(&t["layer"]), text(&t["name"])),
            format,
            text(&t["rows"]),
            text(&t["files"]),
            text(&t["partitions"]),
            size(t["bytes"].as_u64().unwrap_or(0)),
            text(&t["snapshots"]),
            time(t["last_updated_ms"].as_i64().unwrap_or(0)),
        ]);
    }
    print!("{}", aligned(&rows));
    if tables.is_empty() {
        println!("(no tables yet: a segment's table appears with its first delivery)");
    }
    Ok(())
}

pub fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let (layer, table) =
        args.table.split_once('.').context("name the table as <layer>.<table>, for example raw.vehicles")?;
    let d = args.endpoint.get_json(&format!("/v1/tables/{layer}/{table}"), tarn_api::query::SIGNING_NAME)?;
    if args.format == "json" {
        println!("{d}");
        return Ok(());
    }
    if d["kind"] == "crawled" {
        return describe_crawled(layer, table, &d);
    }
    println!("{layer}.{table}  (Iceberg v{}, {})", text(&d["format_version"]), text(&d["location"]));
    println!(
        "{} rows in {} files, {}; {} snapshots; {} schema versions (current: id {})",
        text(&d["rows"]),
        text(&d["files"]),
        size(d["bytes"].as_u64().unwrap_or(0)),
        d["snapshots"].as_array().map_or(0, Vec::len),
        text(&d["schema_versions"]),
        text(&d["current_schema_id"]),
    );

    print_columns_and_partitions(&d, |c| format!("since schema {}", text(&c["since_schema"])));

    println!("\nSnapshots (oldest first)");
    let mut rows = Vec::new();
    for s in d["snapshots"].as_array().into_iter().flatten() {
        rows.push(vec![
            format!("  {}", text(&s["id"])),
            time(s["timestamp_ms"].as_i64().unwrap_or(0)),
            text(&s["operation"]),
            format!("+{} files", text(&s["added_files"])),
            format!("+{} rows", text(&s["added_rows"])),
            format!("total {} rows", text(&s["total_rows"])),
        ]);
    }
    print!("{}", aligned(&rows));

    if let Some(checkpoint) = d["checkpoint"].as_object() {
        println!("\nDelivered up to (per shard)");
        let rows: Vec<Vec<String>> = checkpoint.iter().map(|(k, v)| vec![format!("  {k}"), text(v)]).collect();
        print!("{}", aligned(&rows));
    }
    Ok(())
}

/// A crawled table: its files as the crawls found them; no snapshots (they are not Iceberg).
fn describe_crawled(layer: &str, table: &str, d: &Value) -> anyhow::Result<()> {
    println!("{layer}.{table}  (crawled {} files, {})", text(&d["format"]), text(&d["location"]));
    println!(
        "{} rows in {} files, {}; {} crawls, last {}",
        text(&d["rows"]),
        text(&d["files"]),
        size(d["bytes"].as_u64().unwrap_or(0)),
        text(&d["crawls"]),
        time(d["last_updated_ms"].as_i64().unwrap_or(0)),
    );
    print_columns_and_partitions(d, |c| format!("since crawl {}", text(&c["since_crawl"])));
    Ok(())
}

/// The columns (name, type, and `since` what added it) and the partitions with their files,
/// rows and size, as both kinds of table describe them.
fn print_columns_and_partitions(d: &Value, since: impl Fn(&Value) -> String) {
    println!("\nColumns");
    let mut rows = Vec::new();
    for c in d["columns"].as_array().into_iter().flatten() {
        rows.push(vec![format!("  {}", text(&c["name"])), text(&c["type_name"]), since(c)]);
    }
    print!("{}", aligned(&rows));

    let keys: Vec<String> = d["partition_keys"].as_array().into_iter().flatten().map(text).collect();
    println!("\nPartitions ({})", if keys.is_empty() { "none".to_owned() } else { keys.join(", ") });
    let mut rows = Vec::new();
    for p in d["partitions"].as_array().into_iter().flatten() {
        let folder = text(&p["folder"]);
        rows.push(vec![
            format!("  {}", if folder.is_empty() { "(table root)".to_owned() } else { folder }),
            format!("{} files", text(&p["files"])),
            format!("{} rows", text(&p["rows"])),
            size(p["bytes"].as_u64().unwrap_or(0)),
        ]);
    }
    print!("{}", aligned(&rows));
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

fn time(ms: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = tarn_time::civil_from_millis(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Rows as columns padded to their widest cell.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> =
            row.iter().enumerate().map(|(c, s)| format!("{s:<width$}", width = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{aligned, size};

    #[test]
    fn sizes_and_columns_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        let rows = vec![vec!["a".to_owned(), "long".to_owned()], vec!["wider".to_owned(), "x".to_owned()]];
        assert_eq!(aligned(&rows), "a      long\nwider  x\n");
    }
}
