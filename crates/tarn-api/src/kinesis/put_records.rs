use tarn_streams::PutEntry;
use tarn_streams::model::shard_id;

use super::put_record::explicit_hash_key;
use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{HASH_KEY, Input, Violations};
use crate::protocol::{Doc, Obj};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let records = input.list_of_structures("Records")?;
    let max_entries = ctx.streams.config().max_put_records_entries;
    match &records {
        None => v.add(None, "records", "Member must not be null"),
        Some(r) if r.is_empty() => {
            v.add(Some("[]".into()), "records", "Member must have length greater than or equal to 1")
        }
        Some(r) if r.len() > max_entries => v.add(
            Some("[...]".into()),
            "records",
            format!("Member must have length less than or equal to {max_entries}"),
        ),
        _ => {}
    }
    let records = records.unwrap_or_default();
    let mut owned = Vec::with_capacity(records.len());
    for r in &records {
        let data = r.blob(&mut v, "Data", true)?;
        let key = r.string(&mut v, "PartitionKey", true, 1, 256, None)?;
        let ehk = r.string(&mut v, "ExplicitHashKey", false, 0, 39, Some(HASH_KEY))?;
        owned.push((data, key, ehk));
    }
    v.finish()?;
    let name = stream.resolve(ctx)?;
    let mut entries = Vec::with_capacity(owned.len());
    for (data, key, ehk) in &owned {
        entries.push(PutEntry {
            partition_key: key.expect("required"),
            explicit_hash_key: explicit_hash_key(*ehk)?,
            data: data.as_ref().expect("required"),
        });
    }
    let results = ctx.streams.put_records(&name, &entries)?;
    let mut failed = 0usize;
    let (mut records_in, mut bytes_in) = (0u64, 0u64);
    let out: Vec<Doc<'static>> = results
        .iter()
        .zip(&entries)
        .map(|(r, e)| match r {
            Ok(seq) => {
                records_in += 1;
                bytes_in += (e.data.len() + e.partition_key.len()) as u64;
                Obj::new().put("SequenceNumber", seq.to_string()).put("ShardId", shard_id(seq.shard_index)).done()
            }
            Err(err) => {
                failed += 1;
                Obj::new().put("ErrorCode", err.code).put("ErrorMessage", err.message.clone()).done()
            }
        })
        .collect();
    ctx.metrics.add("tarn_stream_records_in_total", &[("stream", &name)], records_in);
    ctx.metrics.add("tarn_stream_bytes_in_total", &[("stream", &name)], bytes_in);
    if failed > 0 {
        ctx.metrics.add("tarn_stream_throttled_records_total", &[("stream", &name)], failed as u64);
    }
    Ok(Obj::new().put("FailedRecordCount", failed).put("Records", out).put("EncryptionType", "NONE").done())
}
