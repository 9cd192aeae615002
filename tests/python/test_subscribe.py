"""SubscribeToShard (enhanced fan-out) through boto3: the event stream over HTTP/1.1."""

import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError


def setup_consumer(client, shards=1):
    name = "efo-" + uuid.uuid4().hex[:8]
    client.create_stream(StreamName=name, ShardCount=shards)
    arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = client.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]["ConsumerARN"]
    return name, consumer


def events(stream):
    for event in stream["EventStream"]:
        if "SubscribeToShardEvent" in event:
            yield event["SubscribeToShardEvent"]


def test_subscription_delivers_existing_and_new_records(make_server):
    server = make_server()
    client = server.client(read_timeout=30)
    name, consumer = setup_consumer(client)
    client.put_records(StreamName=name, Records=[{"Data": f"old-{i}".encode(), "PartitionKey": "k"} for i in range(5)])
    sub = client.subscribe_to_shard(
        ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"}
    )
    got, continuation = [], None
    threading.Timer(0.5, lambda: server.client().put_record(StreamName=name, Data=b"new", PartitionKey="k")).start()
    deadline = time.time() + 20
    for ev in events(sub):
        got.extend(r["Data"] for r in ev["Records"])
        continuation = ev["ContinuationSequenceNumber"]
        assert ev["MillisBehindLatest"] >= 0
        if len(got) >= 6 or time.time() > deadline:
            break
    assert got == [f"old-{i}".encode() for i in range(5)] + [b"new"]
    # Resuming after the continuation number misses nothing and repeats nothing.
    client.put_record(StreamName=name, Data=b"later", PartitionKey="k")
    time.sleep(5.1)  # the same consumer may take over its own subscription after 5 seconds
    sub = client.subscribe_to_shard(
        ConsumerARN=consumer,
        ShardId="shardId-000000000000",
        StartingPosition={"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": continuation},
    )
    for ev in events(sub):
        if ev["Records"]:
            assert [r["Data"] for r in ev["Records"]] == [b"later"]
            break


def test_second_subscription_within_five_seconds_is_refused(make_server):
    server = make_server()
    client = server.client(read_timeout=30)
    _, consumer = setup_consumer(client)
    first = client.subscribe_to_shard(
        ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"}
    )
    next(events(first))
    with pytest.raises(ClientError) as e:
        client.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"})
    assert e.value.response["Error"]["Code"] == "ResourceInUseException"


def test_subscription_ends_after_its_lifetime_and_at_a_closed_shard(make_server):
    server = make_server(extra_env={"TARN_KINESIS__SUBSCRIPTION_SECONDS": "2"})
    client = server.client(read_timeout=30)
    name, consumer = setup_consumer(client)
    started = time.time()
    sub = client.subscribe_to_shard(
        ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"}
    )
    idle_events = list(events(sub))
    assert time.time() - started < 15
    assert len(idle_events) >= 1, "an idle subscription still reports its position"
    client.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    client.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    sub = client.subscribe_to_shard(
        ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"}
    )
    last = list(events(sub))[-1]
    assert sorted(c["ShardId"] for c in last["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]


def test_unknown_consumer_is_not_found(server, kinesis):
    name, consumer = setup_consumer(kinesis)
    with pytest.raises(ClientError) as e:
        kinesis.subscribe_to_shard(
            ConsumerARN=consumer.replace("reader", "nobody"),
            ShardId="shardId-000000000000",
            StartingPosition={"Type": "LATEST"},
        )
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
