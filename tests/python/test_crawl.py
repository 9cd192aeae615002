"""The crawler: `tarn crawl` on a hand-made tree of gzip'd JSON lines, CSV and Parquet files in
Hive folders registers one table per folder, with typed timestamps and partitions; SQL reads the
files as they are (partition filters skip folders); a re-run after adding a partition and a
column adds them without touching the files already there."""

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from test_catalog import tarn
from test_query import post_query


def sql(server, statement):
    status, headers, body = post_query(server, {"sql": statement, "format": "json"})
    assert status == 200, body
    answer = json.loads(body)
    answer["rows"] = [list(r.values()) if isinstance(r, dict) else r for r in answer["rows"]]
    return answer, headers


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)


def clicks(day, n, extra=None):
    return "".join(json.dumps({"User": f"u{i}", "At": f"2026-11-{day}T{i % 24:02d}:00:00Z", "Page": {"Path": f"/p{i % 5}"}, **(extra or {})}) + "\n" for i in range(n))


def test_crawl_registers_json_csv_and_parquet_folders_and_a_rerun_adds_partitions_and_columns(make_server):
    server = make_server()
    root = os.path.join(server.data_dir, "lake", "landing")
    write(os.path.join(root, "clicks", "dt=2026-11-21", "part-0.json.gz"), gzip.compress(clicks(21, 100).encode()))
    write(os.path.join(root, "clicks", "dt=2026-11-22", "part-0.json"), clicks(22, 50))
    write(os.path.join(root, "orders", "region=eu", "a.csv"), "Id,Amount,Placed\n" + "".join(f"{i},{i}.5,2026-11-22T10:{i % 60:02d}:00\n" for i in range(30)))
    write(os.path.join(root, "orders", "region=us", "b.csv.gz"), gzip.compress(("Id,Amount,Placed\n" + "".join(f"{i},{i}.25,2026-11-22T11:00:00\n" for i in range(30, 40))).encode()))
    os.makedirs(os.path.join(root, "metrics"))
    pq.write_table(pa.table({"host": ["a", "b", "c"], "load": [0.5, 1.5, 2.5]}), os.path.join(root, "metrics", "m.parquet"))
    write(os.path.join(root, "clicks", "_SUCCESS"), "")

    out = tarn(server, "crawl", "landing", "--layer", "landing")
    assert "landing.clicks (new)" in out.stdout and "landing.orders (new)" in out.stdout, out.stdout

    answer, _ = sql(server, "SELECT count(*) AS n, count(DISTINCT dt) AS days, min(at) AS first FROM landing.clicks")
    assert answer["rows"][0][:2] == [150, 2]
    assert answer["rows"][0][2].startswith("2026-11-21T00:00:00"), answer["rows"][0]
    typed, _ = sql(server, "SELECT arrow_typeof(at) AS t, page.path AS p FROM landing.clicks LIMIT 1")
    assert typed["rows"][0][0].startswith("Timestamp"), "timestamps are typed, not strings"
    one_day, headers = sql(server, "SELECT count(*) AS n FROM landing.clicks WHERE dt = '2026-11-22'")
    assert one_day["rows"][0] == [50]
    assert headers["x-tarn-files-pruned"] == "1" and headers["x-tarn-files-scanned"] == "1"

    orders, _ = sql(server, "SELECT region, count(*) AS n, sum(amount) AS total FROM landing.orders GROUP BY region ORDER BY region")
    assert orders["rows"] == [["eu", 30, sum(i + 0.5 for i in range(30))], ["us", 10, sum(i + 0.25 for i in range(30, 40))]]
    metrics, _ = sql(server, "SELECT sum(load) AS s FROM landing.metrics")
    assert metrics["rows"] == [[4.5]]

    # A new day with a new field; the crawler reads only the new file.
    write(os.path.join(root, "clicks", "dt=2026-11-23", "part-0.json"), clicks(23, 10, {"Referrer": "search"}))
    again = json.loads(tarn(server, "crawl", "landing", "--layer", "landing", "--format", "json").stdout)
    report = next(t for t in again["tables"] if t["table"] == "landing.clicks")
    assert (report["created"], report["files_added"], report["files"]) == (False, 1, 3)
    assert report["partitions_added"] == ["dt=2026-11-23"] and report["columns_added"] == ["referrer"]
    by_day, _ = sql(server, "SELECT dt, count(*) AS n, count(referrer) AS r FROM landing.clicks GROUP BY dt ORDER BY dt")
    assert by_day["rows"] == [["2026-11-21", 100, 0], ["2026-11-22", 50, 0], ["2026-11-23", 10, 10]]

    # In the catalog: `tarn tables`, `tarn describe`, Athena's metadata actions; not in the
    # Iceberg REST catalog (they are files, not Iceberg tables).
    tables = {f"{t['layer']}.{t['name']}": t for t in json.loads(tarn(server, "tables", "--format", "json").stdout)["tables"]}
    assert tables["landing.clicks"]["format"] == "json" and tables["landing.orders"]["format"] == "csv"
    assert (tables["landing.clicks"]["rows"], tables["landing.clicks"]["files"], tables["landing.clicks"]["partitions"]) == (160, 3, 3)
    assert "json (crawled)" in tarn(server, "tables").stdout
    described = json.loads(tarn(server, "describe", "landing.orders", "--format", "json").stdout)
    assert described["kind"] == "crawled" and described["rows"] == 40
    assert [(p["folder"], p["values"], p["rows"]) for p in described["partitions"]] == [("region=eu", ["eu"], 30), ("region=us", ["us"], 10)]
    types = {c["name"]: c["type_name"] for c in described["columns"]}
    assert types == {"id": "bigint", "amount": "double", "placed": "timestamp", "region": "string"}, types
    assert "since crawl 1" in tarn(server, "describe", "landing.clicks").stdout

    athena = server.client("athena")
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="landing")["TableMetadataList"]
    assert [t["Name"] for t in listed] == ["clicks", "metrics", "orders"]
    clicks_meta = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="landing", TableName="clicks")["TableMetadata"]
    assert [c["Name"] for c in clicks_meta["Columns"]] == ["user", "at", "page", "referrer"]
    assert dict((c["Name"], c["Type"]) for c in clicks_meta["Columns"])["page"] == "struct<path:string>"
    assert [k["Name"] for k in clicks_meta["PartitionKeys"]] == ["dt"]
    assert clicks_meta["Parameters"]["classification"] == "json" and clicks_meta["Parameters"]["recordCount"] == "160"
    databases = [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]
    assert "landing" in databases

    from test_rest_catalog import signed
    status, rest = signed(server, "GET", "/iceberg/v1/namespaces/landing/tables", None)
    assert (status, rest["identifiers"]) == (200, [])

    # Listed beside the lake's tables.
    listed = {(t[0], t[1]) for t in sql(server, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'landing'")[0]["rows"]}
    assert listed == {("landing", "clicks"), ("landing", "orders"), ("landing", "metrics")}

    bad = tarn(server, "crawl", "nowhere", "--layer", "landing", check=False)
    assert bad.returncode != 0 and "no files" in bad.stderr


def test_a_crawler_in_the_config_runs_at_start_and_on_its_interval(make_server, tmp_path):
    import time

    config = tmp_path / "tarn.toml"
    config.write_text('[[crawlers]]\nlocation = "drop"\nlayer = "landing"\ntable = "events"\ninterval_minutes = 60\n')
    # The folder is filled, then the server restarted: a crawler's first run comes at its start.
    server = make_server(args=("--config", str(config)))
    root = os.path.join(server.data_dir, "lake", "drop")
    write(os.path.join(root, "day=1", "e.json"), clicks(21, 7))
    server.restart()
    deadline = time.time() + 60
    while True:
        status, _, body = post_query(server, {"sql": "SELECT count(*) AS n FROM landing.events", "format": "json"})
        if status == 200:
            break
        assert time.time() < deadline, body
        time.sleep(0.2)
    assert list(json.loads(body)["rows"][0].values()) == [7]
