//! Raw backup: each flush's source records, exactly as they arrived, as gzip'd JSON lines under
//! `backup/<layer>/<table>/YYYY/MM/DD/HH/` (the hour of the flush's oldest record) in the lake's
//! store, and the lifecycle that removes hours older than the retention. Written before the flush
//! commits, so a crash may back a record up twice, never lose it.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use tarn_lake::Store;

use crate::parallel::in_parallel;
use crate::prepare::Pending;

/// Records are handed to the compressor in runs of about this many bytes.
const LINES_BUFFER_BYTES: usize = 256 * 1024;

/// The backup folder of an arrival time: `YYYY/MM/DD/HH`.
pub fn hour_folder(arrival_ms: i64) -> String {
    let ((y, mo, d), (h, _, _)) = tarn_time::civil_from_millis(arrival_ms);
    format!("{y:04}/{mo:02}/{d:02}/{h:02}")
}

/// `records` as gzip'd JSON lines, one record per line: on `threads` threads, each compressing
/// a run of records into a gzip member of its own, the members one after the other (a valid
/// gzip file: `gunzip`, Python's `gzip`, Hadoop's codec and `MultiGzDecoder` read them all).
pub fn encode(records: &[Pending], threads: usize) -> std::io::Result<Vec<u8>> {
    let per_thread = records.len().div_ceil(threads.max(1)).max(1);
    let members = in_parallel(records.chunks(per_thread).collect(), threads, |run: &[Pending]| {
        // Lines gathered into a small buffer: large writes compress faster than one per record,
        // and a buffer the size of the whole run would be fresh memory on every flush.
        let raw_bytes: usize = run.iter().map(|r| r.data.len() + 1).sum();
        let mut gz = GzEncoder::new(Vec::with_capacity(raw_bytes / 4), Compression::fast());
        let mut lines = Vec::with_capacity(LINES_BUFFER_BYTES);
        for r in run {
            lines.extend_from_slice(&r.data);
            if !r.data.ends_with(b"\n") {
                lines.push(b'\n');
            }
            if lines.len() >= LINES_BUFFER_BYTES {
                gz.write_all(&lines)?;
                lines.clear();
            }
        }
        gz.write_all(&lines)?;
        gz.finish()
    });
    let members = members.into_iter().collect::<std::io::Result<Vec<Vec<u8>>>>()?;
    // The others after the first, in the room the first was given (a quarter of its run, which
    // is usually enough for all of them): no fresh buffer the size of the whole file.
    let mut members = members.into_iter();
    let mut out = members.next().unwrap_or_default();
    for member in members {
        out.extend_from_slice(&member);
    }
    if out.is_empty() {
        // No records: still a valid (empty) gzip file.
        out = GzEncoder::new(Vec::new(), Compression::fast()).finish()?;
    }
    Ok(out)
}

/// When the hour of a backup file ends, from its key below the backup root (`YYYY/MM/DD/HH/name`).
fn hour_end_ms(relative_key: &str) -> Option<i64> {
    let mut parts = relative_key.split('/');
    let mut num = || parts.next()?.parse::<i64>().ok();
    let (y, mo, d, h) = (num()?, num()?, num()?, num()?);
    Some((tarn_time::days_from_civil(y, mo, d) * 24 + h + 1) * 3_600_000)
}

/// Of the keys under `root/` (as listed), those whose hour ended more than `days` before `now_ms`.
pub fn expired_keys<'a>(keys: impl IntoIterator<Item = &'a str>, root: &str, now_ms: i64, days: u32) -> Vec<String> {
    let cutoff = now_ms - i64::from(days) * 86_400_000;
    keys.into_iter()
        .filter(|k| {
            k.strip_prefix(root).and_then(|r| r.strip_prefix('/')).and_then(hour_end_ms).is_some_and(|e| e <= cutoff)
        })
        .map(str::to_owned)
        .collect()
}

/// Deletes the backup files under `root` (a key folder of `store`) whose hour ended more than
/// `days` before `now_ms`. Returns how many went.
pub async fn expire(store: &Store, root: &str, now_ms: i64, days: u32) -> tarn_store::Result<usize> {
    let listing = store.list(&format!("{root}/")).await?;
    let expired = expired_keys(listing.iter().map(|o| o.key.as_str()), root, now_ms, days);
    for key in &expired {
        store.delete(key).await?;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use bytes::Bytes;

    use super::*;

    const DAY: i64 = 86_400_000;
    const T: i64 = 1_795_330_800_000; // 2026-11-22T07:00:00Z

    fn pending(data: &str) -> Pending {
        Pending {
            sequence_number: tarn_streams::SequenceNumber::of_record(7, 0, 1),
            arrival_ms: T,
            data: Bytes::copy_from_slice(data.as_bytes()),
        }
    }

    #[test]
    fn backs_up_records_byte_for_byte_one_per_line() {
        let records = [pending("{\"a\":1}"), pending("not json"), pending("{\"b\":2}\n")];
        for threads in [1, 2, 3, 8] {
            let mut text = String::new();
            let gz = encode(&records, threads).unwrap();
            flate2::read::MultiGzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
            assert_eq!(text, "{\"a\":1}\nnot json\n{\"b\":2}\n", "{threads} threads");
        }
        // Many records: each thread's run is handed to the compressor in several pieces.
        let many: Vec<Pending> = (0..100_000).map(|i| pending(&format!("{{\"i\":{i}}}"))).collect();
        let expected: String = (0..100_000).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        assert!(expected.len() > 2 * LINES_BUFFER_BYTES);
        for threads in [1, 2] {
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(&encode(&many, threads).unwrap()[..]).read_to_string(&mut text).unwrap();
            assert!(text == expected, "{threads} threads: {} bytes back of {}", text.len(), expected.len());
        }
        let mut empty = String::new();
        flate2::read::MultiGzDecoder::new(&encode(&[], 2).unwrap()[..]).read_to_string(&mut empty).unwrap();
        assert!(empty.is_empty());
        assert_eq!(hour_folder(T), "2026/11/22/07");
    }

    #[tokio::test]
    async fn expires_whole_hours_past_the_retention_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        for at in [T - 31 * DAY, T - 30 * DAY - 3_600_000, T - 30 * DAY + 3_600_000, T] {
            store.put(&format!("b/l/t/{}/f.json.gz", hour_folder(at)), Bytes::from_static(b"x")).await.unwrap();
        }
        store.put("b/l/t2/2020/01/01/00/f.json.gz", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(expire(&store, "b/l/t", T, 30).await.unwrap(), 2);
        assert!(!dir.path().join("b/l/t").join(hour_folder(T - 31 * DAY)).exists());
        assert!(!dir.path().join("b/l/t/2026/10/22").exists(), "emptied day folders go too");
        assert!(dir.path().join("b/l/t").join(hour_folder(T - 30 * DAY + 3_600_000)).join("f.json.gz").exists());
        assert!(dir.path().join("b/l/t").join(hour_folder(T)).join("f.json.gz").exists());
        assert!(dir.path().join("b/l/t2/2020/01/01/00/f.json.gz").exists(), "another table's backup is not ours");
        assert_eq!(expire(&store, "missing", T, 30).await.unwrap(), 0);
        assert!(expired_keys(["b/l/t/notes.txt", "b/l/t/2026/x/22/07/f"], "b/l/t", T, 0).is_empty());
    }
}
