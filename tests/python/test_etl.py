"""ETL as SQL, the Glue job of the seeds: through boto3's Athena client, flatten the nested vehicle
JSON, repartition it by vendor and write ZSTD Parquet with one CREATE TABLE AS SELECT, append the
records that arrive later with INSERT INTO, and check the result with readers that are not Tarn:
pyiceberg (the catalog), pyarrow (the Parquet codec) and DuckDB (the Iceberg metadata)."""

import glob
import os

import pyarrow.parquet as pq

from test_athena import VENDORS, all_rows, lake_server, run
from test_delivery import catalog_of, duckdb_with_iceberg

CTAS = """
CREATE TABLE curated.vehicles_by_vendor
WITH (format = 'PARQUET', partitioned_by = ARRAY['vendor'], write_compression = 'ZSTD')
AS SELECT vehicleid AS vehicle_id, speed, status.fuel AS fuel, vendor FROM raw.vehicles
"""


def test_athena_ctas_flattens_repartitions_and_compresses_and_other_engines_read_the_table(make_server, tmp_path):
    server = lake_server(make_server, tmp_path, delivered=300, tail=30)
    athena = server.client("athena")

    created = run(athena, CTAS)
    assert created["Status"]["State"] == "SUCCEEDED", created["Status"]
    assert created["StatementType"] == "DDL" and created["SubstatementType"] == "CREATE_TABLE_AS_SELECT"
    assert created["Statistics"]["DataScannedInBytes"] > 0
    page = athena.get_query_results(QueryExecutionId=created["QueryExecutionId"])
    assert page["UpdateCount"] == 330, "the delivered rows and the 30 still in the stream"

    rows, _ = all_rows(athena, run(athena, "SELECT vendor, count(*), sum(speed), round(sum(fuel), 1) FROM curated.vehicles_by_vendor GROUP BY vendor ORDER BY vendor")["QueryExecutionId"])
    expected = []
    for v, vendor in enumerate(VENDORS):
        ids = [i for i in range(330) if i % 3 == v]
        expected.append([vendor, str(len(ids)), str(sum(i % 130 for i in ids)), str(round(sum((i % 100) / 2 for i in ids), 1))])
    assert rows[1:] == expected

    # One vendor's query reads one vendor's files only.
    one = run(athena, "SELECT count(*) FROM curated.vehicles_by_vendor WHERE vendor = 'globex'")
    everything = run(athena, "SELECT count(*) FROM curated.vehicles_by_vendor WHERE speed >= 0")
    assert 0 < one["Statistics"]["DataScannedInBytes"] < everything["Statistics"]["DataScannedInBytes"] / 2

    # Later records arrive; INSERT INTO appends the new ones.
    kinesis = server.client()
    from test_athena import vehicle

    for i in range(330, 360):
        kinesis.put_record(StreamName="raw.vehicles", Data=vehicle(i), PartitionKey=f"v{i}")
    inserted = run(athena, "INSERT INTO curated.vehicles_by_vendor SELECT vehicleid, speed, status.fuel, vendor FROM raw.vehicles WHERE vehicleid >= 'V00330'")
    assert inserted["Status"]["State"] == "SUCCEEDED", inserted["Status"]
    assert inserted["StatementType"] == "DML" and inserted["SubstatementType"] == "INSERT"
    assert athena.get_query_results(QueryExecutionId=inserted["QueryExecutionId"])["UpdateCount"] == 30

    failed = run(athena, "CREATE TABLE curated.bad WITH (format = 'ORC') AS SELECT 1 AS one")
    assert failed["Status"]["State"] == "FAILED" and "Parquet only" in failed["Status"]["StateChangeReason"]

    # pyiceberg: the table, its identity partition spec and every row.
    table = catalog_of(server).load_table("curated.vehicles_by_vendor")
    assert [f.name for f in table.schema().fields] == ["vehicle_id", "speed", "fuel", "vendor"]
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("vendor", "identity")]
    assert table.properties["write.parquet.compression-codec"] == "zstd"
    data = table.scan().to_arrow()
    assert data.num_rows == 360
    assert sorted(data.column("vehicle_id").to_pylist()) == [f"V{i:05d}" for i in range(360)]
    assert table.scan(row_filter="vendor == 'acme'").to_arrow().num_rows == 120

    # The files: one folder per vendor, ZSTD Parquet.
    root = os.path.join(server.data_dir, "lake", "warehouse", "curated", "vehicles_by_vendor", "data")
    files = glob.glob(os.path.join(root, "*", "*.parquet"))
    assert {os.path.basename(os.path.dirname(f)) for f in files} == {f"vendor={v}" for v in VENDORS}
    assert all(pq.ParquetFile(f).metadata.row_group(0).column(0).compression == "ZSTD" for f in files)

    # DuckDB through its Iceberg extension.
    metadata = table.metadata_location
    assert duckdb_with_iceberg().execute(f"SELECT count(*), count(DISTINCT vendor), sum(speed) FROM iceberg_scan('{metadata}')").fetchone() == (
        360,
        3,
        sum(i % 130 for i in range(360)),
    )

    dropped = run(athena, "DROP TABLE curated.vehicles_by_vendor")
    assert dropped["Status"]["State"] == "SUCCEEDED", dropped["Status"]
    assert not glob.glob(os.path.join(root, "*", "*.parquet"))
