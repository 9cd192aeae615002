use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;

use crate::{LogConfig, RecordRef, ShardLog};

fn rec<'a>(key: &'a str, data: &'a [u8]) -> RecordRef<'a> {
    RecordRef { partition_key: key.as_bytes(), data }
}

fn append_synced(log: &ShardLog, key: &str, data: &[u8], now: i64) -> u64 {
    let a = log.append(&[rec(key, data)], now).unwrap();
    log.sync_to(a.end_offset).unwrap();
    a.base_offset
}

#[test]
fn appended_records_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    let a = log.append(&[rec("a", b"1"), rec("b", b"2")], 10).unwrap();
    let b = log.append(&[rec("c", b"3")], 11).unwrap();
    log.sync_to(b.end_offset).unwrap();
    assert_eq!((a.base_offset, b.base_offset, b.end_offset), (0, 2, 3));
    let r = log.read(0, 100, 1 << 20).unwrap();
    let data: Vec<_> = r.records.iter().map(|r| (r.offset, r.data.to_vec())).collect();
    assert_eq!(data, vec![(0, b"1".to_vec()), (1, b"2".to_vec()), (2, b"3".to_vec())]);
    assert_eq!(r.next_offset, 3);
    let r = log.read(1, 1, 1 << 20).unwrap();
    assert_eq!((r.records.len(), r.records[0].offset, r.next_offset), (1, 1, 2));
}

#[test]
fn unsynced_records_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    let a = log.append(&[rec("a", b"1")], 1).unwrap();
    assert!(log.read(0, 10, 1 << 20).unwrap().records.is_empty());
    log.sync_to(a.end_offset).unwrap();
    assert_eq!(log.read(0, 10, 1 << 20).unwrap().records.len(), 1);
}

#[test]
fn arrival_time_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    assert_eq!(log.append(&[rec("a", b"1")], 100).unwrap().arrival_ms, 100);
    assert_eq!(log.append(&[rec("a", b"1")], 50).unwrap().arrival_ms, 100);
}

#[test]
fn byte_budget_stops_after_the_first_record_that_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    for i in 0..10 {
        append_synced(&log, "k", &[i; 100], i64::from(i));
    }
    let r = log.read(0, 100, 350).unwrap();
    assert_eq!(r.records.len(), 3, "3 x 101 bytes fit in 350, a fourth does not");
    assert_eq!(r.next_offset, 3);
    // A single record larger than the budget is still returned, or a reader would be stuck.
    let r = log.read(0, 100, 10).unwrap();
    assert_eq!(r.records.len(), 1);
}

#[test]
fn segments_roll_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_max_bytes: 1000, ..LogConfig::default() };
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    for i in 0..50u8 {
        append_synced(&log, "key", &[i; 100], 1);
    }
    let files = std::fs::read_dir(dir.path().join("s")).unwrap().count();
    assert!(files > 5, "expected several segments, found {files}");
    let r = log.read(0, 1000, 1 << 20).unwrap();
    assert_eq!(r.records.len(), 50);
    assert!(r.records.iter().enumerate().all(|(i, r)| r.offset == i as u64 && r.data[0] == i as u8));
    let r = log.read(37, 5, 1 << 20).unwrap();
    assert_eq!(r.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![37, 38, 39, 40, 41]);
}

#[test]
fn reopen_keeps_everything_and_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_max_bytes: 500, ..LogConfig::default() };
    {
        let log = ShardLog::open(dir.path().join("s"), config).unwrap();
        for i in 0..20u8 {
            append_synced(&log, "key", &[i; 60], 5);
        }
    }
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    assert_eq!(log.durable_end(), 20);
    assert_eq!(append_synced(&log, "key", b"x", 6), 20);
    assert_eq!(log.read(0, 100, 1 << 20).unwrap().records.len(), 21);
}

/// Both ways of writing: through the page cache, and direct (where the file system allows it).
fn both_modes() -> [LogConfig; 2] {
    [LogConfig { direct_io: false, ..LogConfig::default() }, LogConfig { direct_io: true, ..LogConfig::default() }]
}

#[test]
fn recovery_cuts_a_torn_tail_and_serves_everything_before_it() {
    for config in both_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let good_len = {
            let log = ShardLog::open(&path, config).unwrap();
            for i in 0..5u8 {
                append_synced(&log, "key", &[i; 10], 1);
            }
            log.size_bytes()
        };
        let seg = path.join("00000000000000000000.log");
        // A batch that the crash cut in half, then garbage (after a direct write's zeros).
        let mut torn = Vec::new();
        crate::codec::encode_batch(5, 2, &[rec("key", &[9; 50])], &mut torn);
        torn.truncate(torn.len() - 7);
        OpenOptions::new().append(true).open(&seg).unwrap().write_all(&torn).unwrap();
        let log = ShardLog::open(&path, config).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len, "{config:?}");
        let r = log.read(0, 100, 1 << 20).unwrap();
        assert_eq!(r.records.len(), 5);
        assert_eq!(append_synced(&log, "key", b"after", 3), 5);
    }
}

#[test]
fn recovery_cuts_a_corrupted_last_batch() {
    for config in both_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let len = {
            let log = ShardLog::open(&path, config).unwrap();
            append_synced(&log, "key", b"first", 1);
            append_synced(&log, "key", b"second", 1);
            log.size_bytes() as usize
        };
        let seg = path.join("00000000000000000000.log");
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[len - 2] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let log = ShardLog::open(&path, config).unwrap();
        let r = log.read(0, 100, 1 << 20).unwrap();
        assert_eq!(r.records.iter().map(|r| r.data.to_vec()).collect::<Vec<_>>(), vec![b"first".to_vec()]);
    }
}

#[test]
fn corruption_in_a_sealed_segment_is_an_error_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let config = LogConfig { segment_max_bytes: 100, ..LogConfig::default() };
    {
        let log = ShardLog::open(&path, config).unwrap();
        for i in 0..4u8 {
            append_synced(&log, "key", &[i; 80], 1);
        }
    }
    let seg = path.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let log = ShardLog::open(&path, config).unwrap();
    let err = log.read(0, 100, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn trim_drops_whole_expired_segments_and_moves_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    // Each 191-byte batch fills a segment of its own.
    let config = LogConfig { segment_max_bytes: 150, ..LogConfig::default() };
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    for t in 0..10i64 {
        append_synced(&log, "key", &[t as u8; 150], t * 1000);
    }
    assert_eq!(log.start_offset(), 0);
    let removed = log.trim(5000).unwrap();
    assert_eq!(removed, 5);
    assert_eq!(log.start_offset(), 5);
    let r = log.read(0, 100, 1 << 20).unwrap();
    assert_eq!(r.records.first().map(|r| r.offset), Some(5));
    // Everything expired, including the active segment: the log is empty but offsets continue.
    log.trim(100_000).unwrap();
    assert_eq!(log.start_offset(), 10);
    assert!(log.read(0, 100, 1 << 20).unwrap().records.is_empty());
    assert_eq!(append_synced(&log, "key", b"new", 200_000), 10);
}

#[test]
fn offset_at_time_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    for t in [100, 200, 300] {
        append_synced(&log, "k", b"x", t);
    }
    assert_eq!(log.offset_at_time(0).unwrap(), 0);
    assert_eq!(log.offset_at_time(200).unwrap(), 1);
    assert_eq!(log.offset_at_time(201).unwrap(), 2);
    assert_eq!(log.offset_at_time(301).unwrap(), 3);
}

#[test]
fn concurrent_writers_share_fsyncs_and_lose_nothing() {
    // Small segments: rolls come while other writers' fsync rounds are writing.
    for config in both_modes().map(|c| LogConfig { segment_max_bytes: 3000, ..c }) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(ShardLog::open(dir.path().join("s"), config).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..200u32 {
                        let payload = format!("{t}:{i}");
                        let a = log.append(&[rec("k", payload.as_bytes())], 1).unwrap();
                        log.sync_to(a.end_offset).unwrap();
                        assert!(log.durable_end() >= a.end_offset);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let check = |log: &ShardLog| {
            let r = log.read(0, 10_000, 1 << 24).unwrap();
            assert_eq!(r.records.len(), 1600, "{config:?}");
            for t in 0..8 {
                let mine: Vec<u32> = r
                    .records
                    .iter()
                    .filter_map(|r| {
                        let s = std::str::from_utf8(&r.data).unwrap();
                        let (who, i) = s.split_once(':').unwrap();
                        (who == t.to_string()).then(|| i.parse().unwrap())
                    })
                    .collect();
                assert_eq!(mine, (0..200).collect::<Vec<_>>(), "writer {t} out of order or missing");
            }
        };
        check(&log);
        drop(log);
        check(&ShardLog::open(dir.path().join("s"), config).unwrap());
    }
}

#[test]
fn a_lone_writer_never_waits_for_the_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    // An hour between fsyncs under load: a lone writer that waited for it would hang here.
    let config = LogConfig { sync_interval: std::time::Duration::from_secs(3600), ..LogConfig::default() };
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    for i in 0..50 {
        append_synced(&log, "k", b"v", i);
    }
    assert_eq!(log.fsyncs(), 50, "each sync_to of a lone writer runs its own fsync");
    assert_eq!(log.read(0, 100, 1 << 20).unwrap().records.len(), 50);
}

/// Writers that, like API requests, do some work between appends; returns the fsyncs it took.
fn busy_writers(interval: std::time::Duration) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { sync_interval: interval, ..LogConfig::default() };
    let log = Arc::new(ShardLog::open(dir.path().join("s"), config).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..40u64 {
                    // Think times well above an fsync's, so that without the interval few appends
                    // would share one even on a slow disk.
                    std::thread::sleep(std::time::Duration::from_micros(5000 + (t * 131 + i * 173) % 5000));
                    let a = log.append(&[rec("k", b"v")], 1).unwrap();
                    log.sync_to(a.end_offset).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.read(0, 1000, 1 << 20).unwrap().records.len(), 320);
    log.fsyncs()
}

#[test]
fn under_load_the_sync_interval_makes_appends_share_fsyncs() {
    let eager = busy_writers(std::time::Duration::ZERO);
    let spaced = busy_writers(std::time::Duration::from_millis(50));
    assert!(spaced * 2 < eager, "{spaced} fsyncs with a 50 ms interval, {eager} without");
}

/// Bytes whose cached pages the log has released, and bytes written, over all segments.
fn released_and_written(log: &ShardLog) -> (u64, u64) {
    let written = log.size_bytes();
    (written - log.cached_bytes(), written)
}

#[test]
fn pages_behind_the_cache_window_go_back_to_the_kernel_and_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let window = 64 * 1024;
    let config = LogConfig { segment_max_bytes: 256 * 1024, cache_window_bytes: window, ..LogConfig::default() };
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    for i in 0..300u32 {
        append_synced(&log, "k", &[(i % 251) as u8; 4000], 1);
    }
    let (released, written) = released_and_written(&log);
    let kept = written - released;
    let segments = std::fs::read_dir(dir.path().join("s")).unwrap().count();
    assert!(segments > 3, "several segments, found {segments}");
    // The newest window stays; what lies behind it (up to one release step and one batch) goes.
    assert!(kept >= window, "kept {kept} of {written}");
    assert!(kept <= window + window / 8 + 4100, "kept {kept} of {written}");
    let r = log.read(0, 1000, 8 << 20).unwrap();
    assert_eq!(r.records.len(), 300);
    assert!(r.records.iter().enumerate().all(|(i, r)| r.data.len() == 4000 && r.data[0] == (i % 251) as u8));
}

#[test]
fn a_reader_releases_what_it_is_done_with_never_what_is_not_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap();
    for i in 0..60u8 {
        append_synced(&log, "k", &[i; 1000], 1);
    }
    let batch = released_and_written(&log).1 / 60;
    assert_eq!(released_and_written(&log).0, 0, "the default window keeps everything this small");
    log.release_cache_before(40);
    let (released, _) = released_and_written(&log);
    // Up to the indexed batch at or before offset 40: never past it.
    assert!(released > 0 && released <= 40 * batch, "released {released}, batches of {batch}");
    // An append not yet synced keeps its pages, whatever the reader says.
    let pending = log.append(&[rec("k", &[9; 1000])], 2).unwrap();
    log.release_cache_before(u64::MAX);
    let (released, written) = released_and_written(&log);
    // Up to the durable end, as closely as the sparse index (an entry every 16 KiB) tells.
    assert!(released <= written - batch, "the unsynced batch keeps its pages: {released} of {written}");
    assert!(released + batch + 16 * 1024 + batch >= written, "released {released} of {written}");
    log.sync_to(pending.end_offset).unwrap();
    let r = log.read(0, 100, 1 << 20).unwrap();
    assert_eq!(r.records.len(), 61);
    assert!(r.records[..60].iter().enumerate().all(|(i, r)| r.data == vec![i as u8; 1000]));
}

#[test]
fn once_a_reader_releases_the_window_no_longer_does() {
    let dir = tempfile::tempdir().unwrap();
    // Through the page cache only: a direct log's memory tail stays bounded by the window.
    let config = LogConfig { cache_window_bytes: 16 * 1024, direct_io: false, ..LogConfig::default() };
    let log = ShardLog::open(dir.path().join("s"), config).unwrap();
    for _ in 0..20 {
        append_synced(&log, "k", &[1; 4000], 1);
    }
    let (before, _) = released_and_written(&log);
    assert!(before > 0, "the window released the oldest pages");
    // A reader that has read nothing yet: delivery running behind keeps its pages cached.
    log.release_cache_before(0);
    for _ in 0..40 {
        append_synced(&log, "k", &[2; 4000], 1);
    }
    assert_eq!(released_and_written(&log).0, before);
}

/// A direct-I/O log in `dir`, or `None` where its file system has no direct I/O (the test then
/// has nothing to check).
fn direct_log(dir: &std::path::Path, config: LogConfig) -> Option<ShardLog> {
    let log = ShardLog::open(dir, LogConfig { direct_io: true, ..config }).unwrap();
    if !log.direct_io() {
        eprintln!("no direct I/O on this file system; nothing to check");
        return None;
    }
    Some(log)
}

#[test]
fn direct_and_buffered_logs_write_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(direct) = direct_log(&dir.path().join("d"), LogConfig::default()) else { return };
    let buffered =
        ShardLog::open(dir.path().join("b"), LogConfig { direct_io: false, ..LogConfig::default() }).unwrap();
    for i in 0..200u32 {
        let data = vec![(i % 251) as u8; 10 + (i as usize * 37) % 3000];
        for log in [&direct, &buffered] {
            let a = log.append(&[rec("k", &data), rec("j", b"x")], i64::from(i)).unwrap();
            if i % 3 == 0 {
                log.sync_to(a.end_offset).unwrap();
            }
        }
    }
    for log in [&direct, &buffered] {
        log.sync_to(400).unwrap();
    }
    let name = "00000000000000000000.log";
    let on_disk = std::fs::read(dir.path().join("d").join(name)).unwrap();
    let expected = std::fs::read(dir.path().join("b").join(name)).unwrap();
    // Whole blocks on disk, the last one padded with zeros.
    assert_eq!(on_disk.len() % 4096, 0);
    assert_eq!(&on_disk[..expected.len()], &expected[..]);
    assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
    let (d, b) = (direct.read(0, 1000, 64 << 20).unwrap(), buffered.read(0, 1000, 64 << 20).unwrap());
    assert_eq!((d.records.len(), d.records), (400, b.records));
    // Reopened (as after a crash), the zeros go and the log goes on where it was.
    drop(direct);
    let direct = direct_log(&dir.path().join("d"), LogConfig::default()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("d").join(name)).unwrap(), expected);
    assert_eq!(append_synced(&direct, "k", b"more", 1000), 400);
    assert_eq!(direct.read(399, 10, 1 << 20).unwrap().records[1].data, b"more"[..]);
}

#[test]
fn direct_segments_sealed_by_a_roll_end_on_their_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let config = LogConfig { segment_max_bytes: 10_000, ..LogConfig::default() };
    {
        let Some(log) = direct_log(&path, config) else { return };
        for i in 0..100u8 {
            let a = log.append(&[rec("k", &[i; 700])], 1).unwrap();
            if i % 4 == 3 {
                log.sync_to(a.end_offset).unwrap();
            }
        }
        log.sync_to(100).unwrap();
    }
    let mut files: Vec<_> = std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() > 5, "{} segments", files.len());
    for sealed in &files[..files.len() - 1] {
        assert_ne!(std::fs::metadata(sealed).unwrap().len() % 4096, 0, "{} was not padded", sealed.display());
    }
    // Sealed segments are not verified on open: a padded one would be refused as corrupt.
    let log = direct_log(&path, config).unwrap();
    let r = log.read(0, 1000, 64 << 20).unwrap();
    assert_eq!(r.records.len(), 100);
    assert!(r.records.iter().enumerate().all(|(i, r)| r.data == vec![i as u8; 700]));
}

#[test]
fn direct_readers_at_the_head_are_served_from_memory_bounded_by_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let window = 64 * 1024;
    let Some(log) = direct_log(&path, LogConfig { cache_window_bytes: window, ..LogConfig::default() }) else { return };
    // A reader that releases does not lift the bound on memory.
    log.release_cache_before(0);
    for i in 0..100u32 {
        append_synced(&log, "k", &[(i % 251) as u8; 4000], 1);
    }
    let held = log.cached_bytes();
    assert!(held >= window && held <= window + window / 8 + 2 * 4096 + 4100, "held {held}");
    // Take the file's bytes away behind the log's back: the newest records still read (from
    // memory), older ones do not.
    let seg = path.join("00000000000000000000.log");
    let size = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(0).unwrap();
    let newest = 100 - window / 4100 + 1;
    let r = log.read(newest, 1000, 8 << 20).unwrap();
    assert_eq!(r.records.len() as u64, 100 - newest);
    assert!(r.records.iter().all(|r| r.data.len() == 4000 && r.data[0] == (r.offset % 251) as u8));
    assert!(log.read(0, 1000, 8 << 20).is_err(), "the oldest records come from the (emptied) file");
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(size).unwrap();
}

#[test]
fn direct_readers_release_the_memory_of_what_they_are_done_with() {
    let dir = tempfile::tempdir().unwrap();
    let Some(log) = direct_log(&dir.path().join("s"), LogConfig::default()) else { return };
    for i in 0..50u8 {
        append_synced(&log, "k", &[i; 2000], 1);
    }
    let (released, written) = released_and_written(&log);
    assert_eq!(released, 0, "the window holds all of it");
    log.release_cache_before(50);
    assert_eq!(log.cached_bytes(), 0, "written {written}");
    // Still served, from the file now.
    let r = log.read(0, 100, 1 << 20).unwrap();
    assert!(r.records.len() == 50 && r.records.iter().enumerate().all(|(i, r)| r.data == vec![i as u8; 2000]));
}

/// Polls `futures` on this thread until every one is ready (a minimal executor: the thread
/// parks until a waker unparks it).
fn run_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    while outputs.iter().any(Option::is_none) {
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none()
                && let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(&mut cx)
            {
                *out = Some(v);
            }
        }
        if outputs.iter().any(Option::is_none) {
            std::thread::park_timeout(std::time::Duration::from_millis(100));
        }
    }
    outputs.into_iter().map(Option::unwrap).collect()
}

#[test]
fn futures_waiting_on_one_thread_share_one_fsync_and_resolve_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap());
    let futures: Vec<_> =
        (0..200u32).map(|i| log.durable(log.append(&[rec("k", &i.to_be_bytes())], 1).unwrap().end_offset)).collect();
    assert!(log.read(0, 1000, 1 << 20).unwrap().records.is_empty(), "nothing is visible before its fsync");
    for result in run_all(futures) {
        result.unwrap();
    }
    assert_eq!(log.fsyncs(), 1, "the syncer's first round covers every append made before it");
    let r = log.read(0, 1000, 1 << 20).unwrap();
    let values: Vec<u32> = r.records.iter().map(|r| u32::from_be_bytes(r.data[..].try_into().unwrap())).collect();
    assert_eq!(values, (0..200).collect::<Vec<_>>());
    // Already durable: ready at the first poll, with no fsync.
    run_all(vec![log.durable(200)]).pop().unwrap().unwrap();
    assert_eq!(log.fsyncs(), 1);
}

#[test]
fn blocked_and_awaiting_writers_share_rounds_and_lose_nothing() {
    for config in both_modes() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(ShardLog::open(dir.path().join("s"), config).unwrap());
        let threads: Vec<_> = (0..6u32)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..100u32 {
                        let a = log.append(&[rec("k", format!("{t}:{i}").as_bytes())], 1).unwrap();
                        if t % 2 == 0 {
                            log.sync_to(a.end_offset).unwrap();
                        } else {
                            run_all(vec![log.durable(a.end_offset)]).pop().unwrap().unwrap();
                        }
                        assert!(log.durable_end() >= a.end_offset, "writer {t} acknowledged before durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = log.read(0, 10_000, 1 << 24).unwrap();
        assert_eq!(r.records.len(), 600);
        for t in 0..6 {
            let mine: Vec<u32> = r
                .records
                .iter()
                .filter_map(|r| {
                    let (who, i) = std::str::from_utf8(&r.data).unwrap().split_once(':').unwrap();
                    (who == t.to_string()).then(|| i.parse().unwrap())
                })
                .collect();
            assert_eq!(mine, (0..100).collect::<Vec<_>>(), "writer {t} out of order or missing");
        }
        assert!(log.fsyncs() < 600, "{} fsyncs for 600 appends", log.fsyncs());
    }
}

#[test]
fn a_dropped_future_leaves_no_waker_behind() {
    let dir = tempfile::tempdir().unwrap();
    // Rounds linger for an hour once shared, so the third write stays pending.
    let config = LogConfig { sync_interval: std::time::Duration::from_secs(3600), ..LogConfig::default() };
    let log = Arc::new(ShardLog::open(dir.path().join("s"), config).unwrap());
    let first = log.durable(log.append(&[rec("k", b"1")], 1).unwrap().end_offset);
    let second = log.durable(log.append(&[rec("k", b"2")], 1).unwrap().end_offset);
    run_all(vec![first, second]).into_iter().for_each(|r| r.unwrap());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut abandoned = log.durable(log.append(&[rec("k", b"3")], 1).unwrap().end_offset);
    assert!(std::pin::Pin::new(&mut abandoned).poll(&mut cx).is_pending());
    assert_eq!(log.sync_state.lock().unwrap().wakers.len(), 1);
    drop(abandoned);
    assert!(log.sync_state.lock().unwrap().wakers.is_empty());
}

#[test]
fn the_syncer_ends_when_no_future_waits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap());
    let a = log.append(&[rec("k", b"1")], 1).unwrap();
    run_all(vec![log.durable(a.end_offset)]).pop().unwrap().unwrap();
    assert!(log.sync_state.lock().unwrap().syncer_running);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let running = |log: &Arc<ShardLog>| log.sync_state.lock().unwrap().syncer_running || Arc::strong_count(log) > 1;
    while running(&log) && std::time::Instant::now() < deadline {
        std::thread::sleep(crate::SYNCER_IDLE / 4);
    }
    assert!(!log.sync_state.lock().unwrap().syncer_running, "the syncer outlived its idle time");
    assert_eq!(Arc::strong_count(&log), 1, "the ended syncer let go of the log");
    // The next waiting future starts another.
    let b = log.append(&[rec("k", b"2")], 1).unwrap();
    run_all(vec![log.durable(b.end_offset)]).pop().unwrap().unwrap();
    assert_eq!(log.read(0, 10, 1 << 20).unwrap().records.len(), 2);
}

#[test]
fn a_poisoned_log_fails_its_futures() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(ShardLog::open(dir.path().join("s"), LogConfig::default()).unwrap());
    let a = log.append(&[rec("k", b"1")], 1).unwrap();
    log.poisoned.store(true, std::sync::atomic::Ordering::Release);
    let err = run_all(vec![log.durable(a.end_offset)]).pop().unwrap().unwrap_err();
    assert!(matches!(err, crate::Error::Poisoned(_)), "{err}");
    assert!(log.sync_to(a.end_offset).is_err());
}
