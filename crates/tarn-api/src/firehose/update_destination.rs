use super::destination::{self, DESTINATION_ID};
use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::input::{Input, Pattern, Violations};
use crate::protocol::{Doc, Obj};

const VERSION: Pattern = Pattern { text: "[0-9]+", matches: |s| s.bytes().all(|b| b.is_ascii_digit()) };
const DESTINATION: Pattern =
    Pattern { text: "[a-zA-Z0-9-]+", matches: |s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') };

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let version = input.string(&mut v, "CurrentDeliveryStreamVersionId", true, 1, 50, Some(VERSION))?;
    let destination_id = input.string(&mut v, "DestinationId", true, 1, 100, Some(DESTINATION))?;
    let update = input.structure("ExtendedS3DestinationUpdate")?.or(input.structure("S3DestinationUpdate")?);
    let update = match &update {
        Some(u) => Some(destination::read(u, &mut v, false)?),
        None => None,
    };
    v.finish()?;
    let name = name.expect("required");
    let def = ctx.segment(name)?;
    if destination_id != Some(DESTINATION_ID) {
        return Err(ApiError::invalid_argument(format!(
            "Destination {} not found for delivery stream {name}.",
            destination_id.unwrap_or_default()
        )));
    }
    let given = version.expect("required");
    if given != def.version.to_string() {
        return Err(ApiError::new(
            "ConcurrentModificationException",
            400,
            format!(
                "Cannot update firehose: {name} since the current version id: {} and the specified version id: {given} do not match",
                def.version
            ),
        ));
    }
    let update = update
        .ok_or_else(|| ApiError::invalid_argument("A destination update is required: ExtendedS3DestinationUpdate."))?;
    let mut changed = def.clone();
    update.apply(&mut changed, false)?;
    let now = ctx.streams.now();
    ctx.segments
        .update(name, true, |d| {
            if d.version != def.version {
                return Err(tarn_segments::SegmentError::Invalid(format!(
                    "Cannot update firehose: {name}: it was changed meanwhile"
                )));
            }
            *d = changed;
            d.version += 1;
            d.updated_ms = now;
            Ok(())
        })
        .map_err(|e| ctx.segment_error(e))?;
    Ok(Obj::new().done())
}
