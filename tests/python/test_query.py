"""SQL over the lake: `tarn query` and POST /v1/query on a running server. Records are visible
as soon as they are acknowledged (the undelivered tail is read beside the table's files, the
committed checkpoint the exact boundary), partition filters skip other hours' files (bytes
scanned shows it), and DuckDB reading the same Parquet files agrees."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, BINARY, REGION, SECRET_KEY

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = {interval}
size_mib = 64
{extra}
"""


def start(make_server, tmp_path, interval, extra=""):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT.format(interval=interval, extra=extra))
    return make_server(args=("--config", str(config)))


def tarn_query(server, sql, fmt="json", check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    out = subprocess.run([BINARY, "query", sql, "--format", fmt, "--endpoint", server.endpoint], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def post_query(server, body, content_type="application/json", path="/v1/query", sign=True, secret=SECRET_KEY):
    """A SigV4-signed POST, as botocore signs for any service (here `tarn`)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.endpoint + path, data=data, headers={"Content-Type": content_type})
    if sign:
        SigV4Auth(Credentials(ACCESS_KEY, secret), "tarn", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, data=data, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def vehicle(i, hour=None):
    return json.dumps(
        {
            "VehicleId": f"V{i:05d}",
            "Vendor": ["acme", "globex", "initech"][i % 3],
            "EventTime": f"2026-11-22T{(i if hour is None else hour) % 24:02d}:15:00Z",
            "Speed": i % 130,
            "Status": {"Fuel": (i % 100) / 2},
        }
    ).encode()


def put(kinesis, records):
    for start in range(0, len(records), 500):
        out = kinesis.put_records(StreamName="raw.vehicles", Records=records[start : start + 500])
        assert out["FailedRecordCount"] == 0


def test_acknowledged_records_are_queryable_before_delivery_and_exactly_once_after(make_server, tmp_path):
    # A long interval: nothing is delivered while the test looks, unless the server stops.
    server = start(make_server, tmp_path, interval=600)
    kinesis = server.client()
    put(kinesis, [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(200)])

    # The table is created by the first flush (its schema comes from the records); until then
    # the query says so.
    early = tarn_query(server, "SELECT count(*) FROM raw.vehicles", check=False)
    assert early.returncode != 0 and "raw.vehicles" in early.stderr and "not found" in early.stderr
    server.restart()  # SIGTERM flushes: the 200 records are committed, checkpoint with them
    before = time.strftime("%H", time.gmtime())
    put(kinesis := server.client(), [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(200, 250)])

    answer = json.loads(tarn_query(server, "SELECT count(*) AS n, count(DISTINCT vehicleid) AS d, sum(speed) AS s FROM raw.vehicles").stdout)
    assert answer["rows"] == [{"n": 250, "d": 250, "s": sum(i % 130 for i in range(250))}], "200 in files + 50 in the tail, each once"
    assert answer["stats"]["tail_rows"] == 50
    assert answer["stats"]["files_scanned"] >= 1 and answer["stats"]["bytes_scanned"] > 0
    # Sent again (its plan kept, the tail unchanged since) and after more records: each answer current.
    count = "SELECT count(*) AS n, max(speed) AS top FROM raw.vehicles"
    for expected in (250, 250):
        again = json.loads(tarn_query(server, count).stdout)
        assert again["rows"][0]["n"] == expected and again["stats"]["tail_rows"] == expected - 200
    put(kinesis, [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(250, 255)])
    again = json.loads(tarn_query(server, count).stdout)
    assert again["rows"][0]["n"] == 255 and again["stats"]["tail_rows"] == 55
    # New columns and nested fields read by path; the tail has the partition columns too.
    rows = json.loads(tarn_query(server, "SELECT vehicleid, status.fuel AS fuel, hour FROM raw.vehicles WHERE vehicleid = 'V00210'").stdout)["rows"]
    assert len(rows) == 1 and rows[0]["vehicleid"] == "V00210" and rows[0]["fuel"] == 5.0
    assert rows[0]["hour"] in {before, time.strftime("%H", time.gmtime())}, "the tail row's arrival hour"

    # The table as other engines see it holds only the 200 delivered rows.
    from pyiceberg.catalog.sql import SqlCatalog

    lake = os.path.join(server.data_dir, "lake")
    catalog = SqlCatalog("tarn", uri=f"sqlite:///{lake}/catalog.db", warehouse=f"file://{lake}/warehouse")
    assert len(catalog.load_table("raw.vehicles").scan().to_arrow()) == 200

    # After the next flush the same query gives the same answer, now all from files.
    server.restart()
    answer = json.loads(tarn_query(server, "SELECT count(*) AS n, count(DISTINCT vehicleid) AS d FROM raw.vehicles").stdout)
    assert answer["rows"] == [{"n": 255, "d": 255}]
    assert answer["stats"]["tail_rows"] == 0


def test_a_query_is_fresh_within_about_a_second_of_the_acknowledgement(make_server, tmp_path):
    server = start(make_server, tmp_path, interval=600)
    kinesis = server.client()
    put(kinesis, [{"Data": vehicle(0), "PartitionKey": "v0"}])
    server.restart()  # the table exists from here on
    kinesis = server.client()
    for i in range(1, 6):
        put(kinesis, [{"Data": vehicle(i), "PartitionKey": f"v{i}"}])
        status, headers, body = post_query(server, {"sql": f"SELECT vehicleid FROM raw.vehicles WHERE vehicleid = 'V{i:05d}'"})
        assert status == 200, body
        assert json.loads(body)["rows"] == [{"vehicleid": f"V{i:05d}"}], "visible at the first query after the acknowledgement"


def test_one_hour_of_a_day_reads_a_twentieth_of_the_bytes_and_duckdb_agrees(make_server, tmp_path):
    server = start(make_server, tmp_path, interval=1, extra='partition_time_field = "EventTime"')
    kinesis = server.client()
    put(kinesis, [{"Data": vehicle(i, hour=i % 24), "PartitionKey": f"v{i}"} for i in range(24 * 100)])
    deadline = time.time() + 90
    while time.time() < deadline:
        status, headers, body = post_query(server, {"sql": "SELECT count(*) AS n FROM raw.vehicles"})
        if status == 200 and json.loads(body)["rows"] == [{"n": 2400}] and headers["x-tarn-tail-rows"] == "0":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not delivered: {status} {body[:300]!r}")

    def stats(sql):
        status, headers, body = post_query(server, {"sql": sql, "format": "json"})
        assert status == 200, body
        return json.loads(body)

    full = stats("SELECT * FROM raw.vehicles")
    hour = stats("SELECT * FROM raw.vehicles WHERE day = '22' AND hour = '05'")
    assert len(full["rows"]) == 2400 and len(hour["rows"]) == 100
    assert {r["hour"] for r in hour["rows"]} == {"05"}
    assert hour["stats"]["files_pruned"] >= 23
    assert hour["stats"]["bytes_scanned"] * 20 <= full["stats"]["bytes_scanned"], (hour["stats"], full["stats"])

    # EXPLAIN names only that hour's folder.
    plan = tarn_query(server, "EXPLAIN SELECT vehicleid FROM raw.vehicles WHERE hour = '05'", fmt="table").stdout
    assert "hour=05" in plan and "hour=06" not in plan

    # DuckDB over the same files, with its own Hive partitioning, agrees per vendor.
    import duckdb

    data = os.path.join(server.data_dir, "lake", "warehouse", "raw", "vehicles", "data")
    theirs = duckdb.sql(
        f"SELECT vendor, count(*) AS n, sum(speed) AS s FROM read_parquet('{data}/**/*.parquet', hive_partitioning = true) "
        "WHERE hour = '05' GROUP BY vendor ORDER BY vendor"
    ).fetchall()
    ours = stats("SELECT vendor, count(*) AS n, sum(speed) AS s FROM raw.vehicles WHERE hour = '05' GROUP BY vendor ORDER BY vendor")["rows"]
    assert [(r["vendor"], r["n"], r["s"]) for r in ours] == [tuple(t) for t in theirs]


def test_formats_errors_and_authentication(make_server, tmp_path):
    server = start(make_server, tmp_path, interval=600)
    put(server.client(), [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(3)])
    server.restart()

    status, headers, body = post_query(server, b"SELECT vehicleid, speed FROM raw.vehicles ORDER BY vehicleid", content_type="text/plain", path="/v1/query?format=csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert body.decode().splitlines() == ["vehicleid,speed", "V00000,0", "V00001,1", "V00002,2"]
    assert headers["x-tarn-rows"] == "3"

    table = tarn_query(server, "SELECT vehicleid FROM raw.vehicles ORDER BY vehicleid LIMIT 1", fmt="table")
    assert "| V00000" in table.stdout and "1 rows in" in table.stderr

    answer = json.loads(post_query(server, {"sql": "SHOW TABLES"})[2])
    assert {"table_schema": "raw", "table_name": "vehicles"}.items() <= next(r for r in answer["rows"] if r["table_name"] == "vehicles").items()

    status, headers, body = post_query(server, {"sql": "SELECT nope FROM raw.vehicles"})
    assert status == 400 and json.loads(body)["__type"] == "InvalidRequestException" and "nope" in json.loads(body)["Message"]
    status, _, body = post_query(server, {"sql": "COPY (SELECT 1) TO '/tmp/x.csv'"})
    assert status == 400, body
    status, _, body = post_query(server, {"sql": "SELECT 1"}, sign=False)
    assert status == 403 and json.loads(body)["__type"] == "MissingAuthenticationTokenException", body
    status, _, body = post_query(server, {"sql": "SELECT 1"}, secret="wrong")
    assert status == 400 and json.loads(body)["__type"] == "InvalidSignatureException", body  # as Kinesis answers

    bad = tarn_query(server, "SELEC 1", check=False)
    assert bad.returncode != 0 and "InvalidRequestException" in bad.stderr

    # Sent again, a read reuses its kept plan and says so; /metrics counts statements by outcome.
    again = post_query(server, b"SELECT vehicleid, speed FROM raw.vehicles ORDER BY vehicleid", content_type="text/plain", path="/v1/query?format=csv")
    assert again[0] == 200 and again[2].decode().splitlines() == ["vehicleid,speed", "V00000,0", "V00001,1", "V00002,2"]
    assert again[1]["x-tarn-plan-reused"] == "true"
    assert post_query(server, {"sql": "SELECT now()"})[1]["x-tarn-plan-reused"] == "false"
    text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
    assert 'tarn_query_total{api="query",outcome="ok"} 5' in text, text
    assert 'tarn_query_total{api="query",outcome="user_error"} 3' in text, text
    assert 'tarn_query_plans_reused_total{api="query"} 1' in text, text
    assert 'tarn_query_duration_seconds_count{api="query"} 5' in text, text
