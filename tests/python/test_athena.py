"""The Athena API through boto3, unchanged: start a query, poll its execution, page through its
results (header row first, every value text, NULL without VarCharValue, Athena's type names),
list, batch-get and stop executions, the primary workgroup, idempotent starts, parameters, the
queue behind the running-query limit and the results budget."""

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

SEGMENT = """
[[segments]]
layer = "raw"
name = "vehicles"
shards = 2
[segments.delivery]
interval_seconds = 600
size_mib = 64
"""

VENDORS = ["acme", "globex", "initech"]


def vehicle(i):
    return json.dumps({"VehicleId": f"V{i:05d}", "Vendor": VENDORS[i % 3], "Speed": i % 130, "Status": {"Fuel": (i % 100) / 2}}).encode()


def lake_server(make_server, tmp_path, extra_env=None, delivered=300, tail=30):
    """A server whose raw.vehicles holds `delivered` records in files and `tail` undelivered."""
    config = tmp_path / "tarn.toml"
    config.write_text(SEGMENT)
    server = make_server(extra_env=extra_env, args=("--config", str(config)))
    kinesis = server.client()
    records = [{"Data": vehicle(i), "PartitionKey": f"v{i}"} for i in range(delivered)]
    for start in range(0, len(records), 500):
        assert kinesis.put_records(StreamName="raw.vehicles", Records=records[start : start + 500])["FailedRecordCount"] == 0
    server.restart()  # SIGTERM delivers: the table exists with the first records
    kinesis = server.client()
    for i in range(delivered, delivered + tail):
        kinesis.put_record(StreamName="raw.vehicles", Data=vehicle(i), PartitionKey=f"v{i}")
    return server


def wait(athena, execution_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        time.sleep(0.05)
    raise AssertionError(f"query {execution_id} did not finish")


def run(athena, sql, **kwargs):
    kwargs.setdefault("QueryExecutionContext", {"Database": "raw"})
    execution_id = athena.start_query_execution(QueryString=sql, **kwargs)["QueryExecutionId"]
    return wait(athena, execution_id)


def all_rows(athena, execution_id, page_size=1000):
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id, PaginationConfig={"PageSize": page_size})
    rows, metadata = [], None
    for page in pages:
        metadata = metadata or page["ResultSet"]["ResultSetMetadata"]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    return rows, metadata


def test_a_boto3_athena_query_runs_over_files_and_tail_with_statistics_and_typed_results(make_server, tmp_path):
    server = lake_server(make_server, tmp_path)
    athena = server.client("athena")
    sql = "SELECT vendor, count(*) AS n, sum(speed) AS s FROM vehicles GROUP BY vendor ORDER BY vendor"
    execution = run(athena, sql, ResultConfiguration={"OutputLocation": "s3://query-results/athena/"})
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["StatementType"] == "DML" and execution["WorkGroup"] == "primary"
    assert execution["QueryExecutionContext"]["Database"] == "raw"
    assert execution["ResultConfiguration"]["OutputLocation"] == f"s3://query-results/athena/{execution['QueryExecutionId']}.csv"
    stats = execution["Statistics"]
    assert stats["DataScannedInBytes"] > 0, "the delivered rows are read from Parquet files"
    assert stats["EngineExecutionTimeInMillis"] >= 0 and stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"]
    assert execution["Status"]["CompletionDateTime"] >= execution["Status"]["SubmissionDateTime"]

    rows, metadata = all_rows(athena, execution["QueryExecutionId"])
    assert rows[0] == ["vendor", "n", "s"], "the first row of the first page names the columns"
    expected = [[v, str(sum(1 for i in range(330) if i % 3 == k)), str(sum(i % 130 for i in range(330) if i % 3 == k))] for k, v in enumerate(VENDORS)]
    assert rows[1:] == expected, "300 delivered + 30 acknowledged, each once"
    assert [(c["Name"], c["Type"]) for c in metadata["ColumnInfo"]] == [("vendor", "varchar"), ("n", "bigint"), ("s", "bigint")]

    # Fully qualified names as Athena code writes them work too.
    qualified = run(athena, 'SELECT count(*) FROM "awsdatacatalog"."raw"."vehicles"', QueryExecutionContext={})
    assert all_rows(athena, qualified["QueryExecutionId"])[0][1] == ["330"]

    # Both statements are counted under the Athena API, with the bytes they scanned.
    text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
    assert 'tarn_query_total{api="athena",outcome="ok"} 2' in text, text
    scanned = next(line for line in text.splitlines() if line.startswith('tarn_query_bytes_scanned_total{api="athena"}'))
    assert int(scanned.split()[-1]) >= stats["DataScannedInBytes"] > 0


def test_results_go_to_an_output_location_in_the_lakes_storage_as_athena_csv(make_server, tmp_path):
    import csv
    import os

    server = lake_server(make_server, tmp_path)
    athena = server.client("athena")
    output = f"file://{os.path.join(server.data_dir, 'lake')}/athena-results/"
    sql = """SELECT vendor, count(*) AS n, CAST(NULL AS VARCHAR) AS nothing, 'say "hi"' AS quoted FROM vehicles GROUP BY vendor ORDER BY vendor"""
    execution = run(athena, sql, ResultConfiguration={"OutputLocation": output})
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"{output}{execution['QueryExecutionId']}.csv"
    with open(location.removeprefix("file://"), newline="") as f:
        text = f.read()
    assert text.splitlines()[0] == '"vendor","n","nothing","quoted"'
    assert text.splitlines()[1] == '"acme","110",,"say ""hi"""', "every value quoted, NULL empty"
    rows, _ = all_rows(athena, execution["QueryExecutionId"])
    assert [[v or None for v in r] for r in csv.reader(text.splitlines())] == rows

    # A location outside the lake's storage is not written to, and the query still succeeds.
    elsewhere = run(athena, "SELECT 1", ResultConfiguration={"OutputLocation": "s3://somewhere-else/results/"})
    assert elsewhere["Status"]["State"] == "SUCCEEDED"


def test_results_page_with_the_header_once_and_nulls_and_nested_values_as_athena_writes_them(make_server, tmp_path):
    server = lake_server(make_server, tmp_path)
    athena = server.client("athena")
    execution = run(athena, "SELECT vehicleid FROM vehicles ORDER BY vehicleid")
    execution_id = execution["QueryExecutionId"]
    first = athena.get_query_results(QueryExecutionId=execution_id, MaxResults=100)
    assert len(first["ResultSet"]["Rows"]) == 100 and "NextToken" in first, "the header row counts in the first page"
    rows, _ = all_rows(athena, execution_id, page_size=100)
    assert rows == [["vehicleid"]] + [[f"V{i:05d}"] for i in range(330)]

    typed = run(
        athena,
        "SELECT status, CAST(NULL AS VARCHAR) AS nothing, [speed, speed + 1] AS pair, CAST(speed AS DOUBLE) / 2 AS half, "
        "speed > 100 AS fast, DATE '2026-11-22' AS day, TIMESTAMP '2026-11-22 10:15:00.250' AS at "
        "FROM vehicles WHERE vehicleid = 'V00105'",
    )
    assert typed["Status"]["State"] == "SUCCEEDED", typed["Status"]
    page = athena.get_query_results(QueryExecutionId=typed["QueryExecutionId"])
    data = page["ResultSet"]["Rows"][1]["Data"]
    assert data[0] == {"VarCharValue": "{fuel=2.5}"}
    assert data[1] == {}, "SQL NULL has no VarCharValue"
    values = [d["VarCharValue"] for d in data[2:]]
    assert values == ["[105, 106]", "52.5", "true", "2026-11-22", "2026-11-22 10:15:00.250000000"], "a literal timestamp has nanoseconds"
    types = [c["Type"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["row(fuel double)", "varchar", "array(bigint)", "double", "boolean", "date", "timestamp"]

    with pytest.raises(ClientError) as bad:
        athena.get_query_results(QueryExecutionId=execution_id, NextToken="bm90LW91cnM")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestException"


def test_failures_listing_idempotency_parameters_and_the_workgroup(make_server, tmp_path):
    server = lake_server(make_server, tmp_path, delivered=30, tail=0)
    athena = server.client("athena")

    failed = run(athena, "SELECT nosuchcolumn FROM vehicles")
    assert failed["Status"]["State"] == "FAILED"
    assert "nosuchcolumn" in failed["Status"]["StateChangeReason"]
    assert failed["Status"]["AthenaError"]["ErrorCategory"] == 2 and failed["Status"]["AthenaError"]["Retryable"] is False
    with pytest.raises(ClientError) as not_finished:
        athena.get_query_results(QueryExecutionId=failed["QueryExecutionId"])
    assert not_finished.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in not_finished.value.response["Error"]["Message"]
    refused = run(athena, "DROP TABLE vehicles")
    assert refused["Status"]["State"] == "FAILED" and refused["StatementType"] == "DDL"
    assert run(athena, "SELECT count(*) FROM vehicles")["Status"]["State"] == "SUCCEEDED", "the table is still there"

    with pytest.raises(ClientError) as unknown:
        athena.get_query_execution(QueryExecutionId="00000000-0000-4000-8000-000000000000")
    assert unknown.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as workgroup:
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="analysts")
    assert workgroup.value.response["Error"]["Code"] == "InvalidRequestException" and "analysts" in workgroup.value.response["Error"]["Message"]
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["State"] == "ENABLED"
    assert [w["Name"] for w in athena.list_work_groups()["WorkGroups"]] == ["primary"]

    token = "a-retry-token-of-at-least-32-characters"
    first = athena.start_query_execution(QueryString="SELECT 1", ClientRequestToken=token)["QueryExecutionId"]
    again = athena.start_query_execution(QueryString="SELECT 1", ClientRequestToken=token)["QueryExecutionId"]
    assert first == again, "a retried start with the same token does not run the query twice"

    bound = run(athena, "SELECT count(*) FROM vehicles WHERE vendor = ? AND speed >= ?", ExecutionParameters=["'acme'", "0"])
    assert all_rows(athena, bound["QueryExecutionId"])[0][1] == [str(sum(1 for i in range(30) if i % 3 == 0))]

    ids = athena.list_query_executions()["QueryExecutionIds"]
    assert ids[0] == bound["QueryExecutionId"] and failed["QueryExecutionId"] in ids, "newest first"
    paged = athena.get_paginator("list_query_executions").paginate(PaginationConfig={"PageSize": 2})
    assert [i for p in paged for i in p["QueryExecutionIds"]] == ids
    batch = athena.batch_get_query_execution(QueryExecutionIds=[first, "00000000-0000-4000-8000-000000000000"])
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == [first]
    assert [u["QueryExecutionId"] for u in batch["UnprocessedQueryExecutionIds"]] == ["00000000-0000-4000-8000-000000000000"]


def test_queries_queue_behind_the_running_limit_stop_cancels_and_results_stay_within_budget(make_server, tmp_path):
    env = {"TARN_QUERY__MAX_RUNNING_QUERIES": "1", "TARN_QUERY__MAX_ACTIVE_QUERIES": "2", "TARN_QUERY__MAX_RESULTS_MIB": "1"}
    server = lake_server(make_server, tmp_path, extra_env=env, delivered=200, tail=0)
    athena = server.client("athena")
    # 3.2e11 rows to add up (a plain count(*) would come from the manifests at once)
    endless = "SELECT max(a.speed + b.speed + c.speed + d.speed + e.speed) FROM vehicles a, vehicles b, vehicles c, vehicles d, vehicles e"
    slow = athena.start_query_execution(QueryString=endless, QueryExecutionContext={"Database": "raw"})["QueryExecutionId"]
    queued = athena.start_query_execution(QueryString="SELECT count(*) FROM raw.vehicles")["QueryExecutionId"]
    with pytest.raises(ClientError) as busy:
        athena.start_query_execution(QueryString="SELECT 1")
    assert busy.value.response["Error"]["Code"] == "TooManyRequestsException"
    time.sleep(0.5)
    assert athena.get_query_execution(QueryExecutionId=slow)["QueryExecution"]["Status"]["State"] == "RUNNING"
    assert athena.get_query_execution(QueryExecutionId=queued)["QueryExecution"]["Status"]["State"] == "QUEUED"

    athena.stop_query_execution(QueryExecutionId=slow)
    assert wait(athena, slow)["Status"]["State"] == "CANCELLED"
    done = wait(athena, queued)
    assert done["Status"]["State"] == "SUCCEEDED", "stopping the running query frees its slot"
    assert done["Statistics"]["QueryQueueTimeInMillis"] >= 400
    athena.stop_query_execution(QueryExecutionId=queued)  # stopping a finished query changes nothing
    assert athena.get_query_execution(QueryExecutionId=queued)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"

    # About 4 MB of text: more than the 1 MiB kept for results, so the query fails saying so.
    big = run(athena, "SELECT repeat('x', 100) AS filler FROM vehicles a, vehicles b")
    assert big["Status"]["State"] == "FAILED" and "max_results_mib" in big["Status"]["StateChangeReason"]
    # Results that fit push out the oldest ones beyond the budget.
    medium = "SELECT repeat('y', 60) AS filler FROM vehicles a, (SELECT * FROM vehicles LIMIT 40) b"  # ~0.7 MB
    older = run(athena, medium)["QueryExecutionId"]
    newer = run(athena, medium)["QueryExecutionId"]
    assert len(all_rows(athena, newer)[0]) == 8001
    with pytest.raises(ClientError) as dropped:
        athena.get_query_results(QueryExecutionId=older)
    assert "no longer kept" in dropped.value.response["Error"]["Message"]
