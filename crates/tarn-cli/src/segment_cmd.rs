//! `tarn segment create|list|describe|delete`: data segments on a running server, through its
//! Firehose API (a segment is a DirectPut delivery stream named `<layer>.<name>` whose table is
//! `<layer>.<name>` in the catalog).

use serde_json::json;

use crate::client::Endpoint;

#[derive(clap::Subcommand)]
pub enum SegmentCommand {
    /// Create a segment: its stream, its delivery and (at the first delivery) its table.
    Create(CreateArgs),
    /// List the segments (delivery streams), one name per line.
    List(EndpointOnly),
    /// Show a segment's settings as JSON.
    Describe(NameArgs),
    /// Delete a segment's stream and delivery (the table and its data stay).
    Delete(NameArgs),
}

#[derive(clap::Args)]
pub struct EndpointOnly {
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct NameArgs {
    /// `<layer>.<name>`, or any delivery stream's name.
    name: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// `<layer>.<name>`: the table's namespace and name, also the stream's name.
    name: String,
    /// Shards of the segment's stream.
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// Flush at this much buffered data.
    #[arg(long, default_value_t = 64)]
    size_mib: u32,
    /// ... or this long after the first buffered record.
    #[arg(long, default_value_t = 60)]
    interval_seconds: u32,
    /// A Firehose prefix expression for the data folders (default: Hive-style hour folders).
    #[arg(long)]
    prefix: Option<String>,
    /// A Firehose prefix expression for the error output (required with --prefix expressions).
    #[arg(long)]
    error_prefix: Option<String>,
    /// Parquet compression: SNAPPY, GZIP or UNCOMPRESSED.
    #[arg(long, default_value = "SNAPPY")]
    compression: String,
    /// Keep the raw records as gzip'd JSON lines (30 days).
    #[arg(long)]
    backup: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub fn run(command: SegmentCommand) -> anyhow::Result<()> {
    match command {
        SegmentCommand::Create(a) => {
            let (layer, table) = a
                .name
                .split_once('.')
                .ok_or_else(|| anyhow::anyhow!("the segment's name is <layer>.<name>, e.g. raw.vehicles"))?;
            let mut destination = json!({
                "RoleARN": "arn:aws:iam::000000000000:role/tarn",
                "BucketARN": format!("arn:aws:s3:::{}", layer.replace('_', "-")),
                "BufferingHints": {"SizeInMBs": a.size_mib, "IntervalInSeconds": a.interval_seconds},
                "S3BackupMode": if a.backup { "Enabled" } else { "Disabled" },
                "DataFormatConversionConfiguration": {
                    "SchemaConfiguration": {"DatabaseName": layer, "TableName": table},
                    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": a.compression}}},
                },
            });
            if let Some(p) = a.prefix {
                destination["Prefix"] = json!(p);
            }
            if let Some(p) = a.error_prefix {
                destination["ErrorOutputPrefix"] = json!(p);
            }
            let out = a.endpoint.firehose(
                "CreateDeliveryStream",
                json!({"DeliveryStreamName": a.name, "DeliveryStreamType": "DirectPut",
                       "ExtendedS3DestinationConfiguration": destination}),
            )?;
            if a.shards > 1 {
                a.endpoint.kinesis(
                    "UpdateShardCount",
                    json!({"StreamName": a.name, "TargetShardCount": a.shards, "ScalingType": "UNIFORM_SCALING"}),
                )?;
            }
            println!("{}", out["DeliveryStreamARN"].as_str().unwrap_or_default());
        }
        SegmentCommand::List(a) => {
            let mut after: Option<String> = None;
            loop {
                let mut body = json!({"Limit": 1000});
                if let Some(a) = &after {
                    body["ExclusiveStartDeliveryStreamName"] = json!(a);
                }
                let out = a.endpoint.firehose("ListDeliveryStreams", body)?;
                let names: Vec<String> = out["DeliveryStreamNames"]
                    .as_array()
                    .map(|n| n.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                names.iter().for_each(|n| println!("{n}"));
                if out["HasMoreDeliveryStreams"] != json!(true) || names.is_empty() {
                    break;
                }
                after = names.last().cloned();
            }
        }
        SegmentCommand::Describe(a) => {
            let out = a.endpoint.firehose("DescribeDeliveryStream", json!({"DeliveryStreamName": a.name}))?;
            println!("{}", serde_json::to_string_pretty(&out["DeliveryStreamDescription"])?);
        }
        SegmentCommand::Delete(a) => {
            a.endpoint.firehose("DeleteDeliveryStream", json!({"DeliveryStreamName": a.name}))?;
        }
    }
    Ok(())
}
