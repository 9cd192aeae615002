"""The catalog as Glue shows it: `tarn tables`, `tarn describe` (and GET /v1/tables), and Athena's
metadata actions through boto3 (ListDataCatalogs, ListDatabases, GetDatabase, ListTableMetadata,
GetTableMetadata): columns with the schema version that added them, Hive partitions with their
files, rows and bytes, snapshots and the delivery checkpoint."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, BINARY, SECRET_KEY

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = 600
size_mib = 64
partition_time_field = "EventTime"
"""


def tarn(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    out = subprocess.run([BINARY, *args, "--endpoint", server.endpoint], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def put(server, records):
    kinesis = server.client()
    for start in range(0, len(records), 500):
        assert kinesis.put_records(StreamName="raw.vehicles", Records=records[start : start + 500])["FailedRecordCount"] == 0


def vehicle(i, **extra):
    return {"Data": json.dumps({"VehicleId": f"V{i:05d}", "Speed": i % 130, "EventTime": f"2026-11-22T{8 + i % 3:02d}:30:00Z", **extra}).encode(), "PartitionKey": f"v{i}"}


@pytest.fixture
def lake(make_server, tmp_path):
    """raw.vehicles: 300 records over three hours, then 60 more with a new column."""
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT)
    server = make_server(args=("--config", str(config)))
    put(server, [vehicle(i) for i in range(300)])
    server.restart()
    put(server, [vehicle(i, Driver=f"D{i % 7}") for i in range(300, 360)])
    server.restart()
    return server


def test_tables_and_describe_show_rows_partitions_schema_versions_and_snapshots(lake):
    listing = json.loads(tarn(lake, "tables", "--format", "json").stdout)["tables"]
    assert [(t["layer"], t["name"]) for t in listing] == [("raw", "vehicles")]
    summary = listing[0]
    assert summary["rows"] == 360 and summary["partitions"] == 3 and summary["snapshots"] == 2 and summary["files"] >= 3
    text = tarn(lake, "tables").stdout
    assert "raw.vehicles" in text and "360" in text

    d = json.loads(tarn(lake, "describe", "raw.vehicles", "--format", "json").stdout)
    columns = {c["name"]: c for c in d["columns"]}
    assert columns["vehicleid"]["type_name"] == "string" and columns["speed"]["type_name"] == "bigint"
    assert columns["eventtime"]["type_name"] == "timestamp", "timestamps are typed, not strings"
    assert columns["driver"]["since_schema"] > columns["vehicleid"]["since_schema"], "the column added by the second flush"
    assert d["schema_versions"] == 2
    assert d["partition_keys"] == ["year", "month", "day", "hour"]
    by_hour = {p["values"][3]: p for p in d["partitions"]}
    assert sorted(by_hour) == ["08", "09", "10"]
    assert by_hour["08"]["rows"] == sum(1 for i in range(360) if i % 3 == 0) and by_hour["08"]["folder"] == "year=2026/month=11/day=22/hour=08"
    assert sum(p["rows"] for p in d["partitions"]) == d["rows"] == 360
    assert sum(p["bytes"] for p in d["partitions"]) == d["bytes"] > 0
    assert [s["added_rows"] for s in d["snapshots"]] == [300, 60] and d["snapshots"][-1]["total_rows"] == 360
    assert d["snapshots"][1]["parent_id"] == d["snapshots"][0]["id"] and d["current_snapshot_id"] == d["snapshots"][1]["id"]
    assert len(d["checkpoint"]) == 2, "the last delivered position of both shards"

    text = tarn(lake, "describe", "raw.vehicles").stdout
    assert "Partitions (year, month, day, hour)" in text and "year=2026/month=11/day=22/hour=09" in text
    assert "driver" in text and "since schema" in text

    missing = tarn(lake, "describe", "raw.nothing", check=False)
    assert missing.returncode != 0 and "raw.nothing" in missing.stderr and "not found" in missing.stderr
    try:
        urllib.request.urlopen(lake.endpoint + "/v1/tables", timeout=30)
        raise AssertionError("an unsigned call was answered")
    except urllib.error.HTTPError as e:
        assert e.code == 403


def test_athena_metadata_actions_show_the_lake_catalog(lake):
    athena = lake.client("athena")
    assert [c["CatalogName"] for c in athena.list_data_catalogs()["DataCatalogsSummary"]] == ["AwsDataCatalog"]
    assert [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]] == ["raw"]
    assert athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="raw")["Database"]["Name"] == "raw"

    tables = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="raw")["TableMetadataList"]
    assert [t["Name"] for t in tables] == ["vehicles"]
    assert athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="raw", Expression="click*")["TableMetadataList"] == []
    table = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="raw", TableName="vehicles")["TableMetadata"]
    assert {c["Name"]: c["Type"] for c in table["Columns"]}["driver"] == "string"
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("year", "string"), ("month", "string"), ("day", "string"), ("hour", "string")]
    assert table["Parameters"]["table_type"] == "ICEBERG" and table["TableType"] == "EXTERNAL_TABLE"

    for call, kwargs in [
        (athena.get_table_metadata, {"CatalogName": "AwsDataCatalog", "DatabaseName": "raw", "TableName": "nothing"}),
        (athena.get_database, {"CatalogName": "AwsDataCatalog", "DatabaseName": "nothing"}),
        (athena.list_table_metadata, {"CatalogName": "AwsDataCatalog", "DatabaseName": "nothing"}),
    ]:
        with pytest.raises(ClientError) as missing:
            call(**kwargs)
        assert missing.value.response["Error"]["Code"] == "MetadataException" and "nothing" in missing.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as other_catalog:
        athena.list_databases(CatalogName="hive_elsewhere")
    assert other_catalog.value.response["Error"]["Code"] == "InvalidRequestException"
