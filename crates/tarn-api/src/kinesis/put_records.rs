use std::io::Write;
use std::ops::Range;

use serde::Deserialize;
use tarn_streams::model::{shard_id, shard_id_bytes};
use tarn_streams::{DecimalWriter, EntryResult, PutEntry, Written};

use super::put_record::explicit_hash_key;
use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::input::{HASH_KEY, Input, Violations, length_within};
use crate::protocol::{Doc, Obj, json};

/// The longest PartitionKey, in characters.
const PARTITION_KEY_MAX: usize = 256;
/// The longest ExplicitHashKey, in digits.
const HASH_KEY_MAX: usize = 39;

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
        let key = r.string(&mut v, "PartitionKey", true, 1, PARTITION_KEY_MAX, None)?;
        let ehk = r.string(&mut v, "ExplicitHashKey", false, 0, HASH_KEY_MAX, Some(HASH_KEY))?;
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
    let (results, failed) = put(ctx, &name, &entries)?;
    Ok(output_doc(&results, failed))
}

/// The output: each entry's sequence number and shard, or why it failed.
fn output_doc(results: &[EntryResult], failed: usize) -> Doc<'static> {
    let records: Vec<Doc<'static>> = results
        .iter()
        .map(|r| match r {
            Ok(seq) => {
                Obj::new().put("SequenceNumber", seq.to_string()).put("ShardId", shard_id(seq.shard_index)).done()
            }
            Err(err) => Obj::new().put("ErrorCode", err.code).put("ErrorMessage", err.message.clone()).done(),
        })
        .collect();
    Obj::new().put("FailedRecordCount", failed).put("Records", records).put("EncryptionType", "NONE").done()
}

/// Writes the entries, waits until they are durable and counts them into the stream's metrics;
/// returns each entry's result and how many failed.
fn put(ctx: &Ctx<'_>, name: &str, entries: &[PutEntry<'_>]) -> Result<(Vec<EntryResult>, usize), ApiError> {
    let (results, failed, written) = write(ctx, name, entries)?;
    written.wait()?;
    Ok((results, failed))
}

/// [`put`] without the wait: the entries are written and counted, not yet durable.
fn write(ctx: &Ctx<'_>, name: &str, entries: &[PutEntry<'_>]) -> Result<(Vec<EntryResult>, usize, Written), ApiError> {
    let (results, written) = ctx.streams.write_records(name, entries)?;
    let (mut failed, mut records_in, mut bytes_in) = (0u64, 0u64, 0u64);
    for (r, e) in results.iter().zip(entries) {
        match r {
            Ok(_) => {
                records_in += 1;
                bytes_in += (e.data.len() + e.partition_key.len()) as u64;
            }
            Err(_) => failed += 1,
        }
    }
    ctx.metrics.add("tarn_stream_records_in_total", &[("stream", name)], records_in);
    ctx.metrics.add("tarn_stream_bytes_in_total", &[("stream", name)], bytes_in);
    if failed > 0 {
        ctx.metrics.add("tarn_stream_throttled_records_total", &[("stream", name)], failed);
    }
    Ok((results, failed as usize, written))
}

/// A PutRecords body as SDKs send it, with strings borrowed from the body (a string with escapes
/// does not borrow, and so takes the general path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonInput<'a> {
    #[serde(rename = "StreamName", borrow, default)]
    stream_name: Option<&'a str>,
    #[serde(rename = "StreamARN", borrow, default)]
    stream_arn: Option<&'a str>,
    #[serde(rename = "Records", borrow)]
    records: Vec<JsonEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry<'a> {
    /// Raw bytes: serde_json then skips UTF-8 validation, which the base64 decoder makes
    /// redundant (it rejects every byte outside the alphabet). About 2% of ingest.
    #[serde(rename = "Data", borrow)]
    data: &'a [u8],
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: &'a str,
    #[serde(rename = "ExplicitHashKey", borrow, default)]
    explicit_hash_key: Option<&'a str>,
}

/// PutRecords in JSON without a document tree: ingest's hot path. It takes bodies whose members
/// are all present, well typed and valid, which is what producers send, decodes every record's
/// data into one buffer and writes the response directly. It returns once the records are written,
/// with the [`Written`] to wait for before the response may be sent. Anything else returns `None`
/// (having written nothing) and goes to [`handle`], which reports what is wrong the way AWS does.
pub fn handle_json(ctx: &Ctx<'_>, body: &[u8]) -> Option<Result<(Vec<u8>, Written), ApiError>> {
    let input: JsonInput<'_> = serde_json::from_slice(body).ok()?;
    let stream = StreamRef { name: input.stream_name, arn: input.stream_arn };
    let count = input.records.len();
    if !stream.valid() || count == 0 || count > ctx.streams.config().max_put_records_entries {
        return None;
    }
    let mut data = Vec::with_capacity(input.records.iter().map(|r| r.data.len() / 4 * 3).sum());
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(count);
    for r in &input.records {
        let valid_ehk = r.explicit_hash_key.is_none_or(|k| length_within(k, 0, HASH_KEY_MAX) && (HASH_KEY.matches)(k));
        if !length_within(r.partition_key, 1, PARTITION_KEY_MAX) || !valid_ehk {
            return None;
        }
        let start = data.len();
        base64_simd::STANDARD.decode_append(r.data, &mut data).ok()?;
        ranges.push(start..data.len());
    }
    Some((|| {
        let name = stream.resolve(ctx)?;
        let mut entries = Vec::with_capacity(count);
        for (r, range) in input.records.iter().zip(ranges) {
            entries.push(PutEntry {
                partition_key: r.partition_key,
                explicit_hash_key: explicit_hash_key(r.explicit_hash_key)?,
                data: &data[range],
            });
        }
        let (results, failed, written) = write(ctx, &name, &entries)?;
        Ok((json_output(&results, failed), written))
    })())
}

/// The JSON of [`output_doc`], written without building the document.
fn json_output(results: &[EntryResult], failed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + results.len() * 96);
    let _ = write!(out, r#"{{"FailedRecordCount":{failed},"Records":["#);
    let mut decimal = DecimalWriter::default();
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match r {
            Ok(seq) => {
                out.extend_from_slice(br#"{"SequenceNumber":""#);
                decimal.write(*seq, &mut out);
                out.extend_from_slice(br#"","ShardId":""#);
                out.extend_from_slice(&shard_id_bytes(seq.shard_index));
                out.extend_from_slice(br#""}"#);
            }
            Err(err) => {
                out.extend_from_slice(br#"{"ErrorCode":"#);
                json::write_string(err.code.as_bytes(), &mut out);
                out.extend_from_slice(br#","ErrorMessage":"#);
                json::write_string(err.message.as_bytes(), &mut out);
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(br#"],"EncryptionType":"NONE"}"#);
    out
}

#[cfg(test)]
mod tests {
    use tarn_streams::{EntryError, SequenceNumber};

    use super::*;

    #[test]
    fn the_direct_json_output_is_the_documents_json() {
        let results: Vec<EntryResult> = vec![
            Ok(SequenceNumber::of_record(3, 2, 41)),
            Err(EntryError {
                code: "ProvisionedThroughputExceededException",
                message: "Rate \"exceeded\" for shard\n".into(),
            }),
            Ok(SequenceNumber::of_record(3, 0, u64::MAX >> 8)),
            // Consecutive records of a shard: their digits are added to, not written afresh.
            Ok(SequenceNumber::of_record(3, 2, 42)),
            Ok(SequenceNumber::of_record(3, 0, (u64::MAX >> 8) + 9)),
            Ok(SequenceNumber::of_record(3, 2, 99)),
        ];
        let mut expected = Vec::new();
        json::encode(&output_doc(&results, 1), &mut expected);
        assert_eq!(String::from_utf8(json_output(&results, 1)).unwrap(), String::from_utf8(expected).unwrap());
    }
}
