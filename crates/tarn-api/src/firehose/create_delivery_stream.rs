use tarn_segments::{SegmentDef, SourceKind};
use tarn_streams::CreateStream;
use tarn_streams::model::StreamMode;

use super::destination::{self, ROLE_ARN, identifier, layer_of_bucket};
use super::{Ctx, read_name, read_tags};
use crate::error::ApiError;
use crate::protocol::input::{Input, STREAM_ARN, Violations};
use crate::protocol::{Doc, Obj};

const TYPES: &[&str] = &["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"];
const OTHER_DESTINATIONS: &[&str] = &[
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let kind = input.enumeration(&mut v, "DeliveryStreamType", false, TYPES)?.unwrap_or("DirectPut");
    let source = input.structure("KinesisStreamSourceConfiguration")?;
    let (source_arn, source_role) = match &source {
        Some(s) => (
            s.string(&mut v, "KinesisStreamARN", true, 1, 512, Some(STREAM_ARN))?,
            s.string(&mut v, "RoleARN", true, 1, 512, Some(ROLE_ARN))?,
        ),
        None => (None, None),
    };
    let extended = input.structure("ExtendedS3DestinationConfiguration")?;
    let plain = input.structure("S3DestinationConfiguration")?;
    let dest = match extended.as_ref().or(plain.as_ref()) {
        Some(d) => Some(destination::read(d, &mut v, true)?),
        None => None,
    };
    let tags = read_tags(&input, &mut v)?;
    v.finish()?;
    let name = name.expect("required");

    if OTHER_DESTINATIONS.iter().any(|d| doc.field(d).is_some()) {
        return Err(ApiError::invalid_argument(
            "Tarn delivers into its lake tables only: use ExtendedS3DestinationConfiguration.",
        ));
    }
    if extended.is_some() && plain.is_some() {
        return Err(ApiError::invalid_argument("Only one destination configuration can be specified."));
    }
    let dest = dest.ok_or_else(|| {
        ApiError::invalid_argument("A destination configuration is required: ExtendedS3DestinationConfiguration.")
    })?;
    let (source_kind, stream) = match kind {
        "DirectPut" if source.is_some() => {
            return Err(ApiError::invalid_argument(
                "KinesisStreamSourceConfiguration is only allowed with DeliveryStreamType KinesisStreamAsSource.",
            ));
        }
        "DirectPut" => (SourceKind::DirectPut, name.to_owned()),
        "KinesisStreamAsSource" => {
            let arn = source_arn.ok_or_else(|| {
                ApiError::invalid_argument(
                    "KinesisStreamSourceConfiguration is required for DeliveryStreamType KinesisStreamAsSource.",
                )
            })?;
            let stream = ctx
                .streams
                .resolve_name(None, Some(arn))
                .map_err(|_| ApiError::invalid_argument(format!("Stream {arn} is not a stream of this server.")))?;
            ctx.streams.snapshot(&stream)?;
            (SourceKind::KinesisStreamAsSource, stream)
        }
        other => {
            return Err(ApiError::invalid_argument(format!("DeliveryStreamType {other} is not supported by Tarn.")));
        }
    };
    let _ = source_role;

    let now = ctx.streams.now();
    let bucket_arn = dest.bucket_arn.clone().expect("required");
    let layer = dest.database.as_deref().map_or_else(|| layer_of_bucket(&bucket_arn), identifier);
    let table = dest.table.as_deref().map_or_else(|| identifier(name), identifier);
    let mut def = SegmentDef::new(name, &layer, &table, source_kind, &stream, now);
    def.bucket_arn = bucket_arn;
    def.tags = tags.into_iter().collect();
    dest.apply(&mut def, true)?;
    if ctx.segments.list().iter().any(|s| s.layer == def.layer && s.table == def.table) {
        return Err(ApiError::new(
            "ResourceInUseException",
            400,
            format!("Table {}.{} already receives another delivery stream.", def.layer, def.table),
        ));
    }
    if ctx.segments.get(name).is_some() {
        return Err(ctx.segment_error(tarn_segments::SegmentError::Exists(name.to_owned())));
    }
    if source_kind == SourceKind::DirectPut {
        ctx.streams.create_stream(CreateStream {
            name: stream,
            shard_count: Some(1),
            mode: StreamMode::Provisioned,
            tags: Default::default(),
            max_record_size_kib: None,
        })?;
    }
    let arn = ctx.arn(name);
    if let Err(e) = ctx.segments.create(def) {
        if source_kind == SourceKind::DirectPut {
            let _ = ctx.streams.delete_stream(name, false);
        }
        return Err(ctx.segment_error(e));
    }
    Ok(Obj::new().put("DeliveryStreamARN", arn).done())
}
