use tarn_segments::{SegmentDef, SourceKind};
use tarn_streams::PutEntry;

use super::{Ctx, read_name};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

/// Firehose's largest record, before base64.
pub const MAX_RECORD_BYTES: usize = 1_024_000;

/// Reads a `Record{Data}` structure's data, checking its size as Coral does.
pub(super) fn read_data(record: &Input<'_, '_>, v: &mut Violations) -> Result<Option<bytes::Bytes>, ApiError> {
    let data = record.blob(v, "Data", true)?;
    if let Some(d) = &data
        && d.len() > MAX_RECORD_BYTES
    {
        let n = d.len();
        v.add(
            Some(format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")),
            &record.path("Data"),
            format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
        );
    }
    Ok(data)
}

/// A DirectPut delivery stream's segment; others refuse direct puts, as Firehose does.
pub(super) fn direct_put_segment(ctx: &Ctx<'_>, name: &str) -> Result<SegmentDef, ApiError> {
    let def = ctx.segment(name)?;
    if def.source != SourceKind::DirectPut {
        return Err(ApiError::invalid_argument(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type.",
        ));
    }
    Ok(def)
}

/// Spreads records over the segment stream's shards (Firehose keeps no order between records).
pub(super) fn partition_key() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let name = read_name(&input, &mut v)?;
    let record = input.structure("Record")?;
    let data = match &record {
        Some(r) => read_data(r, &mut v)?,
        None => {
            v.add(None, "record", "Member must not be null");
            None
        }
    };
    v.finish()?;
    let def = direct_put_segment(ctx, name.expect("required"))?;
    let data = data.expect("required");
    let key = partition_key();
    let entry = PutEntry { partition_key: &key, explicit_hash_key: None, data: &data };
    let seq = ctx.streams.put_record(&def.stream, entry).map_err(|e| match e.kind {
        tarn_streams::ErrorKind::ProvisionedThroughputExceeded => {
            ApiError::new("ServiceUnavailableException", 503, "Slow down.")
        }
        _ => ApiError::from(e),
    })?;
    let labels = [("delivery_stream", def.name.as_str())];
    ctx.metrics.add("tarn_firehose_records_in_total", &labels, 1);
    ctx.metrics.add("tarn_firehose_bytes_in_total", &labels, data.len() as u64);
    Ok(Obj::new().put("RecordId", seq.to_string()).put("Encrypted", false).done())
}
