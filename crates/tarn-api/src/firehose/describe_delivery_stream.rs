use super::destination::{self, DESTINATION_ID};
use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::doc::timestamp;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};
use tarn_segments::SourceKind;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    input.int(&mut v, "Limit", false, 1, 10_000)?;
    let after = input.string(&mut v, "ExclusiveStartDestinationId", false, 1, 100, None)?;
    v.finish()?;
    let def = ctx.segment(name.expect("required"))?;
    let destinations: Vec<Doc<'static>> =
        if after == Some(DESTINATION_ID) { Vec::new() } else { vec![destination::description(&def)] };
    let source = match def.source {
        SourceKind::DirectPut => None,
        SourceKind::KinesisStreamAsSource => {
            let stream_arn = ctx.streams.snapshot(&def.stream).map(|s| s.arn).unwrap_or_default();
            Some(
                Obj::new().put(
                    "KinesisStreamSourceDescription",
                    Obj::new()
                        .put("KinesisStreamARN", stream_arn)
                        .put("RoleARN", def.role_arn.clone())
                        .put("DeliveryStartTimestamp", timestamp(def.created_ms)),
                ),
            )
        }
    };
    let description = Obj::new()
        .put("DeliveryStreamName", def.name.clone())
        .put("DeliveryStreamARN", ctx.arn(&def.name))
        .put("DeliveryStreamStatus", "ACTIVE")
        .put("DeliveryStreamType", def.source.as_str())
        .put("VersionId", def.version.to_string())
        .put("CreateTimestamp", timestamp(def.created_ms))
        .opt("LastUpdateTimestamp", (def.version > 1).then(|| timestamp(def.updated_ms)))
        .put("DeliveryStreamEncryptionConfiguration", Obj::new().put("Status", "DISABLED"))
        .opt("Source", source)
        .put("Destinations", destinations)
        .put("HasMoreDestinations", false);
    Ok(Obj::new().put("DeliveryStreamDescription", description).done())
}
