"""Limits switched or shortened through the configuration, seen through boto3."""

import time
import uuid

import pytest
from botocore.exceptions import ClientError


def test_expired_iterator(make_server):
    server = make_server(extra_env={"TARN_KINESIS__ITERATOR_TTL_SECONDS": "1"})
    k = server.client()
    name = "ttl-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=name, ShardCount=1)
    it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
    time.sleep(1.5)
    with pytest.raises(ClientError) as e:
        k.get_records(ShardIterator=it["ShardIterator"])
    assert e.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert "tolerated delay of 1000 milliseconds" in e.value.response["Error"]["Message"]


def test_aws_shard_throughput_limits_when_switched_on(make_server):
    server = make_server(extra_env={"TARN_KINESIS__SHARD_THROUGHPUT_LIMITS": "true"})
    k = server.client()
    name = "thr-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=name, ShardCount=1)
    # Entries of one request are admitted at one instant: of two 1 MB records against a budget of
    # 1 MiB a second, exactly one passes, whatever the machine's speed.
    mb = b"x" * 1_000_000
    out = k.put_records(StreamName=name, Records=[{"Data": mb, "PartitionKey": "k"}, {"Data": mb, "PartitionKey": "k"}])
    assert out["FailedRecordCount"] == 1
    assert "SequenceNumber" in out["Records"][0]
    assert out["Records"][1]["ErrorCode"] == "ProvisionedThroughputExceededException"
    assert out["Records"][1]["ErrorMessage"].startswith("Rate exceeded for shard shardId-000000000000")
    # PutRecord reports the same as an error of the call; the budget refills at 1 MiB a second,
    # so back-to-back 1 MB records are refused unless a call takes most of a second.
    refused = 0
    for _ in range(5):
        try:
            k.put_record(StreamName=name, Data=mb, PartitionKey="k")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            refused += 1
    assert refused >= 1
    # The record budget: 1,000 a second; five quick batches of 500 cannot all pass.
    batch = [{"Data": b"x", "PartitionKey": "k"}] * 500
    other = "thr2-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=other, ShardCount=1)
    failed = sum(k.put_records(StreamName=other, Records=batch)["FailedRecordCount"] for _ in range(5))
    assert failed > 0


def test_a_smaller_configured_record_limit_is_enforced(make_server):
    server = make_server(extra_env={"TARN_KINESIS__MAX_PUT_RECORDS_ENTRIES": "10"})
    k = server.client()
    name = "lim-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=name, ShardCount=1)
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 11)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 10" in e.value.response["Error"]["Message"]
