"""kill -9 while writers run PutRecords: after a restart every acknowledged record is readable,
in order within its shard, and none is missing."""

import threading
import time
import uuid

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import read_shard

WRITERS = 6
BATCH = 50


def writer(server, stream, wid, acked, stop, round_):
    client = server.client(connect_timeout=2, read_timeout=5)
    n = 0
    while not stop.is_set():
        batch = [{"Data": f"{round_}:{wid}:{n + i}".encode(), "PartitionKey": f"w{wid}-{(n + i) % 5}"} for i in range(BATCH)]
        try:
            out = client.put_records(StreamName=stream, Records=batch)
        except (BotoCoreError, ClientError, OSError):
            return  # the server is gone; nothing in this batch was acknowledged
        for entry, result in zip(batch, out["Records"]):
            if "SequenceNumber" in result:
                acked.append((entry["Data"], entry["PartitionKey"], result["ShardId"], int(result["SequenceNumber"])))
        n += BATCH


def crash_once(server, stream, round_, kill_after_seconds):
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=writer, args=(server, stream, w, acked, stop, round_)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while len(acked) < 2000 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(kill_after_seconds)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    return list(acked)


def check(client, stream, acked):
    shards = client.list_shards(StreamName=stream)["Shards"]
    stored = {}
    for s in shards:
        records, _ = read_shard(client, stream, s["ShardId"])
        seqs = [int(r["SequenceNumber"]) for r in records]
        assert seqs == sorted(seqs), f"{s['ShardId']} is out of order"
        assert len(set(seqs)) == len(seqs)
        for r in records:
            stored[r["Data"]] = (s["ShardId"], int(r["SequenceNumber"]))
    missing = [a for a in acked if a[0] not in stored]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    for data, _, shard, seq in acked:
        assert stored[data] == (shard, seq), f"{data!r} moved: acknowledged {(shard, seq)}, stored {stored[data]}"
    # Per partition key, acknowledged records keep the order they were acknowledged in.
    by_key = {}
    for data, key, _, seq in acked:
        by_key.setdefault(key, []).append(seq)
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"partition key {key} reordered"
    return len(stored)


@pytest.mark.parametrize("direct_io", ["false", "true"])
def test_kill_9_loses_no_acknowledged_record(make_server, direct_io):
    # With direct I/O the log's last block is written again by every fsync round; a crash between
    # the write and the fsync must not cost what was acknowledged before.
    server = make_server(extra_env={"TARN_STORAGE__DIRECT_IO": direct_io})
    stream = "crash-" + uuid.uuid4().hex[:8]
    client = server.client()
    client.create_stream(StreamName=stream, ShardCount=4)
    all_acked = []
    for round_ in range(3):
        acked = crash_once(server, stream, round_, kill_after_seconds=0.2 * round_)
        assert len(acked) >= 2000, "writers made too little progress to test anything"
        all_acked.extend(acked)
        server.start()
        client = server.client()
        stored = check(client, stream, all_acked)
        assert stored >= len(all_acked)
    # The server still takes writes after the crashes, continuing every shard's sequence.
    out = client.put_records(StreamName=stream, Records=[{"Data": b"after", "PartitionKey": "w0-0"}])
    assert out["FailedRecordCount"] == 0
