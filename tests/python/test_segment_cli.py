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
