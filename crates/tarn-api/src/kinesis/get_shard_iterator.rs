use tarn_streams::StartingPosition;

use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, SEQUENCE, Violations};
use crate::protocol::{Doc, Obj};

const TYPES: &[&str] = &["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"];

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let shard = input.string(&mut v, "ShardId", true, 1, 128, Some(NAME))?;
    let kind = input.enumeration(&mut v, "ShardIteratorType", true, TYPES)?;
    let seq = input.string(&mut v, "StartingSequenceNumber", false, 0, 129, Some(SEQUENCE))?;
    let ts = input.timestamp("Timestamp")?;
    v.finish()?;
    let kind = kind.expect("required");
    let rule = |detail: &str| {
        ApiError::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) \
             TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {detail} \
             StartingSequenceNumber."
        ))
    };
    let start = match (kind, seq) {
        ("AT_SEQUENCE_NUMBER", Some(s)) => StartingPosition::AtSequenceNumber(s.to_owned()),
        ("AFTER_SEQUENCE_NUMBER", Some(s)) => StartingPosition::AfterSequenceNumber(s.to_owned()),
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => return Err(rule("no")),
        ("TRIM_HORIZON" | "LATEST", Some(_)) => return Err(rule("also a")),
        ("TRIM_HORIZON", None) => StartingPosition::TrimHorizon,
        ("LATEST", None) => StartingPosition::Latest,
        (_, _) => StartingPosition::AtTimestamp(ts.ok_or_else(|| {
            ApiError::invalid_argument(
                "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no \
                 timestamp parameter.",
            )
        })?),
    };
    let iterator = ctx.streams.get_shard_iterator(&stream.resolve(ctx)?, shard.expect("required"), start)?;
    Ok(Obj::new().put("ShardIterator", iterator).done())
}
