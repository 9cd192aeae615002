"""The AWS SDK for JavaScript v3, which talks HTTP/2 (h2c here) for every call, SubscribeToShard included."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import ACCESS_KEY, ROOT, SECRET_KEY

NODE_DIR = os.path.join(ROOT, "tests", "node")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_sdk_over_http2(server):
    out = subprocess.run(
        ["node", "kinesis_h2.mjs", server.endpoint, ACCESS_KEY, SECRET_KEY],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    expected = [f"r{i}" for i in range(10)]
    assert seen["failed"] == 0
    assert seen["read"] == expected
    assert seen["subscribed"] == expected
