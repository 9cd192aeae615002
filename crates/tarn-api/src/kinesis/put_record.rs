use tarn_streams::PutEntry;
use tarn_streams::hash_key::parse_hash_key;
use tarn_streams::model::shard_id;

use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{HASH_KEY, Input, SEQUENCE, Violations};
use crate::protocol::{Doc, Obj};

/// Reads an ExplicitHashKey that passed the pattern check; values past 2^128 - 1 are refused.
pub(crate) fn explicit_hash_key(value: Option<&str>) -> Result<Option<u128>, ApiError> {
    value
        .map(|s| {
            parse_hash_key(s).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {s}"
                ))
            })
        })
        .transpose()
}

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let data = input.blob(&mut v, "Data", true)?;
    let key = input.string(&mut v, "PartitionKey", true, 1, 256, None)?;
    let ehk = input.string(&mut v, "ExplicitHashKey", false, 0, 39, Some(HASH_KEY))?;
    input.string(&mut v, "SequenceNumberForOrdering", false, 0, 129, Some(SEQUENCE))?;
    v.finish()?;
    let name = stream.resolve(ctx)?;
    let (data, key) = (data.expect("required"), key.expect("required"));
    let entry = PutEntry { partition_key: key, explicit_hash_key: explicit_hash_key(ehk)?, data: &data };
    let seq = ctx.streams.put_record(&name, entry).map_err(|mut e| {
        // The stream layer names the member as in PutRecords.
        e.message = e.message.replace("'records.1.member.data'", "'data'");
        ApiError::from(e)
    })?;
    ctx.metrics.add("tarn_stream_records_in_total", &[("stream", &name)], 1);
    ctx.metrics.add("tarn_stream_bytes_in_total", &[("stream", &name)], (data.len() + key.len()) as u64);
    Ok(Obj::new()
        .put("ShardId", shard_id(seq.shard_index))
        .put("SequenceNumber", seq.to_string())
        .put("EncryptionType", "NONE")
        .done())
}
