use tarn_streams::PutEntry;

use super::put_record::{direct_put_segment, partition_key, read_data};
use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// Firehose's PutRecordBatch limits: 500 records, 4 MiB in all.
const MAX_RECORDS: usize = 500;
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let records = input.list_of_structures("Records")?;
    match &records {
        None => v.add(None, "records", "Member must not be null"),
        Some(r) if r.is_empty() => {
            v.add(Some("[]".into()), "records", "Member must have length greater than or equal to 1")
        }
        Some(r) if r.len() > MAX_RECORDS => v.add(
            Some("[...]".into()),
            "records",
            format!("Member must have length less than or equal to {MAX_RECORDS}"),
        ),
        _ => {}
    }
    let mut data = Vec::new();
    for r in records.iter().flatten() {
        data.push(read_data(r, &mut v)?);
    }
    v.finish()?;
    let def = direct_put_segment(ctx, name.expect("required"))?;
    let data: Vec<bytes::Bytes> = data.into_iter().map(|d| d.expect("required")).collect();
    let total: usize = data.iter().map(|d| d.len()).sum();
    if total > MAX_BATCH_BYTES {
        return Err(ApiError::invalid_argument("Records size exceeds 4 MB limit"));
    }
    let keys: Vec<String> = data.iter().map(|_| partition_key()).collect();
    let entries: Vec<PutEntry<'_>> =
        data.iter().zip(&keys).map(|(d, k)| PutEntry { partition_key: k, explicit_hash_key: None, data: d }).collect();
    let results = ctx.streams.put_records(&def.stream, &entries)?;
    let mut failed = 0u64;
    let mut bytes_in = 0u64;
    let responses: Vec<Doc<'static>> = results
        .iter()
        .zip(&data)
        .map(|(r, d)| match r {
            Ok(seq) => {
                bytes_in += d.len() as u64;
                Obj::new().put("RecordId", seq.to_string()).done()
            }
            Err(_) => {
                failed += 1;
                Obj::new().put("ErrorCode", "ServiceUnavailableException").put("ErrorMessage", "Slow down.").done()
            }
        })
        .collect();
    let labels = [("delivery_stream", def.name.as_str())];
    ctx.metrics.add("tarn_firehose_records_in_total", &labels, data.len() as u64 - failed);
    ctx.metrics.add("tarn_firehose_bytes_in_total", &labels, bytes_in);
    Ok(Obj::new()
        .put("FailedPutCount", failed as i64)
        .put("Encrypted", false)
        .put("RequestResponses", responses)
        .done())
}
