"""The lake on an S3-compatible service: a real one (s3s-fs, a file-backed S3 server that
verifies SigV4) started for these tests. Tarn writes its tables' data and metadata, the error
output and the raw backup there; pyiceberg reads the tables back through pyarrow's own S3 client,
and boto3 lists what landed. An outage of the service delays delivery without losing or
duplicating a record, and wrong keys are refused by the service and reported."""

import gzip
import json
import os
import socket
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import ROOT

S3S = os.environ.get("TEST_S3S_BINARY", os.path.join(ROOT, "target", "peers", "bin", "s3s-fs"))
S3_KEY, S3_SECRET, BUCKET = "s3-test-key", "s3-test-secret", "lake-bucket"

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = 1
size_mib = 1
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """One s3s-fs process over a directory; restartable on the same port and directory."""

    def __init__(self, root, log_path):
        self.root, self.log_path, self.port, self.proc = root, log_path, free_port(), None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [S3S, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", S3_KEY, "--secret-key", S3_SECRET, self.root],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("s3s-fs did not start:\n" + open(self.log_path).read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            config=Config(s3={"addressing_style": "path"}),
        )


@pytest.fixture
def s3(tmp_path):
    if not os.path.exists(S3S):
        pytest.fail(f"s3s-fs is not installed at {S3S}: scripts/test.sh installs it")
    root = tmp_path / "s3-root"
    root.mkdir()
    server = S3Server(str(root), str(tmp_path / "s3s.log")).start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


def start_tarn(make_server, tmp_path, s3, secret=S3_SECRET):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT)
    env = {
        "TARN_LAKE__URL": f"s3://{BUCKET}/tarn",
        "TARN_LAKE__ENDPOINT": s3.endpoint,
        "TARN_LAKE__ACCESS_KEY_ID": S3_KEY,
        "TARN_LAKE__SECRET_ACCESS_KEY": secret,
    }
    return make_server(extra_env=env, args=("--config", str(config)))


def catalog_of(server, s3):
    from pyiceberg.catalog.sql import SqlCatalog

    lake = os.path.join(server.data_dir, "lake")
    return SqlCatalog(
        "tarn",
        uri=f"sqlite:///{lake}/catalog.db",
        warehouse=f"s3://{BUCKET}/tarn/warehouse",
        **{
            "s3.endpoint": s3.endpoint,
            "s3.access-key-id": S3_KEY,
            "s3.secret-access-key": S3_SECRET,
            "s3.region": "us-east-1",
        },
    )


def rows_when(server, s3, wait_for, timeout=90):
    deadline = time.time() + timeout
    rows, last_error = [], None
    while time.time() < deadline:
        try:
            table = catalog_of(server, s3).load_table("raw.vehicles")
            rows = table.scan().to_arrow().to_pylist()
            if wait_for(rows):
                return table, rows
        except Exception as e:  # no table yet
            last_error = e
        time.sleep(0.3)
    log = open(server.log_path).read()[-3000:]
    raise AssertionError(f"delivery did not get there in {timeout} s; saw {len(rows)} rows ({last_error!r})\n{log}")


def vehicle(i):
    return json.dumps({"VehicleId": f"V{i:05d}", "Speed": i % 130, "Status": {"Fuel": i / 2}}).encode()


def put(kinesis, first, count):
    records = [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(first, first + count)]
    out = kinesis.put_records(StreamName="raw.vehicles", Records=records)
    assert out["FailedRecordCount"] == 0


def keys(s3, prefix):
    client, found, token = s3.client(), [], None
    while True:
        kwargs = {"Bucket": BUCKET, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        page = client.list_objects_v2(**kwargs)
        found += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return found
        token = page["NextContinuationToken"]


def test_the_lake_lives_in_s3_and_independent_readers_find_it_there(make_server, tmp_path, s3):
    server = start_tarn(make_server, tmp_path, s3)
    kinesis = server.client()
    put(kinesis, 0, 200)
    out = kinesis.put_record(StreamName="raw.vehicles", Data=b"{broken json", PartitionKey="bad")

    table, rows = rows_when(server, s3, lambda rows: len(rows) >= 200)
    assert sorted(r["vehicleid"] for r in rows) == [f"V{i:05d}" for i in range(200)]
    data_files = [t.file.file_path for t in table.scan().plan_files()]
    assert data_files and all(p.startswith(f"s3://{BUCKET}/tarn/warehouse/raw/vehicles/data/year=") for p in data_files)
    assert table.metadata_location.startswith(f"s3://{BUCKET}/tarn/warehouse/raw/vehicles/metadata/")

    # Nothing of the lake's files is on local disk; boto3 finds them in the bucket.
    local = os.path.join(server.data_dir, "lake", "warehouse")
    assert [f for _, _, files in os.walk(local) for f in files] == []
    stored = set(keys(s3, "tarn/warehouse/raw/vehicles/"))
    assert {p.removeprefix(f"s3://{BUCKET}/") for p in data_files} <= stored

    # The bad record is in the error output with its raw data; the raw backup holds all 201.
    deadline = time.time() + 30
    while time.time() < deadline and not keys(s3, "tarn/errors/raw/vehicles/format-conversion-failed/"):
        time.sleep(0.3)
    error_keys = keys(s3, "tarn/errors/raw/vehicles/format-conversion-failed/")
    assert error_keys, "the error document was not written"
    docs = [json.loads(line) for k in error_keys for line in s3.client().get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines()]
    assert [d["sequenceNumber"] for d in docs] == [out["SequenceNumber"]]
    backup_lines = []
    for k in keys(s3, "tarn/backup/raw/vehicles/"):
        assert k.endswith(".json.gz")
        backup_lines += gzip.decompress(s3.client().get_object(Bucket=BUCKET, Key=k)["Body"].read()).splitlines()
    assert len(backup_lines) == 201 and b"{broken json" in backup_lines


def test_an_s3_outage_delays_delivery_and_loses_or_duplicates_nothing(make_server, tmp_path, s3):
    server = start_tarn(make_server, tmp_path, s3)
    kinesis = server.client()
    put(kinesis, 0, 100)
    rows_when(server, s3, lambda rows: len(rows) == 100)

    s3.stop()
    put(kinesis, 100, 100)  # acknowledged while the store is down
    time.sleep(5)  # requests and whole flushes fail and are retried meanwhile
    s3.start()
    _, rows = rows_when(server, s3, lambda rows: len(rows) >= 200)
    time.sleep(2)  # any duplicate would have landed by now
    _, rows = rows_when(server, s3, lambda rows: True)
    assert sorted(r["vehicleid"] for r in rows) == [f"V{i:05d}" for i in range(200)]
    log = open(server.log_path).read()
    assert "cannot reach the object store" in log, "the outage was not reported"

    # A restart resumes from the checkpoint kept in S3 with the data.
    server.restart()
    put(server.client(), 200, 50)
    _, rows = rows_when(server, s3, lambda rows: len(rows) >= 250)
    time.sleep(2)
    _, rows = rows_when(server, s3, lambda rows: True)
    assert sorted(r["vehicleid"] for r in rows) == [f"V{i:05d}" for i in range(250)]


def test_wrong_keys_are_refused_by_the_service_and_reported(make_server, tmp_path, s3):
    server = start_tarn(make_server, tmp_path, s3, secret="not-the-secret")
    put(server.client(), 0, 10)
    deadline = time.time() + 30
    log = ""
    while time.time() < deadline:
        log = open(server.log_path).read()
        if "SignatureDoesNotMatch" in log:
            break
        time.sleep(0.3)
    assert "SignatureDoesNotMatch" in log, log[-3000:]
    assert keys(s3, "tarn/warehouse/") == []
