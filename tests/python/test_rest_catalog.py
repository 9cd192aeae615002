"""The Iceberg REST catalog: pyiceberg's RestCatalog (SigV4-signed, service name `tarn`) lists the
lake's namespaces and tables and reads a table's rows from the files the metadata names; writes
are refused as the REST spec's UnsupportedOperationException, and unsigned calls as forbidden."""

import json
import urllib.error
import urllib.request

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = 600
"""


def rest_catalog(server, secret=SECRET_KEY):
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog(
        "tarn",
        **{
            "uri": server.endpoint + "/iceberg",
            "rest.sigv4-enabled": "true",
            "rest.signing-name": "tarn",
            "rest.signing-region": REGION,
            "rest.sigv4.max-retries": "0",
            "client.access-key-id": ACCESS_KEY,
            "client.secret-access-key": secret,
            "client.region": REGION,
        },
    )


def signed(server, method, path, body):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body).encode()
    request = AWSRequest(method=method, url=server.endpoint + path, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "tarn", REGION).add_auth(request)
    prepared = urllib.request.Request(request.url, data=data, headers=dict(request.headers.items()), method=method)
    try:
        with urllib.request.urlopen(prepared, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_pyiceberg_reads_the_lake_through_the_rest_catalog(make_server, tmp_path):
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT)
    server = make_server(args=("--config", str(config)))
    kinesis = server.client()
    records = [{"Data": json.dumps({"VehicleId": f"V{i:04d}", "Speed": i}).encode(), "PartitionKey": f"v{i}"} for i in range(250)]
    for start in range(0, 250, 125):
        assert kinesis.put_records(StreamName="raw.vehicles", Records=records[start : start + 125])["FailedRecordCount"] == 0
    server.restart()  # delivers the 250 records

    catalog = rest_catalog(server)
    assert catalog.list_namespaces() == [("raw",)]
    assert catalog.list_tables("raw") == [("raw", "vehicles")]
    assert catalog.namespace_exists("raw") and not catalog.namespace_exists("gold")
    assert catalog.table_exists("raw.vehicles") and not catalog.table_exists("raw.nothing")
    table = catalog.load_table("raw.vehicles")
    rows = table.scan().to_arrow()
    assert len(rows) == 250 and sorted(rows.column("speed").to_pylist()) == list(range(250))
    assert "tarn.checkpoint" in table.current_snapshot().summary.additional_properties, "the same metadata the SQL catalog holds"

    from pyiceberg.exceptions import NoSuchTableError

    with pytest.raises(NoSuchTableError):
        catalog.load_table("raw.nothing")
    with pytest.raises(NotImplementedError):
        catalog.create_namespace("gold")  # the config response lists only what the catalog serves
    status, answer = signed(server, "POST", "/iceberg/v1/namespaces", {"namespace": ["gold"]})
    assert status == 406 and answer["error"]["type"] == "UnsupportedOperationException" and "read-only" in answer["error"]["message"]
    with pytest.raises(Exception) as wrong_key:
        rest_catalog(server, secret="not-the-secret").list_namespaces()
    assert "NotAuthorized" in type(wrong_key.value).__name__ or "signature" in str(wrong_key.value).lower()

    try:
        urllib.request.urlopen(server.endpoint + "/iceberg/v1/namespaces", timeout=30)
        raise AssertionError("an unsigned call was answered")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and json.loads(e.read())["error"]["type"] == "ForbiddenException"


def test_duckdb_attaches_the_rest_catalog_and_queries_a_table(make_server, tmp_path):
    # DuckDB's REST client signs only for AWS's own catalogs, so this server runs without auth.
    import glob
    import os

    import duckdb_extension_httpfs
    from test_delivery import duckdb_with_iceberg

    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT)
    server = make_server(args=("--config", str(config), "--no-auth"))
    records = [{"Data": json.dumps({"VehicleId": f"V{i:04d}", "Speed": i}).encode(), "PartitionKey": f"v{i}"} for i in range(40)]
    assert server.client().put_records(StreamName="raw.vehicles", Records=records)["FailedRecordCount"] == 0
    server.restart()

    db = duckdb_with_iceberg()
    httpfs = glob.glob(os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*", "httpfs.duckdb_extension"))[0]
    db.execute(f"load '{httpfs}'")
    db.execute(f"ATTACH '' AS lake (TYPE iceberg, ENDPOINT '{server.endpoint}/iceberg', AUTHORIZATION_TYPE 'none')")
    assert db.execute("SELECT count(*), sum(speed) FROM lake.raw.vehicles").fetchone() == (40, sum(range(40)))
