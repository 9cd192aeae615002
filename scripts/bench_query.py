#!/usr/bin/env python3
"""Query benchmark: the same queries over the same Parquet files in Tarn (POST /v1/query) and in
DuckDB (read_parquet with Hive partitioning), in one run, with both times and their ratio.

Starts `tarn serve` on a free port with a temporary data directory, puts N vehicle records whose
EventTime spreads over the 24 hours of one day (the segment's time folders follow EventTime),
waits until all are delivered into files, then runs each query once to warm up and R times
measured, Tarn and DuckDB in turn: the median of the wall-clock time seen by the client (for Tarn: signing, one request on
a kept-alive HTTP connection as boto3 uses, and reading the CSV answer) and, beside it, the
engine's own time from `x-tarn-elapsed-ms`.

    scripts/test.sh --venv-only   # or any Python with boto3 and duckdb
    python3 scripts/bench_query.py --binary target/release/tarn --rows 1000000
"""

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse

import boto3
import duckdb
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

KEY, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 4
[segments.delivery]
interval_seconds = 10
size_mib = 64
partition_time_field = "EventTime"
compact_min_files = 2
"""

TRANSPORT_FLOOR = "constant (transport floor)"
# The target: within this factor of DuckDB on every query over the table.
TARGET_RATIO = 1.5

QUERIES = [
    # Reads no table: the fixed cost of a request (signing, HTTP, CSV) that in-process DuckDB does not pay.
    (TRANSPORT_FLOOR, "SELECT 1 AS one"),
    ("count", "SELECT count(*) AS n FROM {t}"),
    ("group by vendor", "SELECT vendor, count(*) AS n, avg(speed) AS speed FROM {t} GROUP BY vendor ORDER BY vendor"),
    ("per hour, nested field", "SELECT hour, max(speed) AS top, avg(status.fuel) AS fuel FROM {t} GROUP BY hour ORDER BY hour"),
    ("top 10 vehicles", "SELECT vehicleid, count(*) AS n FROM {t} GROUP BY vehicleid ORDER BY n DESC, vehicleid LIMIT 10"),
    ("one vehicle", "SELECT vehicleid, eventtime, speed FROM {t} WHERE vehicleid = 'VIN000123' ORDER BY eventtime"),
    ("one hour of 24", "SELECT vendor, count(*) AS n, avg(speed) AS speed FROM {t} WHERE day = '22' AND hour = '05' GROUP BY vendor ORDER BY vendor"),
    ("distinct vehicles", "SELECT count(DISTINCT vehicleid) AS n FROM {t}"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vehicle(rng, i):
    hour = i % 24
    return {
        "VehicleId": f"VIN{rng.randrange(5000):06d}",
        "Vendor": rng.choice(["acme", "globex", "initech", "umbrella"]),
        "EventTime": f"2026-11-22T{hour:02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "Speed": rng.randrange(180),
        "Odometer": round(rng.uniform(0, 300000), 1),
        "Status": {"Engine": rng.choice(["on", "off", "idle"]), "Fuel": round(rng.uniform(0, 100), 1)},
        "Gps": {"Lat": round(rng.uniform(47, 49), 5), "Lon": round(rng.uniform(10, 13), 5)},
    }


def produce(endpoint, rows, threads=4):
    def work(part):
        client = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY,
                              aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 5}))
        rng = random.Random(part)
        for start in range(part * 500, rows, threads * 500):
            batch = [{"Data": json.dumps(vehicle(rng, i)).encode(), "PartitionKey": str(i)} for i in range(start, min(start + 500, rows))]
            out = client.put_records(StreamName="raw.vehicles", Records=batch)
            if out["FailedRecordCount"]:
                raise SystemExit(f"{out['FailedRecordCount']} records refused")

    pool = [threading.Thread(target=work, args=(p,)) for p in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def tarn_query(endpoint, sql):
    return signed_post(endpoint, "/v1/query", {"sql": sql, "format": "csv"})


_connections = threading.local()


def signed_post(endpoint, path, payload):
    """POST with SigV4 on this thread's kept-alive connection (a new one after an error)."""
    data = json.dumps(payload).encode()
    request = AWSRequest(method="POST", url=endpoint + path, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, SECRET), "tarn", REGION).add_auth(request)
    conn = getattr(_connections, "conn", None)
    if conn is None:
        url = urllib.parse.urlsplit(endpoint)
        conn = _connections.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    try:
        conn.request("POST", path, body=data, headers=dict(request.headers.items()))
        r = conn.getresponse()
        body = r.read()
    except Exception:
        conn.close()
        _connections.conn = None
        raise
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status}: {body[:500]!r}")
    return body, {k.lower(): v for k, v in r.getheaders()}


def interleaved(fns, repeat):
    """Medians of each of `fns`' wall-clock times (ms), after one warm-up each, the runs taken in
    turn (a, b, a, b, ...) so that the machine's speed, which drifts over minutes, weighs on each
    the same."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(t) for t in times]


def timed(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def freshness(endpoint, probes):
    """Acknowledgement to visible in a query, while a producer keeps putting records."""
    stop = threading.Event()
    sent = [0]

    def ingest():
        client = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY,
                              aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 5}))
        rng = random.Random(7)
        while not stop.is_set():
            batch = [{"Data": json.dumps(vehicle(rng, i)).encode(), "PartitionKey": str(i)} for i in range(500)]
            client.put_records(StreamName="raw.vehicles", Records=batch)
            sent[0] += 500

    producer = threading.Thread(target=ingest)
    producer.start()
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    latencies = []
    t_start = time.time()
    try:
        for n in range(probes):
            record = dict(vehicle(random.Random(n), n), VehicleId=f"PROBE{n:04d}")
            client.put_record(StreamName="raw.vehicles", Data=json.dumps(record).encode(), PartitionKey=f"probe{n}")
            acked = time.perf_counter()
            while True:
                body, _ = tarn_query(endpoint, f"SELECT count(*) FROM raw.vehicles WHERE vehicleid = 'PROBE{n:04d}'")
                if body.decode().split()[-1] == "1":
                    latencies.append((time.perf_counter() - acked) * 1000)
                    break
    finally:
        stop.set()
        producer.join()
    rate = sent[0] / (time.time() - t_start)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"\nfreshness (acknowledged -> visible in a query), {probes} probes while {rate:,.0f} records/s were put: "
          f"p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {latencies[-1]:.0f} ms")


def athena_api(endpoint, repeat):
    """The Athena API path: start -> SUCCEEDED as boto3 code polls it, and paging a large result."""
    athena = boto3.client("athena", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET)

    def run(sql):
        qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "raw"})["QueryExecutionId"]
        while True:
            state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            if state["Status"]["State"] not in ("QUEUED", "RUNNING"):
                return qid, state
            time.sleep(0.005)

    latencies = []
    for _ in range(max(repeat, 20)):
        t0 = time.perf_counter()
        _, state = run("SELECT vendor, count(*) FROM vehicles GROUP BY vendor")
        latencies.append((time.perf_counter() - t0) * 1000)
        assert state["Status"]["State"] == "SUCCEEDED", state["Status"]
    latencies.sort()
    print(f"\nAthena API, group by vendor: start -> SUCCEEDED (polling every 5 ms) p50 {latencies[len(latencies) // 2]:.1f} ms, "
          f"max {latencies[-1]:.1f} ms over {len(latencies)} runs; engine time {state['Statistics']['EngineExecutionTimeInMillis']} ms, "
          f"{state['Statistics']['DataScannedInBytes']:,} bytes scanned")
    t0 = time.perf_counter()
    qid, state = run("SELECT vehicleid, vendor, speed, status FROM vehicles LIMIT 100000")
    ran = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = 0
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        rows += len(page["ResultSet"]["Rows"])
    paged = time.perf_counter() - t0
    print(f"Athena API, 100,000 rows x 4 columns: query {ran * 1000:.0f} ms, GetQueryResults pages of 1,000 through boto3: "
          f"{rows - 1:,} rows in {paged:.2f} s = {(rows - 1) / paged:,.0f} rows/s")


ETL_SELECT = ("SELECT vehicleid AS vehicle_id, eventtime AS event_time, speed, odometer, status.engine AS engine, "
              "status.fuel AS fuel, gps.lat AS lat, gps.lon AS lon, vendor FROM {t}")


def etl(endpoint, con, tmp, repeat):
    """The seeds' Glue job as one statement: flatten, repartition by vendor, ZSTD Parquet."""
    ours, theirs = [], []
    for run in range(repeat):
        sql = (f"CREATE TABLE curated.by_vendor_{run} WITH (format = 'PARQUET', partitioned_by = ARRAY['vendor'], "
               f"write_compression = 'ZSTD') AS " + ETL_SELECT.format(t="raw.vehicles"))
        t0 = time.perf_counter()
        _, headers = tarn_query(endpoint, sql)
        ours.append((time.perf_counter() - t0) * 1000)
        rows, files, written = (int(headers[h]) for h in ("x-tarn-rows-written", "x-tarn-files-written", "x-tarn-bytes-written"))
        out = os.path.join(tmp, f"duckdb_etl_{run}")
        t0 = time.perf_counter()
        con.execute(f"COPY ({ETL_SELECT.format(t='v')}) TO '{out}' (FORMAT PARQUET, PARTITION_BY (vendor), COMPRESSION ZSTD)")
        theirs.append((time.perf_counter() - t0) * 1000)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"\nETL (CREATE TABLE AS: flatten, partition by vendor, ZSTD), {rows:,} rows -> {files} files, {written / 1e6:.1f} MB: "
          f"Tarn {o:.0f} ms ({rows / o * 1000:,.0f} rows/s, Iceberg commit included) vs DuckDB COPY ... PARTITION_BY {t:.0f} ms "
          f"= {o / t:.2f}x (median of {repeat})")


def crawl_bench(endpoint, con, lake, repeat):
    """The crawler on files another tool wrote (DuckDB: JSON lines and CSV, one folder per hour),
    then the same query over them in Tarn (files read in place) and DuckDB."""
    print("\n| crawled files | files | MB | first crawl | files/s | MB/s | re-crawl, nothing new | query: Tarn ms | DuckDB ms | Tarn / DuckDB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = [
        ("json", "SELECT * EXCLUDE (year, month, day, hour) FROM v", "FORMAT JSON", "read_json_auto('{d}/*/*.json', hive_partitioning = true)"),
        ("csv", "SELECT vehicleid, vendor, eventtime, speed FROM v", "FORMAT CSV, HEADER", "read_csv_auto('{d}/*/*.csv', hive_partitioning = true)"),
    ]
    hours = [h for (h,) in con.execute("SELECT DISTINCT hour FROM v ORDER BY hour").fetchall()]
    for kind, select, options, reader in kinds:
        folder = os.path.join(lake, "landing", f"vehicles_{kind}")
        # One file per hour and vendor-initial half, in Hive folders (DuckDB cannot partition JSON).
        for h in hours:
            os.makedirs(os.path.join(folder, f"hour={h}"))
            for part, cond in enumerate(["vendor < 'm'", "vendor >= 'm'"]):
                out = os.path.join(folder, f"hour={h}", f"part-{part}.{kind}")
                con.execute(f"COPY ({select} WHERE hour = '{h}' AND {cond}) TO '{out}' ({options})")
        files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
        size = sum(os.path.getsize(f) for f in files)
        request = {"location": f"landing/vehicles_{kind}", "layer": "landing", "table": f"vehicles_{kind}"}
        t0 = time.perf_counter()
        signed_post(endpoint, "/v1/crawl", request)
        first = time.perf_counter() - t0
        again = timed(lambda: signed_post(endpoint, "/v1/crawl", request), repeat)
        query = "SELECT hour, count(*) AS n, avg(speed) AS speed FROM {t} GROUP BY hour ORDER BY hour"
        ours, theirs = interleaved(
            [
                lambda: tarn_query(endpoint, query.format(t=f"landing.vehicles_{kind}")),
                lambda: con.execute(query.format(t=reader.format(d=folder))).fetchall(),
            ],
            repeat,
        )
        print(f"| {kind} | {len(files)} | {size / 1e6:.1f} | {first * 1000:.0f} ms | {len(files) / first:,.0f} | "
              f"{size / 1e6 / first:.0f} | {again:.1f} ms | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/tarn")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--probes", type=int, default=50, help="freshness probes while ingest runs (0: none)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "tarn.toml")
        with open(config, "w") as f:
            f.write(SEGMENT)
        env = dict(os.environ, TARN_AUTH__CREDENTIALS=f'[{{access_key_id = "{KEY}", secret_access_key = "{SECRET}"}}]', TARN_LOG="warn")
        port = free_port()
        server = subprocess.Popen([args.binary, "serve", "--config", config, "--data-dir", os.path.join(tmp, "data"),
                                   "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE, stderr=sys.stderr)
        try:
            server.stdout.readline()
            endpoint = f"http://127.0.0.1:{port}"
            t0 = time.time()
            produce(endpoint, args.rows)
            print(f"put {args.rows} records in {time.time() - t0:.1f} s", file=sys.stderr)
            while True:
                try:
                    body, headers = tarn_query(endpoint, "SELECT count(*) FROM raw.vehicles")
                    if body.decode().split()[-1] == str(args.rows) and headers["x-tarn-tail-rows"] == "0":
                        break
                except Exception:
                    pass
                time.sleep(1)
            time.sleep(15)  # let compaction settle the small files
            data = os.path.join(tmp, "data", "lake", "warehouse", "raw", "vehicles", "data")
            files = [os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs if f.endswith(".parquet")]
            total = sum(os.path.getsize(f) for f in files)
            print(f"delivered; {len(files)} Parquet files, {total / 1e6:.1f} MB on disk (files of expired snapshots included)", file=sys.stderr)
            # DuckDB reads the files of the table's current snapshot only (compaction leaves replaced files until expiry).
            _, _ = tarn_query(endpoint, "SELECT 1")
            from pyiceberg.catalog.sql import SqlCatalog

            lake = os.path.join(tmp, "data", "lake")
            catalog = SqlCatalog("tarn", uri=f"sqlite:///{lake}/catalog.db", warehouse=f"file://{lake}/warehouse")
            live = [t.file.file_path.removeprefix("file://") for t in catalog.load_table("raw.vehicles").scan().plan_files()]
            con = duckdb.connect()
            con.execute("SET threads = 2")
            listing = ", ".join(f"'{p}'" for p in live)
            con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true, hive_types_autocast = false)")

            print(f"\n{args.rows} rows in {len(live)} live files; median of {args.repeat} runs after one warm-up\n")
            print("| query | Tarn ms | DuckDB ms | Tarn / DuckDB | Tarn engine ms | Tarn bytes scanned |")
            print("|---|---:|---:|---:|---:|---:|")
            bytes_of = {}
            ratios = {}
            for name, sql in QUERIES:
                ours_sql = sql.format(t="raw.vehicles")
                theirs_sql = sql.format(t="v")
                engine = []
                ours, theirs = interleaved(
                    [
                        lambda: engine.append(float(tarn_query(endpoint, ours_sql)[1]["x-tarn-elapsed-ms"])),
                        lambda: con.execute(theirs_sql).to_arrow_table(),
                    ],
                    args.repeat,
                )
                body, headers = tarn_query(endpoint, ours_sql)
                mine = sorted(body.decode().strip().splitlines()[1:])
                other = con.execute(theirs_sql).to_arrow_table().to_pylist()
                same = len(mine) == len(other)
                bytes_of[name] = int(headers["x-tarn-bytes-scanned"])
                flag = "" if same else " (row counts differ!)"
                print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x{flag} | {statistics.median(engine[1:]):.1f} | {bytes_of[name]:,} |")
                if name != TRANSPORT_FLOOR:
                    ratios[name] = ours / theirs
            over = [f"{name} {r:.2f}x" for name, r in ratios.items() if r > TARGET_RATIO]
            print(f"\nqueries over the table within {TARGET_RATIO}x of DuckDB: {len(ratios) - len(over)} of {len(ratios)}"
                  + (f" (over: {', '.join(over)})" if over else ""))
            _, full = tarn_query(endpoint, "SELECT * FROM raw.vehicles")
            _, hour = tarn_query(endpoint, "SELECT * FROM raw.vehicles WHERE day = '22' AND hour = '05'")
            fb, hb = int(full["x-tarn-bytes-scanned"]), int(hour["x-tarn-bytes-scanned"])
            print(f"\nfull scan (SELECT *): {fb:,} bytes; one hour of 24: {hb:,} bytes = 1/{fb / max(hb, 1):.1f} of the full scan")
            etl(endpoint, con, tmp, args.repeat)
            crawl_bench(endpoint, con, lake, args.repeat)
            athena_api(endpoint, args.repeat)
            if args.probes:
                freshness(endpoint, args.probes)
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
