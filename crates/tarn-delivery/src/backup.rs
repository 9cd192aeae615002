//! Raw backup: each flush's source records, exactly as they arrived, as gzip'd JSON lines under
//! `backup/<layer>/<table>/YYYY/MM/DD/HH/` (the hour of the flush's oldest record), and the
//! lifecycle that removes hours older than the retention. Written before the flush commits, so a
//! crash may back a record up twice, never lose it.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::prepare::Pending;

/// The backup folder of an arrival time: `YYYY/MM/DD/HH`.
pub fn hour_folder(arrival_ms: i64) -> String {
    let ((y, mo, d), (h, _, _)) = tarn_time::civil_from_millis(arrival_ms);
    format!("{y:04}/{mo:02}/{d:02}/{h:02}")
}

/// Writes `records` as one gzip file `name` in `dir`, durably (written aside, fsynced, renamed).
pub fn write(dir: &Path, name: &str, records: &[Pending]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = std::fs::File::create(&tmp)?;
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
    for r in records {
        gz.write_all(&r.data)?;
        if !r.data.ends_with(b"\n") {
            gz.write_all(b"\n")?;
        }
    }
    let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the hour folders under `root` (`YYYY/MM/DD/HH`) that ended more than `days` before
/// `now_ms`, and the day, month and year folders left empty. Returns how many files went.
pub fn expire(root: &Path, now_ms: i64, days: u32) -> std::io::Result<usize> {
    let cutoff = now_ms - i64::from(days) * 86_400_000;
    let mut removed = 0;
    let numbered = |dir: &Path| -> std::io::Result<Vec<(i64, std::path::PathBuf)>> {
        let mut out = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for e in entries {
                    let e = e?;
                    if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) {
                        out.push((n, e.path()));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    };
    for (y, year) in numbered(root)? {
        for (mo, month) in numbered(&year)? {
            for (d, day) in numbered(&month)? {
                for (h, hour) in numbered(&day)? {
                    let end_ms = (tarn_time::days_from_civil(y, mo, d) * 24 + h + 1) * 3_600_000;
                    if end_ms <= cutoff {
                        removed += std::fs::read_dir(&hour)?.count();
                        std::fs::remove_dir_all(&hour)?;
                    }
                }
                let _ = std::fs::remove_dir(&day); // only if empty
            }
            let _ = std::fs::remove_dir(&month);
        }
        let _ = std::fs::remove_dir(&year);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use bytes::Bytes;

    use super::*;

    const DAY: i64 = 86_400_000;
    const T: i64 = 1_795_330_800_000; // 2026-11-22T07:00:00Z

    fn pending(data: &str) -> Pending {
        Pending { sequence_number: "1".into(), arrival_ms: T, data: Bytes::copy_from_slice(data.as_bytes()) }
    }

    #[test]
    fn backs_up_records_byte_for_byte_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let records = [pending("{\"a\":1}"), pending("not json"), pending("{\"b\":2}\n")];
        write(dir.path(), "f.json.gz", &records).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join("f.json.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\nnot json\n{\"b\":2}\n");
        assert_eq!(hour_folder(T), "2026/11/22/07");
    }

    #[test]
    fn expires_whole_hours_past_the_retention_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for at in [T - 31 * DAY, T - 30 * DAY - 3_600_000, T - 30 * DAY + 3_600_000, T] {
            write(&dir.path().join(hour_folder(at)), "f.json.gz", &[pending("{}")]).unwrap();
        }
        assert_eq!(expire(dir.path(), T, 30).unwrap(), 2);
        assert!(!dir.path().join(hour_folder(T - 31 * DAY)).exists());
        assert!(!dir.path().join("2026/10/22").exists(), "emptied day folders go too");
        assert!(dir.path().join(hour_folder(T - 30 * DAY + 3_600_000)).join("f.json.gz").exists());
        assert!(dir.path().join(hour_folder(T)).join("f.json.gz").exists());
        assert_eq!(expire(&dir.path().join("missing"), T, 30).unwrap(), 0);
    }
}
