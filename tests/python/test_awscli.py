"""The AWS CLI, unchanged except for --endpoint-url."""

import base64
import json
import os
import subprocess
import sys
import uuid

from conftest import ACCESS_KEY, REGION, SECRET_KEY


def aws(server, *args):
    env = dict(os.environ)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run(
        [cli, "--endpoint-url", server.endpoint, "--output", "json", *args], env=env, capture_output=True, text=True
    )
    return out


def test_cli_round_trip(server):
    name = "cli-" + uuid.uuid4().hex[:8]
    assert aws(server, "kinesis", "create-stream", "--stream-name", name, "--shard-count", "2").returncode == 0
    assert aws(server, "kinesis", "wait", "stream-exists", "--stream-name", name).returncode == 0
    put = aws(server, "kinesis", "put-record", "--stream-name", name, "--partition-key", "a", "--data", "hello")
    assert put.returncode == 0, put.stderr
    shard = json.loads(put.stdout)["ShardId"]
    it = aws(
        server, "kinesis", "get-shard-iterator", "--stream-name", name, "--shard-id", shard,
        "--shard-iterator-type", "TRIM_HORIZON",
    )
    iterator = json.loads(it.stdout)["ShardIterator"]
    got = json.loads(aws(server, "kinesis", "get-records", "--shard-iterator", iterator).stdout)
    assert [base64.b64decode(r["Data"]) for r in got["Records"]] == [b"hello"]
    listed = json.loads(aws(server, "kinesis", "list-streams").stdout)
    assert name in listed["StreamNames"]
    missing = aws(server, "kinesis", "describe-stream", "--stream-name", "nope-" + name)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert aws(server, "kinesis", "delete-stream", "--stream-name", name).returncode == 0
