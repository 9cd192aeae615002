"""The Kinesis API through boto3, unchanged except for its endpoint."""

import hashlib
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import read_shard


def new_stream(client, shards=1, **kwargs):
    name = "s-" + uuid.uuid4().hex[:12]
    client.create_stream(StreamName=name, ShardCount=shards, **kwargs)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def shard_for(key, shards):
    h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= h <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError("no shard holds the key")


def test_stream_lifecycle(kinesis):
    name = new_stream(kinesis, shards=3, Tags={"team": "lake"})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 3
    assert summary["RetentionPeriodHours"] == 24
    assert summary["StreamARN"] == f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}"
    desc = kinesis.describe_stream(StreamARN=summary["StreamARN"])["StreamDescription"]
    assert [s["ShardId"] for s in desc["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    assert desc["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert desc["Shards"][-1]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    assert name in kinesis.list_streams()["StreamNames"]
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "lake"}]
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert error_code(e) == "ResourceInUseException"
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamName=name)
    assert error_code(e) == "ResourceNotFoundException"


def test_records_go_to_the_md5_shard_and_read_back_in_order(kinesis):
    name = new_stream(kinesis, shards=4)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    entries = [{"Data": f"value-{i}".encode(), "PartitionKey": f"key-{i % 7}"} for i in range(200)]
    out = kinesis.put_records(StreamName=name, Records=entries)
    assert out["FailedRecordCount"] == 0
    for entry, result in zip(entries, out["Records"]):
        assert result["ShardId"] == shard_for(entry["PartitionKey"], shards)
    by_shard = {}
    for s in shards:
        records, _ = read_shard(kinesis, name, s["ShardId"])
        by_shard[s["ShardId"]] = records
        seqs = [int(r["SequenceNumber"]) for r in records]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    got = sorted(r["Data"] for rs in by_shard.values() for r in rs)
    assert got == sorted(e["Data"] for e in entries)
    # Order per partition key is the order of the request.
    for key in {e["PartitionKey"] for e in entries}:
        sent = [e["Data"] for e in entries if e["PartitionKey"] == key]
        shard = shard_for(key, shards)
        assert [r["Data"] for r in by_shard[shard] if r["PartitionKey"] == key] == sent


def test_a_put_records_body_over_a_mebibyte_is_taken_whole(kinesis):
    # Bodies past 1 MiB are decoded on the server's blocking pool rather than its I/O thread.
    name = new_stream(kinesis)
    entries = [{"Data": bytes([i]) * 300_000, "PartitionKey": f"big-{i}"} for i in range(6)]
    out = kinesis.put_records(StreamName=name, Records=entries)
    assert out["FailedRecordCount"] == 0
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    records, _ = read_shard(kinesis, name, shard)
    assert [(r["PartitionKey"], r["Data"]) for r in records] == [(e["PartitionKey"], e["Data"]) for e in entries]
    assert [r["SequenceNumber"] for r in records] == [r["SequenceNumber"] for r in out["Records"]]


def test_every_iterator_type(kinesis):
    name = new_stream(kinesis)
    shard = "shardId-000000000000"
    first = kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")
    # boto3 sends AT_TIMESTAMP in whole seconds: start the next records in a later second.
    middle = int(time.time()) + 1
    time.sleep(middle - time.time() + 0.05)
    second = kinesis.put_record(StreamName=name, Data=b"b", PartitionKey="k")
    third = kinesis.put_record(StreamName=name, Data=b"c", PartitionKey="k")
    data = lambda rs: [r["Data"] for r in rs]
    assert data(read_shard(kinesis, name, shard)[0]) == [b"a", b"b", b"c"]
    seq = second["SequenceNumber"]
    assert data(read_shard(kinesis, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)[0]) == [b"b", b"c"]
    assert data(read_shard(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seq)[0]) == [b"c"]
    assert data(read_shard(kinesis, name, shard, "AT_TIMESTAMP", Timestamp=middle)[0]) == [b"b", b"c"]
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    kinesis.put_record(StreamName=name, Data=b"d", PartitionKey="k")
    page = kinesis.get_records(ShardIterator=latest)
    assert data(page["Records"]) == [b"d"]
    assert page["MillisBehindLatest"] == 0
    assert int(first["SequenceNumber"]) < int(seq) < int(third["SequenceNumber"])
    arrival = page["Records"][0]["ApproximateArrivalTimestamp"].timestamp()
    assert abs(arrival - time.time()) < 60


def test_limit_and_independent_readers(kinesis):
    name = new_stream(kinesis)
    kinesis.put_records(StreamName=name, Records=[{"Data": bytes([i]), "PartitionKey": "k"} for i in range(25)])
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    a = kinesis.get_records(ShardIterator=it, Limit=10)
    b = kinesis.get_records(ShardIterator=it, Limit=3)
    assert [r["Data"] for r in a["Records"]] == [bytes([i]) for i in range(10)]
    assert [r["Data"] for r in b["Records"]] == [bytes([i]) for i in range(3)]
    rest = kinesis.get_records(ShardIterator=a["NextShardIterator"], Limit=100)
    assert [r["Data"] for r in rest["Records"]] == [bytes([i]) for i in range(10, 25)]


def test_split_merge_and_update_shard_count_keep_every_record(kinesis):
    name = new_stream(kinesis, shards=2)
    sent = []

    def put(n, tag):
        batch = [{"Data": f"{tag}-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(n)]
        assert kinesis.put_records(StreamName=name, Records=batch)["FailedRecordCount"] == 0
        sent.extend(b["Data"] for b in batch)

    put(50, "before")
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
    put(50, "after-split")
    kinesis.merge_shards(
        StreamName=name, ShardToMerge="shardId-000000000002", AdjacentShardToMerge="shardId-000000000003"
    )
    put(50, "after-merge")
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (2, 4)
    put(50, "after-scale")
    open_shards = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(open_shards) == 4
    everything = kinesis.list_shards(StreamName=name)["Shards"]
    closed = [s for s in everything if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    assert len(closed) == len(everything) - 4
    got = []
    for s in everything:
        records, last = read_shard(kinesis, name, s["ShardId"])
        got.extend(r["Data"] for r in records)
        if s in closed:
            assert "NextShardIterator" not in last
            assert last["ChildShards"], f"closed shard {s['ShardId']} reports its children"
    assert sorted(got) == sorted(sent)
    # A closed parent refuses another split.
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey="5")
    assert error_code(e) == "ResourceInUseException"


def test_list_shards_pagination_and_filters(kinesis):
    name = new_stream(kinesis, shards=5)
    page = kinesis.list_shards(StreamName=name, MaxResults=2)
    ids = [s["ShardId"] for s in page["Shards"]]
    while "NextToken" in page:
        page = kinesis.list_shards(NextToken=page["NextToken"], MaxResults=2)
        ids.extend(s["ShardId"] for s in page["Shards"])
    assert ids == [f"shardId-00000000000{i}" for i in range(5)]
    after = kinesis.list_shards(
        StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000002"}
    )["Shards"]
    assert [s["ShardId"] for s in after] == ["shardId-000000000003", "shardId-000000000004"]
    with pytest.raises(ClientError) as e:
        kinesis.list_shards(StreamName=name, NextToken=page.get("NextToken", "x" * 10))
    assert error_code(e) == "InvalidArgumentException"


def test_retention_tags_and_mode(kinesis):
    name = new_stream(kinesis)
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=100)
    assert error_code(e) == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=9000)
    assert error_code(e) == "InvalidArgumentException"
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    kinesis.add_tags_to_stream(StreamName=name, Tags={"a": "1", "b": "2", "c": "3"})
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["b"])
    page = kinesis.list_tags_for_stream(StreamName=name, Limit=1)
    assert page["Tags"] == [{"Key": "a", "Value": "1"}] and page["HasMoreTags"]
    with pytest.raises(ClientError) as e:
        kinesis.add_tags_to_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(60)})
    assert error_code(e) == "InvalidArgumentException"
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    with pytest.raises(ClientError) as e:
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    assert error_code(e) == "ValidationException"


def test_consumers(kinesis):
    name = new_stream(kinesis)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    assert c["ConsumerARN"].startswith(arn + "/consumer/app:")
    d = kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
    assert (d["ConsumerName"], d["StreamARN"], d["ConsumerStatus"]) == ("app", arn, "ACTIVE")
    assert [x["ConsumerName"] for x in kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]] == ["app"]
    with pytest.raises(ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")
    assert error_code(e) == "ResourceInUseException"
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=name)
    assert error_code(e) == "ResourceInUseException"
    kinesis.deregister_stream_consumer(StreamARN=arn, ConsumerName="app")
    assert kinesis.list_stream_consumers(StreamARN=arn)["Consumers"] == []
    limits = kinesis.describe_limits()
    assert limits["ShardLimit"] == 1000 and limits["OpenShardCount"] >= 1


def test_validation_errors_follow_aws(kinesis):
    name = new_stream(kinesis)
    cases = [
        (lambda: kinesis.create_stream(StreamName="bad name", ShardCount=1), "ValidationException"),
        (lambda: kinesis.put_record(StreamName=name, Data=b"x" * (1024 * 1024 + 1), PartitionKey="k"), "ValidationException"),
        (lambda: kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501), "ValidationException"),
        (
            lambda: kinesis.put_records(StreamName=name, Records=[{"Data": b"x" * 1_000_000, "PartitionKey": "k"}] * 6),
            "InvalidArgumentException",
        ),
        (lambda: kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128)), "InvalidArgumentException"),
        (lambda: kinesis.put_record(StreamName="missing", Data=b"x", PartitionKey="k"), "ResourceNotFoundException"),
        (lambda: kinesis.get_records(ShardIterator="AAAA" * 20), "InvalidArgumentException"),
        (
            lambda: kinesis.get_shard_iterator(
                StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER"
            ),
            "InvalidArgumentException",
        ),
        (
            lambda: kinesis.get_shard_iterator(
                StreamName=name, ShardId="shardId-000000000009", ShardIteratorType="TRIM_HORIZON"
            ),
            "ResourceNotFoundException",
        ),
        (
            lambda: kinesis.get_shard_iterator(
                StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="AT_TIMESTAMP", Timestamp=time.time() + 3600
            ),
            "InvalidArgumentException",
        ),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == code, e.value.response
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName="bad name", ShardCount=1)
    assert "failed to satisfy constraint: Member must satisfy regular expression pattern" in str(e.value)
    # None of it disturbed the stream.
    kinesis.put_record(StreamName=name, Data=b"fine", PartitionKey="k")
    assert [r["Data"] for r in read_shard(kinesis, name, "shardId-000000000000")[0]] == [b"fine"]


def test_authentication_errors(server):
    wrong_secret = server.client(secret_key="wrong")
    with pytest.raises(ClientError) as e:
        wrong_secret.list_streams()
    assert error_code(e) == "InvalidSignatureException"
    unknown = server.client(access_key="nobody")
    with pytest.raises(ClientError) as e:
        unknown.list_streams()
    assert error_code(e) == "UnrecognizedClientException"


def test_everything_survives_a_restart(make_server):
    server = make_server()
    k = server.client()
    name = new_stream(k, shards=2)
    k.put_records(StreamName=name, Records=[{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(100)])
    k.split_shard(StreamName=name, ShardToSplit="shardId-000000000001", NewStartingHashKey=str(3 * 2**126))
    before = k.put_record(StreamName=name, Data=b"last", PartitionKey="p1")
    it = k.get_shard_iterator(StreamName=name, ShardId=before["ShardId"], ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    server.restart()
    k = server.client()
    shards = k.list_shards(StreamName=name)["Shards"]
    assert len(shards) == 4
    total = sum(len(read_shard(k, name, s["ShardId"])[0]) for s in shards)
    assert total == 101
    # Iterators issued before the restart still work: the token key is kept on disk.
    assert len(k.get_records(ShardIterator=it)["Records"]) >= 1
    after = k.put_record(StreamName=name, Data=b"next", PartitionKey="p1")
    assert after["ShardId"] == before["ShardId"]
    assert int(after["SequenceNumber"]) > int(before["SequenceNumber"])


def test_metrics_count_what_went_through(server, kinesis):
    import urllib.request

    name = new_stream(kinesis)
    kinesis.put_records(StreamName=name, Records=[{"Data": b"12345", "PartitionKey": "k"}] * 3)
    text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
    assert f'tarn_stream_records_in_total{{stream="{name}"}} 3' in text
    assert f'tarn_stream_bytes_in_total{{stream="{name}"}} 18' in text
    # One shard, one call: one fsync. A lone writer's calls each get their own, without waiting.
    assert f'tarn_stream_fsyncs{{stream="{name}"}} 1' in text
    for _ in range(2):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
    assert f'tarn_stream_fsyncs{{stream="{name}"}} 3' in text
    assert 'tarn_api_request_duration_seconds_count{operation="PutRecords"}' in text
