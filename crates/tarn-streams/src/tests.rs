use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::model::StreamMode;
use crate::{CreateStream, ErrorKind, PutEntry, ShardFilter, StartingPosition, Streams, StreamsConfig};

struct Fixture {
    dir: tempfile::TempDir,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap(), now: Arc::new(AtomicI64::new(1_700_000_000_000)) }
    }
    fn open(&self) -> Streams {
        self.open_with(StreamsConfig::default())
    }
    fn open_with(&self, config: StreamsConfig) -> Streams {
        let now = self.now.clone();
        Streams::open(self.dir.path(), config, Arc::new(move || now.load(Ordering::SeqCst))).unwrap()
    }
    fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn create(s: &Streams, name: &str, shards: u32) {
    s.create_stream(CreateStream {
        name: name.into(),
        shard_count: Some(shards),
        mode: StreamMode::Provisioned,
        tags: BTreeMap::new(),
        max_record_size_kib: None,
    })
    .unwrap();
}

fn put(s: &Streams, stream: &str, key: &str, data: &str) -> crate::SequenceNumber {
    s.put_record(stream, PutEntry { partition_key: key, explicit_hash_key: None, data: data.as_bytes() }).unwrap()
}

fn read_all(s: &Streams, stream: &str, shard: &str, start: StartingPosition) -> Vec<String> {
    let mut it = s.get_shard_iterator(stream, shard, start).unwrap();
    let mut out = Vec::new();
    loop {
        let page = s.get_records(&it, 3).unwrap();
        if page.records.is_empty() {
            return out;
        }
        out.extend(page.records.iter().map(|r| String::from_utf8(r.data.to_vec()).unwrap()));
        match page.next_iterator {
            Some(next) => it = next,
            None => return out,
        }
    }
}

#[test]
fn records_route_by_md5_and_read_back_with_every_iterator_type() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "events", 4);
    // MD5("a") falls in the first quarter of the hash space.
    let a1 = put(&s, "events", "a", "one");
    assert_eq!(a1.shard_index, 0);
    f.advance(1000);
    let a2 = put(&s, "events", "a", "two");
    let a3 = put(&s, "events", "a", "three");
    assert!(a1.to_u128() < a2.to_u128() && a2.to_u128() < a3.to_u128());
    let shard = "shardId-000000000000";
    assert_eq!(read_all(&s, "events", shard, StartingPosition::TrimHorizon), ["one", "two", "three"]);
    assert_eq!(read_all(&s, "events", shard, StartingPosition::AtSequenceNumber(a2.to_string())), ["two", "three"]);
    assert_eq!(read_all(&s, "events", shard, StartingPosition::AfterSequenceNumber(a2.to_string())), ["three"]);
    assert_eq!(read_all(&s, "events", shard, StartingPosition::AtTimestamp(1_700_000_000_500)), ["two", "three"]);
    let latest = s.get_shard_iterator("events", shard, StartingPosition::Latest).unwrap();
    put(&s, "events", "a", "four");
    let page = s.get_records(&latest, 100).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.millis_behind_latest, 0);
}

#[test]
fn explicit_hash_key_overrides_the_partition_key() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 2);
    let seq =
        s.put_record("e", PutEntry { partition_key: "a", explicit_hash_key: Some(u128::MAX), data: b"x" }).unwrap();
    assert_eq!(seq.shard_index, 1);
}

#[test]
fn everything_survives_a_restart_and_sequence_numbers_keep_increasing() {
    let f = Fixture::new();
    let before = {
        let s = f.open();
        create(&s, "events", 2);
        (0..10).map(|i| put(&s, "events", &format!("k{i}"), &format!("v{i}"))).collect::<Vec<_>>()
    };
    let s = f.open();
    let after = put(&s, "events", "k0", "again");
    let same_shard_last = before.iter().filter(|q| q.shard_index == after.shard_index).max().unwrap();
    assert!(after.to_u128() > same_shard_last.to_u128());
    let total: usize = ["shardId-000000000000", "shardId-000000000001"]
        .iter()
        .map(|sh| read_all(&s, "events", sh, StartingPosition::TrimHorizon).len())
        .sum();
    assert_eq!(total, 11);
}

#[test]
fn sequence_numbers_from_another_shard_or_stream_are_refused() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "a", 2);
    create(&s, "b", 2);
    let seq = s.put_record("a", PutEntry { partition_key: "x", explicit_hash_key: Some(0), data: b"1" }).unwrap();
    let err = s.get_shard_iterator("b", "shardId-000000000000", StartingPosition::AtSequenceNumber(seq.to_string()));
    let err = err.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(err.message.contains("did not come from this stream"), "{}", err.message);
    let err = s
        .get_shard_iterator("a", "shardId-000000000001", StartingPosition::AtSequenceNumber(seq.to_string()))
        .unwrap_err();
    assert!(err.message.contains("It encodes shardId-000000000000"), "{}", err.message);
}

#[test]
fn iterators_expire_after_five_minutes_and_forgeries_are_invalid() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 1);
    let it = s.get_shard_iterator("e", "shardId-000000000000", StartingPosition::TrimHorizon).unwrap();
    f.advance(299_000);
    assert!(s.get_records(&it, 10).is_ok());
    f.advance(2_000);
    let err = s.get_records(&it, 10).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ExpiredIterator);
    assert!(err.message.starts_with("Iterator expired. The iterator was created at time"), "{}", err.message);
    let mut forged = it.clone();
    forged.replace_range(3..4, if &it[3..4] == "A" { "B" } else { "A" });
    assert_eq!(s.get_records(&forged, 10).unwrap_err().kind, ErrorKind::InvalidArgument);
}

#[test]
fn split_closes_the_parent_and_readers_follow_to_the_children() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 1);
    put(&s, "e", "a", "before");
    s.split_shard("e", "shardId-000000000000", 1u128 << 127).unwrap();
    put(&s, "e", "a", "after");
    let snap = s.snapshot("e").unwrap();
    assert_eq!(snap.meta.shards.len(), 3);
    assert!(snap.meta.shard(0).unwrap().closed.is_some());
    let it = s.get_shard_iterator("e", "shardId-000000000000", StartingPosition::TrimHorizon).unwrap();
    let page = s.get_records(&it, 100).unwrap();
    assert_eq!(page.records.len(), 1);
    assert!(page.next_iterator.is_none(), "end of a closed shard has no next iterator");
    let children: Vec<u32> = page.child_shards.iter().map(|c| c.index).collect();
    assert_eq!(children, [1, 2]);
    // MD5("a") is in the lower half, so the record went to the first child.
    assert_eq!(read_all(&s, "e", "shardId-000000000001", StartingPosition::TrimHorizon), ["after"]);
    // The parent is still closed after a restart.
    drop(s);
    let s = f.open();
    assert!(
        s.put_record("e", PutEntry { partition_key: "a", explicit_hash_key: None, data: b"x" }).unwrap().shard_index
            == 1
    );
    let err = s.split_shard("e", "shardId-000000000000", 5).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceInUse);
}

#[test]
fn split_and_merge_validate_their_arguments() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 3);
    let err = s.split_shard("e", "shardId-000000000000", 1).unwrap_err();
    assert!(err.message.contains("is not both greater than one plus the shard's StartingHashKey"));
    let err = s.merge_shards("e", "shardId-000000000000", "shardId-000000000002").unwrap_err();
    assert!(err.message.contains("not an adjacent pair"), "{}", err.message);
    s.merge_shards("e", "shardId-000000000001", "shardId-000000000000").unwrap();
    let open: Vec<_> = s.list_shards("e", &ShardFilter::AtLatest, None).unwrap();
    assert_eq!(open.len(), 2);
    let merged = open.iter().find(|s| s.index == 3).unwrap();
    assert_eq!((merged.parent, merged.adjacent_parent, merged.start_hash), (Some(1), Some(0), 0));
    let err = s.split_shard("e", "shardId-000000000099", 5).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
}

#[test]
fn update_shard_count_reaches_uniform_ranges_with_at_most_two_parents() {
    for (from, to) in [(1, 2), (2, 4), (3, 5), (4, 2), (5, 3), (4, 7)] {
        let f = Fixture::new();
        let s = f.open();
        create(&s, "e", from);
        assert_eq!(s.update_shard_count("e", to).unwrap(), from);
        let open = s.list_shards("e", &ShardFilter::AtLatest, None).unwrap();
        let ranges: Vec<(u128, u128)> = open.iter().map(|s| (s.start_hash, s.end_hash)).collect();
        let mut sorted = ranges.clone();
        sorted.sort();
        assert_eq!(sorted, crate::hash_key::even_ranges(to), "{from} -> {to}");
        // Every record still lands in an open shard after the change.
        for i in 0..50 {
            let seq = put(&s, "e", &format!("key-{i}"), "x");
            assert!(open.iter().any(|o| o.index == seq.shard_index));
        }
    }
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 2);
    assert_eq!(s.update_shard_count("e", 5).unwrap_err().kind, ErrorKind::LimitExceeded);
}

#[test]
fn retention_drops_old_segments_and_expired_closed_shards() {
    let f = Fixture::new();
    let config = StreamsConfig {
        log: tarn_log::LogConfig { segment_max_bytes: 1, segment_max_age_ms: i64::MAX, ..Default::default() },
        ..StreamsConfig::default()
    };
    let s = f.open_with(config.clone());
    create(&s, "e", 1);
    put(&s, "e", "a", "old");
    f.advance(20 * 3_600_000);
    put(&s, "e", "a", "new");
    s.split_shard("e", "shardId-000000000000", 1u128 << 127).unwrap();
    f.advance(5 * 3_600_000);
    // 25 h after "old", 5 h after "new": only "old" has expired.
    let (segments, shards) = s.enforce_retention().unwrap();
    assert_eq!((segments, shards), (1, 0));
    assert_eq!(read_all(&s, "e", "shardId-000000000000", StartingPosition::TrimHorizon), ["new"]);
    f.advance(20 * 3_600_000);
    let (_, shards) = s.enforce_retention().unwrap();
    assert_eq!(shards, 1, "the closed parent expired with its last record");
    let err = s.get_shard_iterator("e", "shardId-000000000000", StartingPosition::TrimHorizon).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    drop(s);
    assert_eq!(f.open_with(config).snapshot("e").unwrap().meta.shards.len(), 2);
    assert!(f.path().join("streams").exists());
}

#[test]
fn retention_period_changes_follow_aws_rules() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 1);
    assert!(s.change_retention("e", 23, true).unwrap_err().message.contains("Minimum allowed retention period is 24"));
    assert_eq!(s.change_retention("e", 8761, true).unwrap_err().kind, ErrorKind::InvalidArgument);
    s.change_retention("e", 48, true).unwrap();
    assert!(s.change_retention("e", 36, true).unwrap_err().message.contains("Use DecreaseRetentionPeriod API"));
    s.change_retention("e", 36, false).unwrap();
    assert_eq!(s.snapshot("e").unwrap().meta.retention_hours, 36);
}

#[test]
fn limits_are_enforced_with_aws_errors() {
    let f = Fixture::new();
    let s = f.open_with(StreamsConfig { shard_limit: 3, ..StreamsConfig::default() });
    create(&s, "e", 2);
    let err = s
        .create_stream(CreateStream {
            name: "f".into(),
            shard_count: Some(2),
            mode: StreamMode::Provisioned,
            tags: BTreeMap::new(),
            max_record_size_kib: None,
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::LimitExceeded);
    let big = vec![0u8; 1024 * 1024];
    let err = s.put_record("e", PutEntry { partition_key: "k", explicit_hash_key: None, data: &big }).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Validation);
    assert!(err.message.contains("at 'records.1.member.data'"), "{}", err.message);
    let chunk = vec![0u8; 1000 * 1024];
    let entries: Vec<_> =
        (0..6).map(|_| PutEntry { partition_key: "k", explicit_hash_key: None, data: &chunk }).collect();
    assert_eq!(s.put_records("e", &entries).unwrap_err().message, "Records size exceeds 5 MB limit");
    // Nothing of the refused requests was written.
    assert!(read_all(&s, "e", "shardId-000000000000", StartingPosition::TrimHorizon).is_empty());
}

#[test]
fn shard_throughput_limits_throttle_per_record_when_switched_on() {
    let f = Fixture::new();
    let s = f.open_with(StreamsConfig { shard_throughput_limits: true, ..StreamsConfig::default() });
    create(&s, "e", 1);
    let entries: Vec<_> =
        (0..500).map(|_| PutEntry { partition_key: "k", explicit_hash_key: None, data: b"x" }).collect();
    let accepted = |results: Vec<crate::EntryResult>| results.iter().filter(|r| r.is_ok()).count();
    // 1,000 records a second per shard: two full batches pass, the third is refused entry by entry.
    assert_eq!(accepted(s.put_records("e", &entries).unwrap()), 500);
    assert_eq!(accepted(s.put_records("e", &entries).unwrap()), 500);
    let refused = s.put_records("e", &entries).unwrap();
    assert_eq!(accepted(refused.clone()), 0);
    let e = refused[0].as_ref().unwrap_err();
    assert_eq!(e.code, "ProvisionedThroughputExceededException");
    assert!(e.message.starts_with("Rate exceeded for shard shardId-000000000000 in stream e"), "{}", e.message);
    f.advance(1000);
    assert_eq!(accepted(s.put_records("e", &entries).unwrap()), 500);
}

#[test]
fn deleted_streams_are_gone_after_restart_and_names_can_be_reused() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 1);
    let old = put(&s, "e", "a", "1");
    s.delete_stream("e", false).unwrap();
    assert_eq!(s.snapshot("e").unwrap_err().kind, ErrorKind::ResourceNotFound);
    create(&s, "e", 1);
    let err = s.get_shard_iterator("e", "shardId-000000000000", StartingPosition::AtSequenceNumber(old.to_string()));
    assert_eq!(err.unwrap_err().kind, ErrorKind::InvalidArgument);
    drop(s);
    let s = f.open();
    assert_eq!(s.list().len(), 1);
}

#[test]
fn the_shard_start_sequence_precedes_its_first_record() {
    let f = Fixture::new();
    let s = f.open();
    create(&s, "e", 1);
    let start = s.snapshot("e").unwrap().meta.start_sequence(0);
    let first = put(&s, "e", "a", "first");
    assert!(start.to_u128() < first.to_u128());
    let shard = "shardId-000000000000";
    assert_eq!(read_all(&s, "e", shard, StartingPosition::AfterSequenceNumber(start.to_string())), ["first"]);
    assert_eq!(read_all(&s, "e", shard, StartingPosition::AtSequenceNumber(start.to_string())), ["first"]);
    // A page's continuation number resumes exactly after what the page returned.
    let it = s.get_shard_iterator("e", shard, StartingPosition::TrimHorizon).unwrap();
    let page = s.get_records(&it, 10).unwrap();
    put(&s, "e", "a", "second");
    let resume = StartingPosition::AfterSequenceNumber(page.continuation().to_string());
    assert_eq!(read_all(&s, "e", shard, resume), ["second"]);
}

#[test]
fn statuses_follow_the_stream_lifecycle() {
    use crate::model::StreamStatus;
    let f = Fixture::new();
    let s = f.open_with(StreamsConfig { transition_ms: 1000, ..StreamsConfig::default() });
    create(&s, "e", 2);
    assert_eq!(s.snapshot("e").unwrap().status, StreamStatus::Creating);
    let err = s.put_record("e", PutEntry { partition_key: "k", explicit_hash_key: None, data: b"x" }).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    assert_eq!(s.split_shard("e", "shardId-000000000000", 1 << 100).unwrap_err().kind, ErrorKind::ResourceInUse);
    f.advance(1000);
    assert_eq!(s.snapshot("e").unwrap().status, StreamStatus::Active);
    s.split_shard("e", "shardId-000000000000", 1 << 100).unwrap();
    assert_eq!(s.snapshot("e").unwrap().status, StreamStatus::Updating);
    // Reads and writes go on while UPDATING; another reshard waits.
    put(&s, "e", "k", "during");
    let err = s.merge_shards("e", "shardId-000000000002", "shardId-000000000003").unwrap_err();
    assert!(err.message.contains("not ACTIVE, instead in state UPDATING"), "{}", err.message);
    f.advance(1000);
    s.merge_shards("e", "shardId-000000000002", "shardId-000000000003").unwrap();
}
