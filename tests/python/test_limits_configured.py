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
    batch = [{"Data": b"x", "PartitionKey": "k"}] * 500
    results = [k.put_records(StreamName=name, Records=batch) for _ in range(3)]
    failed = sum(r["FailedRecordCount"] for r in results)
    assert failed >= 400, "1,000 records a second per shard: most of the third batch is refused"
    codes = {e.get("ErrorCode") for r in results for e in r["Records"]} - {None}
    assert codes == {"ProvisionedThroughputExceededException"}
    # The byte budget, 1 MiB a second: two half-megabyte records pass, a third is refused.
    other = "thr2-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=other, ShardCount=1)
    half_mb = b"x" * 500_000
    k.put_record(StreamName=other, Data=half_mb, PartitionKey="k")
    k.put_record(StreamName=other, Data=half_mb, PartitionKey="k")
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=other, Data=half_mb, PartitionKey="k")
    assert e.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


def test_a_smaller_configured_record_limit_is_enforced(make_server):
    server = make_server(extra_env={"TARN_KINESIS__MAX_PUT_RECORDS_ENTRIES": "10"})
    k = server.client()
    name = "lim-" + uuid.uuid4().hex[:8]
    k.create_stream(StreamName=name, ShardCount=1)
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 11)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 10" in e.value.response["Error"]["Message"]
