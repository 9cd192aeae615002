//! aws-sdk-kinesis, unchanged but for the endpoint: produce, read back with every iterator
//! type, across a restart and across a split and a merge.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};

use crate::TestServer;

async fn read_all(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<String>,
    ts: Option<DateTime>,
) -> Vec<Vec<u8>> {
    let mut it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(seq)
        .set_timestamp(ts)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut out = Vec::new();
    loop {
        let page = client.get_records().shard_iterator(&it).limit(1000).send().await.unwrap();
        if page.records().is_empty() {
            return out;
        }
        out.extend(page.records().iter().map(|r| r.data().as_ref().to_vec()));
        match page.next_shard_iterator {
            Some(next) => it = next,
            None => return out,
        }
    }
}

#[tokio::test]
async fn rust_sdk_produces_and_reads_with_every_iterator_type() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_stream().stream_name("sdk").shard_count(1).send().await.unwrap();
    let summary = client.describe_stream_summary().stream_name("sdk").send().await.unwrap();
    assert_eq!(summary.stream_description_summary.unwrap().stream_status, StreamStatus::Active);
    let first = client.put_record().stream_name("sdk").partition_key("k").data(Blob::new("one")).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = DateTime::from_millis(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let entries: Vec<_> = ["two", "three"]
        .iter()
        .map(|d| PutRecordsRequestEntry::builder().partition_key("k").data(Blob::new(*d)).build().unwrap())
        .collect();
    let out = client.put_records().stream_name("sdk").set_records(Some(entries)).send().await.unwrap();
    assert_eq!(out.failed_record_count, Some(0));
    let shard = first.shard_id();
    let two = out.records()[0].sequence_number().unwrap().to_string();
    let all = read_all(&client, "sdk", shard, ShardIteratorType::TrimHorizon, None, None).await;
    assert_eq!(all, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    let at = read_all(&client, "sdk", shard, ShardIteratorType::AtSequenceNumber, Some(two.clone()), None).await;
    assert_eq!(at.len(), 2);
    let after = read_all(&client, "sdk", shard, ShardIteratorType::AfterSequenceNumber, Some(two), None).await;
    assert_eq!(after, [b"three".to_vec()]);
    // The Rust SDK sends millisecond timestamps, so AT_TIMESTAMP can fall between two puts.
    let since = read_all(&client, "sdk", shard, ShardIteratorType::AtTimestamp, None, Some(middle)).await;
    assert_eq!(since, [b"two".to_vec(), b"three".to_vec()]);
    let latest = read_all(&client, "sdk", shard, ShardIteratorType::Latest, None, None).await;
    assert!(latest.is_empty());
}

#[tokio::test]
async fn rust_sdk_reads_across_restart_split_and_merge() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_stream().stream_name("r").shard_count(2).send().await.unwrap();
    let mut sent = Vec::new();
    for round in 0..3 {
        for i in 0..40 {
            let data = format!("{round}-{i}");
            client
                .put_record()
                .stream_name("r")
                .partition_key(format!("key-{i}"))
                .data(Blob::new(data.clone()))
                .send()
                .await
                .unwrap();
            sent.push(data.into_bytes());
        }
        match round {
            0 => {
                client
                    .split_shard()
                    .stream_name("r")
                    .shard_to_split("shardId-000000000000")
                    .new_starting_hash_key((1u128 << 126).to_string())
                    .send()
                    .await
                    .unwrap();
            }
            1 => {
                client
                    .merge_shards()
                    .stream_name("r")
                    .shard_to_merge("shardId-000000000002")
                    .adjacent_shard_to_merge("shardId-000000000003")
                    .send()
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    let server = server.restart().await;
    let client = server.client();
    let shards = client.list_shards().stream_name("r").send().await.unwrap();
    let mut got = Vec::new();
    for s in shards.shards() {
        got.extend(read_all(&client, "r", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await);
    }
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
    let err = client.describe_stream().stream_name("missing").send().await.unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}
