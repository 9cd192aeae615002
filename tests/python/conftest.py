"""Fixtures that run the real `tarn` binary on a free port with a temporary data directory."""

import os
import signal
import subprocess
import tempfile
import time

import boto3
import pytest
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("TEST_TARN_BINARY", os.path.join(ROOT, "target", "debug", "tarn"))
ACCESS_KEY = "test-key"
SECRET_KEY = "test-secret"
REGION = "us-east-1"


class Server:
    """One `tarn serve` process. Restartable on the same data directory."""

    def __init__(self, data_dir, extra_env=None, args=()):
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.args = list(args)
        self.proc = None
        self.endpoint = None
        self.log_path = os.path.join(data_dir + "-logs", "server.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)

    def start(self):
        env = dict(os.environ)
        env.update(
            {
                "TARN_AUTH__CREDENTIALS": f'[{{access_key_id = "{ACCESS_KEY}", secret_access_key = "{SECRET_KEY}"}}]',
                "TARN_LOG": "info",
            }
        )
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=self.data_dir + "-logs",
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("tarn listening on "):
                self.endpoint = "http://" + line.split()[-1]
                return self
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"tarn did not start; see {self.log_path}:\n" + open(self.log_path).read()[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def kill(self):
        """kill -9: no chance to flush or clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def restart(self):
        self.stop()
        return self.start()

    def client(self, service="kinesis", **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=kwargs.pop("access_key", ACCESS_KEY),
            aws_secret_access_key=kwargs.pop("secret_key", SECRET_KEY),
            config=Config(retries={"max_attempts": 1}, **kwargs),
        )


@pytest.fixture
def make_server():
    """Starts servers on fresh data directories; stops them all afterwards."""
    servers = []
    tmp = tempfile.TemporaryDirectory()

    def make(extra_env=None, args=()):
        data_dir = os.path.join(tmp.name, f"data{len(servers)}")
        os.makedirs(data_dir)
        server = Server(data_dir, extra_env, args).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.kill()
    tmp.cleanup()


@pytest.fixture(scope="module")
def server():
    """One server shared by a module's tests (each test uses its own stream names)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        os.makedirs(data_dir)
        s = Server(data_dir).start()
        yield s
        s.kill()


@pytest.fixture
def kinesis(server):
    return server.client()


def read_shard(client, stream, shard_id, iterator_type="TRIM_HORIZON", **kwargs):
    """Every record of a shard from a starting position, following NextShardIterator."""
    it = client.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType=iterator_type, **kwargs)[
        "ShardIterator"
    ]
    records = []
    while it:
        page = client.get_records(ShardIterator=it, Limit=1000)
        records.extend(page["Records"])
        if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
            return records, page
        it = page.get("NextShardIterator")
    return records, page
