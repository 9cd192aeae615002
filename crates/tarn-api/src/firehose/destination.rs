//! The S3 destination: `ExtendedS3DestinationConfiguration` (create), `...Update` (change) and
//! `...Description` (describe), mapped onto a segment's delivery settings.

use tarn_segments::SegmentDef;

use crate::error::ApiError;
use crate::protocol::input::{Input, Pattern, Violations};
use crate::protocol::{Doc, Obj};

/// The one destination a delivery stream has.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

pub const BUCKET_ARN: Pattern = Pattern {
    text: "arn:.*:s3:::[\\w\\.\\-]{1,255}",
    matches: |s| {
        s.starts_with("arn:")
            && s.split_once(":s3:::").is_some_and(|(_, b)| {
                !b.is_empty() && b.len() <= 255 && b.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
            })
    },
};

pub const ROLE_ARN: Pattern = Pattern {
    text: "arn:.*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+",
    matches: |s| s.starts_with("arn:") && s.contains(":iam::") && s.contains(":role/"),
};

/// The bucket of an ARN, as a layer name: lower case, anything but `a-z0-9_` as `_`.
pub fn layer_of_bucket(bucket_arn: &str) -> String {
    let bucket = bucket_arn.rsplit(":::").next().unwrap_or(bucket_arn);
    identifier(bucket)
}

/// A name as an Iceberg identifier Tarn uses: lower case, anything but `a-z0-9_` as `_`.
pub fn identifier(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

const COMPRESSION: &[&str] = &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];

/// What a destination configuration (or update) says; `None`: not given.
#[derive(Default)]
pub struct Destination {
    pub role_arn: Option<String>,
    pub bucket_arn: Option<String>,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub size_mib: Option<u64>,
    pub interval_seconds: Option<u64>,
    pub compression_format: Option<String>,
    /// From DataFormatConversionConfiguration.
    pub conversion_enabled: Option<bool>,
    pub database: Option<String>,
    pub table: Option<String>,
    pub parquet_compression: Option<String>,
    pub case_insensitive: Option<bool>,
    pub dots_to_underscores: Option<bool>,
    pub column_to_key: Option<Vec<(String, String)>>,
    /// S3BackupMode: Enabled keeps the raw records (for [`BACKUP_DAYS`]).
    pub backup: Option<bool>,
    /// DynamicPartitioningConfiguration.Enabled.
    pub dynamic_partitioning: Option<bool>,
    /// The MetadataExtraction processor's query.
    pub metadata_query: Option<String>,
}

/// How long a raw backup switched on through the API is kept (S3's lifecycle is not modelled).
pub const BACKUP_DAYS: u32 = 30;

/// Reads a destination structure; `create` makes RoleARN and BucketARN required.
pub fn read(d: &Input<'_, '_>, v: &mut Violations, create: bool) -> Result<Destination, ApiError> {
    let mut out = Destination {
        role_arn: d.string(v, "RoleARN", create, 1, 512, Some(ROLE_ARN))?.map(str::to_owned),
        bucket_arn: d.string(v, "BucketARN", create, 1, 2048, Some(BUCKET_ARN))?.map(str::to_owned),
        prefix: d.string(v, "Prefix", false, 0, 1024, None)?.map(str::to_owned),
        error_prefix: d.string(v, "ErrorOutputPrefix", false, 0, 1024, None)?.map(str::to_owned),
        compression_format: d.enumeration(v, "CompressionFormat", false, COMPRESSION)?.map(str::to_owned),
        backup: d.enumeration(v, "S3BackupMode", false, &["Disabled", "Enabled"])?.map(|m| m == "Enabled"),
        ..Destination::default()
    };
    if let Some(hints) = d.structure("BufferingHints")? {
        out.size_mib = hints.int(v, "SizeInMBs", false, 1, 128)?.map(|n| n as u64);
        out.interval_seconds = hints.int(v, "IntervalInSeconds", false, 0, 900)?.map(|n| n as u64);
        if out.size_mib.is_some() != out.interval_seconds.is_some() {
            return Err(ApiError::invalid_argument(
                "BufferingHints must specify both SizeInMBs and IntervalInSeconds, or neither.",
            ));
        }
    }
    if let Some(dp) = d.structure("DynamicPartitioningConfiguration")? {
        out.dynamic_partitioning = Some(dp.bool("Enabled")?.unwrap_or(false));
        if let Some(retry) = dp.structure("RetryOptions")? {
            retry.int(v, "DurationInSeconds", false, 0, 7200)?;
        }
    }
    if let Some(processing) = d.structure("ProcessingConfiguration")?
        && processing.bool("Enabled")?.unwrap_or(false)
    {
        const TYPES: &[&str] = &[
            "RecordDeAggregation",
            "Decompression",
            "CloudWatchLogProcessing",
            "Lambda",
            "MetadataExtraction",
            "AppendDelimiterToRecord",
        ];
        for p in processing.list_of_structures("Processors")?.unwrap_or_default() {
            let kind = p.enumeration(v, "Type", true, TYPES)?;
            let mut query = None;
            for param in p.list_of_structures("Parameters")?.unwrap_or_default() {
                let name = param.string(v, "ParameterName", true, 1, 256, None)?;
                let value = param.string(v, "ParameterValue", true, 1, 5120, None)?;
                if name == Some("MetadataExtractionQuery") {
                    query = value.map(str::to_owned);
                }
            }
            match kind {
                Some("MetadataExtraction") => out.metadata_query = query,
                // Records become rows, so a delimiter between them changes nothing here.
                Some("AppendDelimiterToRecord") | None => {}
                Some(other) => {
                    return Err(ApiError::invalid_argument(format!(
                        "Processor type {other} is not supported by Tarn; MetadataExtraction and AppendDelimiterToRecord are."
                    )));
                }
            }
        }
    }
    if let Some(conv) = d.structure("DataFormatConversionConfiguration")? {
        out.conversion_enabled = Some(conv.bool("Enabled")?.unwrap_or(true));
        if let Some(schema) = conv.structure("SchemaConfiguration")? {
            out.database = schema.string(v, "DatabaseName", false, 1, 1024, None)?.map(str::to_owned);
            out.table = schema.string(v, "TableName", false, 1, 1024, None)?.map(str::to_owned);
        }
        if let Some(openx) = conv
            .structure("InputFormatConfiguration")?
            .and_then(|i| i.structure("Deserializer").transpose())
            .transpose()?
            .and_then(|d| d.structure("OpenXJsonSerDe").transpose())
            .transpose()?
        {
            out.case_insensitive = openx.bool("CaseInsensitive")?;
            out.dots_to_underscores = openx.bool("ConvertDotsInJsonKeysToUnderscores")?;
            out.column_to_key = openx
                .map_of_strings("ColumnToJsonKeyMappings")?
                .map(|m| m.into_iter().map(|(c, k)| (c.to_owned(), k.to_owned())).collect());
        }
        if let Some(parquet) = conv
            .structure("OutputFormatConfiguration")?
            .and_then(|o| o.structure("Serializer").transpose())
            .transpose()?
            .and_then(|s| s.structure("ParquetSerDe").transpose())
            .transpose()?
        {
            out.parquet_compression =
                parquet.enumeration(v, "Compression", false, &["UNCOMPRESSED", "GZIP", "SNAPPY"])?.map(str::to_owned);
        }
    }
    Ok(out)
}

impl Destination {
    /// Applies what was given to `def` (create: onto defaults; update: merged, as Firehose does).
    pub fn apply(self, def: &mut SegmentDef, create: bool) -> Result<(), ApiError> {
        if self.conversion_enabled == Some(false) {
            return Err(ApiError::invalid_argument(
                "Tarn always converts records to Parquet in lake tables; DataFormatConversionConfiguration cannot be disabled.",
            ));
        }
        if self.conversion_enabled == Some(true)
            && self.compression_format.as_deref().is_some_and(|c| c != "UNCOMPRESSED")
        {
            return Err(ApiError::invalid_argument(
                "CompressionFormat must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled.",
            ));
        }
        match self.backup {
            Some(true) => def.backup_days = BACKUP_DAYS,
            Some(false) if def.backup_days > 0 => {
                return Err(ApiError::invalid_argument("S3BackupMode cannot be disabled once it was enabled."));
            }
            _ => {}
        }
        match (self.dynamic_partitioning, &self.metadata_query) {
            (Some(true), _) if !create => {
                return Err(ApiError::invalid_argument(
                    "Dynamic partitioning can only be enabled when the delivery stream is created.",
                ));
            }
            (Some(true), Some(q)) => def.partition_query = Some(q.clone()),
            (Some(true), None) => {
                return Err(ApiError::invalid_argument(
                    "Dynamic partitioning needs a MetadataExtraction processor with a MetadataExtractionQuery.",
                ));
            }
            (Some(false), _) if def.partition_query.is_some() => {
                return Err(ApiError::invalid_argument("Dynamic partitioning cannot be disabled once enabled."));
            }
            (_, Some(q)) if def.partition_query.is_some() => def.partition_query = Some(q.clone()),
            _ => {}
        }
        if let Some(r) = self.role_arn {
            def.role_arn = r;
        }
        if let Some(b) = self.bucket_arn {
            def.bucket_arn = b;
        }
        if self.prefix.is_some() || self.error_prefix.is_some() {
            def.prefix = self.prefix.or(def.prefix.take());
            def.error_prefix = self.error_prefix.or(def.error_prefix.take());
        }
        def.prefixes().map_err(|e| ApiError::invalid_argument(e.0))?;
        if let (Some(size), Some(interval)) = (self.size_mib, self.interval_seconds) {
            def.size_mib = size;
            def.interval_seconds = interval;
        }
        if let Some(c) = self.parquet_compression {
            def.compression = match c.as_str() {
                "GZIP" => "gzip",
                "UNCOMPRESSED" => "none",
                _ => "snappy",
            }
            .into();
        }
        if let Some(ci) = self.case_insensitive {
            def.json.case_insensitive = ci;
        }
        if let Some(d) = self.dots_to_underscores {
            def.json.dots_to_underscores = d;
        }
        if let Some(m) = self.column_to_key {
            def.json.column_to_key = m.into_iter().collect();
        }
        Ok(())
    }
}

/// The destination as DescribeDeliveryStream shows it.
pub fn description(def: &SegmentDef) -> Doc<'static> {
    let parquet_compression = match def.compression.as_str() {
        "gzip" => "GZIP",
        "none" => "UNCOMPRESSED",
        _ => "SNAPPY",
    };
    let mappings: Vec<(std::borrow::Cow<'static, str>, Doc<'static>)> =
        def.json.column_to_key.iter().map(|(c, k)| (c.clone().into(), k.clone().into())).collect();
    let openx = Obj::new()
        .put("CaseInsensitive", def.json.case_insensitive)
        .put("ConvertDotsInJsonKeysToUnderscores", def.json.dots_to_underscores)
        .opt("ColumnToJsonKeyMappings", (!mappings.is_empty()).then_some(Doc::Map(mappings)));
    let conversion = Obj::new()
        .put("Enabled", true)
        .put(
            "SchemaConfiguration",
            Obj::new().put("DatabaseName", def.layer.clone()).put("TableName", def.table.clone()),
        )
        .put("InputFormatConfiguration", Obj::new().put("Deserializer", Obj::new().put("OpenXJsonSerDe", openx)))
        .put(
            "OutputFormatConfiguration",
            Obj::new()
                .put("Serializer", Obj::new().put("ParquetSerDe", Obj::new().put("Compression", parquet_compression))),
        );
    let s3 = Obj::new()
        .put("RoleARN", def.role_arn.clone())
        .put("BucketARN", def.bucket_arn.clone())
        .opt("Prefix", def.prefix.clone())
        .opt("ErrorOutputPrefix", def.error_prefix.clone())
        .put(
            "BufferingHints",
            Obj::new().put("SizeInMBs", def.size_mib as i64).put("IntervalInSeconds", def.interval_seconds as i64),
        )
        .put("CompressionFormat", "UNCOMPRESSED")
        .put("EncryptionConfiguration", Obj::new().put("NoEncryptionConfig", "NoEncryption"))
        .put("S3BackupMode", if def.backup_days > 0 { "Enabled" } else { "Disabled" })
        .put("DataFormatConversionConfiguration", conversion);
    let s3 = match &def.partition_query {
        None => s3,
        Some(q) => s3.put("DynamicPartitioningConfiguration", Obj::new().put("Enabled", true)).put(
            "ProcessingConfiguration",
            Obj::new().put("Enabled", true).put(
                "Processors",
                vec![
                    Obj::new()
                        .put("Type", "MetadataExtraction")
                        .put(
                            "Parameters",
                            vec![
                                Obj::new()
                                    .put("ParameterName", "MetadataExtractionQuery")
                                    .put("ParameterValue", q.clone())
                                    .done(),
                                Obj::new()
                                    .put("ParameterName", "JsonParsingEngine")
                                    .put("ParameterValue", "JQ-1.6")
                                    .done(),
                            ],
                        )
                        .done(),
                ],
            ),
        ),
    };
    Obj::new().put("DestinationId", DESTINATION_ID).put("ExtendedS3DestinationDescription", s3).done()
}
