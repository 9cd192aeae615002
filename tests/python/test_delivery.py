"""Delivery end to end: records put with boto3 into a declared segment's stream land in its
Iceberg table, read back by pyiceberg (which shares no code with Tarn) and by DuckDB over the
Hive-style folders; bad records land in the error output; kill -9 loses and duplicates nothing."""

import base64
import gzip
import glob
import json
import os
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = {interval}
size_mib = 1
"""


def start(make_server, tmp_path, interval=1):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=interval))
    return make_server(args=("--config", str(config)))


def catalog_of(server):
    from pyiceberg.catalog.sql import SqlCatalog

    lake = os.path.join(server.data_dir, "lake")
    return SqlCatalog("tarn", uri=f"sqlite:///{lake}/catalog.db", warehouse=f"file://{lake}/warehouse")


def table_rows(server, wait_for, timeout=90):
    """The table's rows once `wait_for(rows)` holds (delivery is asynchronous)."""
    deadline = time.time() + timeout
    rows, last_error = [], None
    while time.time() < deadline:
        try:
            table = catalog_of(server).load_table("raw.vehicles")
            rows = table.scan().to_arrow().to_pylist()
            if wait_for(rows):
                return table, rows
        except Exception as e:  # no table yet, or the catalog being created by Tarn meanwhile
            last_error = e
        time.sleep(0.3)
    raise AssertionError(f"delivery did not get there in {timeout} s; last saw {len(rows)} rows ({last_error!r})")


def vehicle(i, **extra):
    doc = {
        "VehicleId": f"V{i:05d}",
        "EventTime": f"2026-11-22T07:{i % 60:02d}:00Z",
        "Speed": i % 130,
        "Status": {"Fuel": (i % 100) / 2, "EngineOn": i % 3 == 0},
        "Gps": {"Lat": 48.1, "Lon": 11.5},
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def test_records_become_rows_with_evolving_schema_and_errors_in_the_error_output(make_server, tmp_path):
    server = start(make_server, tmp_path)
    kinesis = server.client()
    records = [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(300)]
    records += [{"Data": b"this is not json", "PartitionKey": "bad"}]
    # A later vehicle reports a new top-level field and a new field inside Status.
    records += [{"Data": vehicle(300, Driver="kim", Status={"Fuel": 1.0, "EngineOn": True, "Temp": 80}), "PartitionKey": "v300"}]
    out = kinesis.put_records(StreamName="raw.vehicles", Records=records)
    assert out["FailedRecordCount"] == 0
    bad_sequence = out["Records"][300]["SequenceNumber"]

    table, rows = table_rows(server, lambda rows: len(rows) >= 301)
    assert len(rows) == 301
    assert len({r["vehicleid"] for r in rows}) == 301, "each record exactly once"
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types["eventtime"] == "timestamptz"
    assert types["speed"] == "long"
    assert types["driver"] == "string"
    assert "temp" in types["status"], types["status"]
    by_id = {r["vehicleid"]: r for r in rows}
    assert by_id["V00300"]["driver"] == "kim" and by_id["V00300"]["status"]["temp"] == 80
    assert by_id["V00007"]["driver"] is None and by_id["V00007"]["status"] == {"fuel": 3.5, "engineon": False, "temp": None}
    assert by_id["V00007"]["eventtime"].isoformat() == "2026-11-22T07:07:00+00:00"

    # DuckDB's Iceberg reader sees the same rows, old files included after the struct evolved.
    metadata = table.metadata_location.removeprefix("file://")
    assert duckdb_with_iceberg().execute(
        f"select count(*), count(status.temp), count(driver) from iceberg_scan('{metadata}')"
    ).fetchone() == (301, 1, 1)

    # The checkpoint names the last delivered record of each shard.
    checkpoint = json.loads(table.current_snapshot().summary["tarn.checkpoint"])
    shards = {r["ShardId"]: int(r["SequenceNumber"]) for r in out["Records"]}
    last = {}
    for r in out["Records"]:
        last[r["ShardId"]] = max(last.get(r["ShardId"], 0), int(r["SequenceNumber"]))
    assert {k: int(v) for k, v in checkpoint.items()} == last, (checkpoint, shards)

    # Data files lie in Hive-style hour folders.
    files = glob.glob(os.path.join(server.data_dir, "lake", "warehouse", "raw", "vehicles", "data", "**", "*.parquet"), recursive=True)
    assert files
    for f in files:
        assert "/year=" in f and "/month=" in f and "/day=" in f and "/hour=" in f, f

    # The bad record is in the error output as a Firehose error document, with its raw data.
    error_files = glob.glob(os.path.join(server.data_dir, "lake", "errors", "raw", "vehicles", "format-conversion-failed", "*", "*", "*", "*", "*.json"))
    docs = [json.loads(line) for f in error_files for line in open(f)]
    assert len(docs) == 1, docs
    assert base64.b64decode(docs[0]["rawData"]) == b"this is not json"
    assert docs[0]["sequenceNumber"] == bad_sequence
    assert docs[0]["lastErrorCode"] == "DataFormatConversion.ParseError"

    # The raw backup holds every source record byte for byte, good and bad, gzip'd JSON lines.
    backups = glob.glob(os.path.join(server.data_dir, "lake", "backup", "raw", "vehicles", "*", "*", "*", "*", "*.json.gz"))
    lines = [line for f in backups for line in gzip.open(f).read().splitlines()]
    assert sorted(lines) == sorted(r["Data"].rstrip(b"\n") for r in records)


def duckdb_with_iceberg():
    """DuckDB with its Iceberg and Avro extensions loaded from their pip packages (no download)."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    con = duckdb.connect()
    for package, name in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
        path = glob.glob(os.path.join(os.path.dirname(package.__file__), "extensions", "*", f"{name}.duckdb_extension"))[0]
        con.execute(f"load '{path}'")
    return con


def test_duckdb_reads_the_hive_folders_and_the_iceberg_table(make_server, tmp_path):
    server = start(make_server, tmp_path)
    kinesis = server.client()
    kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(50)])
    kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(50, 80)])
    table, _ = table_rows(server, lambda rows: len(rows) >= 80)
    con = duckdb_with_iceberg()
    metadata = table.metadata_location.removeprefix("file://")
    count, ids, fuel = con.execute(
        f"select count(*), count(distinct vehicleid), sum(status.fuel) from iceberg_scan('{metadata}')"
    ).fetchone()
    assert (count, ids) == (80, 80)
    assert fuel == sum((i % 100) / 2 for i in range(80))
    pattern = os.path.join(server.data_dir, "lake", "warehouse", "raw", "vehicles", "data", "*", "*", "*", "*", "*.parquet")
    count, speed_sum, years = con.execute(
        f"select count(*), sum(speed), list(distinct year) from read_parquet('{pattern}', hive_partitioning = true)"
    ).fetchone()
    assert count == 80
    assert speed_sum == sum(i % 130 for i in range(80))
    assert years == [time.gmtime().tm_year]


def producer(server, acked, stop, wid):
    client = server.client(connect_timeout=2, read_timeout=5)
    n = 0
    while not stop.is_set():
        ids = [f"W{wid}-{n + i}" for i in range(50)]
        batch = [{"Data": json.dumps({"VehicleId": v, "Speed": 1}).encode(), "PartitionKey": v} for v in ids]
        try:
            out = client.put_records(StreamName="raw.vehicles", Records=batch)
        except (BotoCoreError, ClientError, OSError):
            return
        acked.extend(v for v, r in zip(ids, out["Records"]) if "SequenceNumber" in r)
        n += 50


def test_kill_9_during_ingest_and_delivery_keeps_every_record_exactly_once(make_server, tmp_path):
    server = start(make_server, tmp_path)
    acked = []
    for round_ in range(3):
        stop = threading.Event()
        threads = [threading.Thread(target=producer, args=(server, acked, stop, f"{round_}{w}")) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.5 + round_)  # several flushes commit while writers run
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        server.start()
    assert len(acked) > 1000, "the producers made too little progress to test anything"
    wanted = set(acked)
    _, rows = table_rows(server, lambda rows: wanted <= {r["vehicleid"] for r in rows}, timeout=120)
    ids = [r["vehicleid"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} rows delivered twice"
    # Records written but not acknowledged before a kill may be there too; nothing else may.
    assert all(i.startswith("W") for i in ids)


def test_storage_outage_is_retried_without_loss_and_shows_in_metrics(make_server, tmp_path):
    import urllib.request

    server = start(make_server, tmp_path)
    kinesis = server.client()
    kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(10)])
    table_rows(server, lambda rows: len(rows) >= 10)
    # Make the table's data folder unusable: a file where the folder must be.
    data = os.path.join(server.data_dir, "lake", "warehouse", "raw", "vehicles", "data")
    os.rename(data, data + ".away")
    open(data, "w").close()
    # These records bring a new column while storage is down: retries must not forget it.
    kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": vehicle(i, Extra=i), "PartitionKey": f"v{i}"} for i in range(10, 30)])

    def metric(name):
        text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") and 'table="raw.vehicles"' in line)

    deadline = time.time() + 30
    while metric("tarn_delivery_failed_flushes_total") < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert metric("tarn_delivery_failed_flushes_total") >= 2, "the flush is retried"
    assert metric("tarn_delivery_lag_milliseconds") > 0, "the lag shows while records wait"
    os.remove(data)
    os.rename(data + ".away", data)
    _, rows = table_rows(server, lambda rows: len(rows) >= 30)
    assert sorted(r["vehicleid"] for r in rows) == sorted(f"V{i:05d}" for i in range(30))
    assert sorted(r["extra"] for r in rows if r["extra"] is not None) == list(range(10, 30))


def test_compaction_rewrites_small_files_and_readers_see_each_row_once(make_server, tmp_path):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=1) + "compact_min_files = 3\n")
    server = make_server(args=("--config", str(config)))
    kinesis = server.client()
    for round_ in range(7):
        kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": vehicle(round_ * 10 + i), "PartitionKey": f"v{i}"} for i in range(10)])
        table_rows(server, lambda rows, n=(round_ + 1) * 10: len(rows) >= n)
    deadline = time.time() + 30
    while time.time() < deadline:
        table = catalog_of(server).load_table("raw.vehicles")
        if any(s.summary.operation.value == "replace" for s in table.snapshots()):
            break
        time.sleep(0.3)
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    replaces = [s for s in snapshots if s.summary.operation.value == "replace"]
    assert replaces, [s.summary.operation for s in snapshots]
    # The checkpoint rides along unchanged: compaction moves rows between files, not positions.
    parent = next(s for s in snapshots if s.snapshot_id == replaces[0].parent_snapshot_id)
    assert replaces[0].summary["tarn.checkpoint"] == parent.summary["tarn.checkpoint"]
    # Each row once, for pyiceberg and for DuckDB's Iceberg reader.
    _, rows = table_rows(server, lambda rows: len(rows) >= 70)
    assert sorted(r["vehicleid"] for r in rows) == sorted(f"V{i:05d}" for i in range(70))
    metadata = table.metadata_location.removeprefix("file://")
    assert duckdb_with_iceberg().execute(f"select count(*), count(distinct vehicleid) from iceberg_scan('{metadata}')").fetchone() == (70, 70)
    live = [task.file.file_path for task in table.scan().plan_files()]
    assert len(live) < 7, f"{len(live)} files after compaction"


def test_declared_schema_is_kept_and_extra_fields_are_ignored(make_server, tmp_path):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=1) + """
[segments.schema]
vehicleid = "string"
speed = "long"
eventtime = "timestamp"
status = { fuel = "double" }
""")
    server = make_server(args=("--config", str(config)))
    kinesis = server.client()
    records = [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(10)]
    records.append({"Data": json.dumps({"VehicleId": "X", "Speed": "fast"}).encode(), "PartitionKey": "x"})
    kinesis.put_records(StreamName="raw.vehicles", Records=records)
    table, rows = table_rows(server, lambda rows: len(rows) >= 11)
    assert [f.name for f in table.schema().fields] == ["eventtime", "speed", "status", "vehicleid", "_rescued"]
    by_id = {r["vehicleid"]: r for r in rows}
    assert by_id["V00003"]["status"] == {"fuel": 1.5} and by_id["V00003"]["speed"] == 3
    assert by_id["X"]["speed"] is None and json.loads(by_id["X"]["_rescued"]) == {"speed": "fast"}


def test_an_invalid_declared_schema_stops_the_server_with_a_clear_message(make_server, tmp_path):
    import pytest

    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=1) + '[segments.schema]\nspeed = "decimal"\n')
    with pytest.raises(RuntimeError) as e:
        make_server(args=("--config", str(config)))
    assert "declared schema" in str(e.value) and "decimal" in str(e.value)


def kpl_aggregate(records):
    """A KPL aggregated record: magic, protobuf AggregatedRecord, MD5 of the protobuf."""
    import hashlib

    def varint(n):
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    def field(number, data):
        return varint(number << 3 | 2) + varint(len(data)) + data

    message = field(1, b"key")
    for data in records:
        message += field(3, varint(1 << 3) + varint(0) + field(3, data))
    return b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()


def test_kpl_aggregated_records_are_delivered_one_row_each(make_server, tmp_path):
    server = start(make_server, tmp_path)
    kinesis = server.client()
    agg = kpl_aggregate([vehicle(i) for i in range(25)])
    kinesis.put_records(StreamName="raw.vehicles", Records=[{"Data": agg, "PartitionKey": "key"}, {"Data": vehicle(25), "PartitionKey": "p"}])
    _, rows = table_rows(server, lambda rows: len(rows) >= 26)
    assert sorted(r["vehicleid"] for r in rows) == sorted(f"V{i:05d}" for i in range(26))


def test_a_record_field_chooses_the_time_folders(make_server, tmp_path):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=1) + 'partition_time_field = "EventTime"\ncolumn_to_key = { source = "@source" }\n')
    server = make_server(args=("--config", str(config)))
    kinesis = server.client()
    events = {i: f"2026-11-{20 + i % 2}T0{i % 3}:30:00Z" for i in range(12)}
    records = [{"Data": vehicle(i, EventTime=t, **{"@source": f"unit-{i}"}), "PartitionKey": f"v{i}"} for i, t in events.items()]
    records.append({"Data": vehicle(99, EventTime="soon"), "PartitionKey": "bad"})
    out = kinesis.put_records(StreamName="raw.vehicles", Records=records)
    assert out["FailedRecordCount"] == 0

    table, rows = table_rows(server, lambda rows: len(rows) >= 12)
    assert len(rows) == 12
    # OpenX column-to-key mapping: the "@source" key fills the `source` column.
    assert sorted(r["source"] for r in rows) == sorted(f"unit-{i}" for i in range(12))
    folder_of = {}
    for task in table.scan().plan_files():
        folder = task.file.file_path.split("/data/")[1].rsplit("/", 1)[0]
        folder_of.setdefault(folder, 0)
        folder_of[folder] += task.file.record_count
    expected = {}
    for t in events.values():
        day, hour = t[8:10], t[11:13]
        key = f"year=2026/month=11/day={day}/hour={hour}"
        expected[key] = expected.get(key, 0) + 1
    assert folder_of == expected, "rows sit in their event hour, not their arrival hour"
    # The record whose EventTime is not a time is in the error output, not lost.
    deadline = time.time() + 30
    while time.time() < deadline:
        found = glob.glob(os.path.join(server.data_dir, "lake", "errors", "raw", "vehicles", "partitioning-failed", "**", "*.json"), recursive=True)
        if found:
            break
        time.sleep(0.3)
    docs = [json.loads(line) for f in found for line in open(f)]
    assert [d["sequenceNumber"] for d in docs] == [out["Records"][12]["SequenceNumber"]]
    assert "EventTime" in docs[0]["lastErrorMessage"]


def test_records_in_the_lake_leave_the_page_cache_and_others_stay(make_server, tmp_path):
    """Once delivery has committed a shard's records, the log hands their pages back to the kernel
    (new writes reuse them); a stream nothing delivers keeps its newest records cached."""
    import shutil
    import subprocess
    import urllib.request

    server = start(make_server, tmp_path)
    kinesis = server.client()
    kinesis.create_stream(StreamName="plain", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="plain", WaiterConfig={"Delay": 0.2})
    for stream in ("raw.vehicles", "plain"):
        for round_ in range(4):
            batch = [{"Data": vehicle(round_ * 250 + i), "PartitionKey": f"v{i}"} for i in range(250)]
            assert kinesis.put_records(StreamName=stream, Records=batch)["FailedRecordCount"] == 0
    table_rows(server, lambda rows: len(rows) >= 1000)

    def cached(stream):
        text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
        return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(f'tarn_stream_cached_bytes{{stream="{stream}"}}'))

    deadline = time.time() + 30
    while cached("raw.vehicles") > 0 and time.time() < deadline:
        time.sleep(0.2)
    assert cached("raw.vehicles") == 0, "every delivered record's pages were released"
    assert cached("plain") > 100_000, "a stream without delivery keeps its newest records cached"

    # The kernel agrees (fincore, from util-linux, reports a file's pages in the page cache).
    if shutil.which("fincore"):
        logs = glob.glob(os.path.join(server.data_dir, "streams", "raw.vehicles.*", "shards", "*", "*.log"))
        assert logs, "the segment's log files"
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *logs], capture_output=True, text=True, check=True)
        assert [int(v) for v in out.stdout.split()] == [0] * len(logs), out.stdout
    # Released pages are read back from disk: the stream still serves everything.
    shard = kinesis.list_shards(StreamName="raw.vehicles")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="raw.vehicles", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
    assert got and all(json.loads(r["Data"])["VehicleId"].startswith("V") for r in got)
