"""`tarn segment` manages segments on a running server; records put on the segment's stream with
boto3 reach its table."""

import json
import os
import subprocess

from conftest import ACCESS_KEY, BINARY, SECRET_KEY
from test_firehose import rows_of


def tarn(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    out = subprocess.run([BINARY, "segment", *args, "--endpoint", server.endpoint], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_segment_create_list_describe_delete(make_server):
    server = make_server()
    arn = tarn(server, "create", "raw.events", "--shards", "2", "--interval-seconds", "1", "--backup").stdout.strip()
    assert arn.endswith(":deliverystream/raw.events")
    assert tarn(server, "list").stdout.split() == ["raw.events"]
    described = json.loads(tarn(server, "describe", "raw.events").stdout)
    s3 = described["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["BufferingHints"]["IntervalInSeconds"] == 1 and s3["S3BackupMode"] == "Enabled"

    kinesis = server.client()
    assert len(kinesis.list_shards(StreamName="raw.events")["Shards"]) >= 2
    out = kinesis.put_records(StreamName="raw.events", Records=[{"Data": json.dumps({"n": i}).encode(), "PartitionKey": str(i)} for i in range(50)])
    assert out["FailedRecordCount"] == 0
    rows = rows_of(server, "raw.events", 50)
    assert sorted(r["n"] for r in rows) == list(range(50))

    again = tarn(server, "create", "raw.events", check=False)
    assert again.returncode != 0 and "ResourceInUseException" in again.stderr
    bad = tarn(server, "create", "nolayer", check=False)
    assert bad.returncode != 0 and "<layer>.<name>" in bad.stderr
    tarn(server, "delete", "raw.events")
    assert tarn(server, "list").stdout.split() == []
    missing = tarn(server, "describe", "raw.events", check=False)
    assert "ResourceNotFoundException" in missing.stderr


def generate(server, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    out = subprocess.run([BINARY, "generate", *args, "--endpoint", server.endpoint], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_generate_fills_a_delivery_stream_and_a_stream(make_server):
    from conftest import read_shard

    server = make_server()
    tarn(server, "create", "raw.vehicles", "--interval-seconds", "1")
    out = generate(server, "vehicles", "--delivery-stream", "raw.vehicles", "--count", "1200", "--rate", "20000")
    assert "1200 records sent, 0 refused" in out.stderr
    rows = rows_of(server, "raw.vehicles", 1200)
    assert len(rows) == 1200
    first = rows[0]
    assert first["eventtime"].tzinfo is not None, "ISO-8601 event times become timestamps"
    assert set(first["status"]) == {"engine", "fuel", "doors"} and set(first["gps"]) == {"lat", "lon", "alt"}

    kinesis = server.client()
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    generate(server, "clicks", "--stream", "clicks", "--count", "300", "--rate", "10000", "--batch", "100")
    records, _ = read_shard(kinesis, "clicks", "shardId-000000000000")
    assert len(records) == 300
    click = json.loads(records[0]["Data"])
    assert {"SessionId", "Page", "Timestamp"} <= set(click)
