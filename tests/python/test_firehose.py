"""The Firehose API with boto3 and the AWS CLI: a delivery stream is a data segment whose records
land in an Iceberg table (read back with pyiceberg), with Firehose's validation and errors."""

import base64
import glob
import json
import os
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY

ROLE = "arn:aws:iam::123456789012:role/firehose"


def destination(**overrides):
    d = {
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::raw-zone",
        "Prefix": "vehicles/year=!{timestamp:yyyy}/month=!{timestamp:MM}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    }
    d.update(overrides)
    return d


def rows_of(server, table, want, timeout=60):
    from pyiceberg.catalog.sql import SqlCatalog

    lake = os.path.join(server.data_dir, "lake")
    deadline = time.time() + timeout
    rows, last_error = [], None
    while time.time() < deadline:
        try:
            catalog = SqlCatalog("tarn", uri=f"sqlite:///{lake}/catalog.db", warehouse=f"file://{lake}/warehouse")
            rows = catalog.load_table(table).scan().to_arrow().to_pylist()
            if len(rows) >= want:
                return rows
        except Exception as e:  # no table yet, or the catalog being created by Tarn meanwhile
            last_error = e
        time.sleep(0.3)
    raise AssertionError(f"{table}: {len(rows)} rows after {timeout} s, wanted {want} ({last_error!r})")


def error_code(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_direct_put_delivery_stream_end_to_end(make_server):
    server = make_server()
    fh = server.client("firehose")
    arn = fh.create_delivery_stream(
        DeliveryStreamName="fleet",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=destination(),
        Tags=[{"Key": "team", "Value": "maps"}],
    )["DeliveryStreamARN"]
    assert arn == "arn:aws:firehose:us-east-1:000000000000:deliverystream/fleet"
    desc = fh.describe_delivery_stream(DeliveryStreamName="fleet")["DeliveryStreamDescription"]
    assert desc["DeliveryStreamStatus"] == "ACTIVE" and desc["VersionId"] == "1"
    assert desc["DeliveryStreamType"] == "DirectPut"
    s3 = desc["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    assert s3["Prefix"] == destination()["Prefix"]
    assert desc["Destinations"][0]["DestinationId"] == "destinationId-000000000001"
    assert "fleet" in fh.list_delivery_streams()["DeliveryStreamNames"]
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName="fleet")["Tags"] == [{"Key": "team", "Value": "maps"}]

    records = [{"Data": (json.dumps({"Vin": f"V{i}", "Speed": i}) + "\n").encode()} for i in range(100)]
    out = fh.put_record_batch(DeliveryStreamName="fleet", Records=records)
    assert out["FailedPutCount"] == 0 and len(out["RequestResponses"]) == 100
    assert all(r["RecordId"] for r in out["RequestResponses"])
    one = fh.put_record(DeliveryStreamName="fleet", Record={"Data": b'{"Vin":"V100","Speed":100}'})
    assert one["RecordId"]
    fh.put_record(DeliveryStreamName="fleet", Record={"Data": b"garbage, not json"})

    rows = rows_of(server, "raw_zone.fleet", 101)
    assert sorted(r["vin"] for r in rows) == sorted(f"V{i}" for i in range(101))
    year = time.gmtime().tm_year
    data = glob.glob(os.path.join(server.data_dir, "lake", "warehouse", "raw_zone", "fleet", "data", "vehicles", f"year={year}", "month=*", "*.parquet"))
    assert data, "files follow the Prefix expression"
    deadline = time.time() + 30
    while time.time() < deadline:
        errors = glob.glob(os.path.join(server.data_dir, "lake", "errors", "raw_zone", "fleet", "errors", "format-conversion-failed", "*.json"))
        if errors:
            break
        time.sleep(0.2)
    docs = [json.loads(line) for f in errors for line in open(f)]
    assert [base64.b64decode(d["rawData"]) for d in docs] == [b"garbage, not json"]

    # The segment's stream is a Kinesis stream too: the records can be replayed from it.
    kinesis = server.client()
    assert kinesis.describe_stream_summary(StreamName="fleet")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"

    # UpdateDestination: optimistic versioning as in Firehose.
    code, message = error_code(lambda: fh.update_destination(
        DeliveryStreamName="fleet", CurrentDeliveryStreamVersionId="7", DestinationId="destinationId-000000000001",
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 5}}))
    assert code == "ConcurrentModificationException", message
    fh.update_destination(
        DeliveryStreamName="fleet", CurrentDeliveryStreamVersionId="1", DestinationId="destinationId-000000000001",
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 5}})
    desc = fh.describe_delivery_stream(DeliveryStreamName="fleet")["DeliveryStreamDescription"]
    assert desc["VersionId"] == "2"
    assert desc["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]["SizeInMBs"] == 2

    # The delivery stream survives a restart and goes on delivering.
    server.restart()
    fh = server.client("firehose")
    assert fh.describe_delivery_stream(DeliveryStreamName="fleet")["DeliveryStreamDescription"]["VersionId"] == "2"
    fh.put_record(DeliveryStreamName="fleet", Record={"Data": b'{"Vin":"V101","Speed":1}'})
    rows = rows_of(server, "raw_zone.fleet", 102)
    assert len(rows) == 102

    fh.delete_delivery_stream(DeliveryStreamName="fleet")
    code, message = error_code(lambda: fh.describe_delivery_stream(DeliveryStreamName="fleet"))
    assert code == "ResourceNotFoundException"
    assert message == "Firehose fleet under account 000000000000 not found."


def test_kinesis_stream_as_source_starts_at_creation(make_server):
    server = make_server()
    kinesis, fh = server.client(), server.client("firehose")
    kinesis.create_stream(StreamName="clicks", ShardCount=2)
    kinesis.put_record(StreamName="clicks", Data=b'{"page":"before"}', PartitionKey="a")
    stream_arn = kinesis.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamARN"]
    time.sleep(0.05)
    fh.create_delivery_stream(
        DeliveryStreamName="clicks-to-lake",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=destination(
            BucketARN="arn:aws:s3:::web",
            Prefix="",
            ErrorOutputPrefix="",
            DataFormatConversionConfiguration={
                "SchemaConfiguration": {"DatabaseName": "web", "TableName": "clicks", "RoleARN": ROLE},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}},
            },
        ),
    )
    for i in range(20):
        kinesis.put_record(StreamName="clicks", Data=json.dumps({"page": f"p{i}"}).encode(), PartitionKey=f"k{i}")
    rows = rows_of(server, "web.clicks", 20)
    time.sleep(1.5)
    rows = rows_of(server, "web.clicks", 20)
    assert sorted(r["page"] for r in rows) == sorted(f"p{i}" for i in range(20)), "what came before creation is not delivered"
    desc = fh.describe_delivery_stream(DeliveryStreamName="clicks-to-lake")["DeliveryStreamDescription"]
    assert desc["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == stream_arn
    code, message = error_code(lambda: fh.put_record(DeliveryStreamName="clicks-to-lake", Record={"Data": b"{}"}))
    assert (code, message) == ("InvalidArgumentException", "This operation is not permitted on KinesisStreamAsSource delivery stream type.")
    # Deleting the delivery stream leaves its source stream alone.
    fh.delete_delivery_stream(DeliveryStreamName="clicks-to-lake")
    assert kinesis.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_firehose_validation_and_errors(make_server):
    server = make_server()
    fh = server.client("firehose")
    code, message = error_code(lambda: fh.create_delivery_stream(
        DeliveryStreamName="x", ExtendedS3DestinationConfiguration=destination(ErrorOutputPrefix="")))
    assert code == "InvalidArgumentException" and "ErrorOutputPrefix" in message
    code, message = error_code(lambda: fh.create_delivery_stream(
        DeliveryStreamName="x", ExtendedS3DestinationConfiguration=destination(Prefix="a/!{firehose:error-output-type}/")))
    assert code == "InvalidArgumentException"
    code, message = error_code(lambda: fh.create_delivery_stream(
        DeliveryStreamName="bad name!", ExtendedS3DestinationConfiguration=destination()))
    assert code == "ValidationException" and "deliveryStreamName" in message
    code, message = error_code(lambda: fh.create_delivery_stream(
        DeliveryStreamName="x", ExtendedS3DestinationConfiguration=destination(BufferingHints={"SizeInMBs": 500, "IntervalInSeconds": 1})))
    assert code == "ValidationException" and "sizeInMBs" in message
    fh.create_delivery_stream(DeliveryStreamName="x", ExtendedS3DestinationConfiguration=destination())
    code, _ = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="x", ExtendedS3DestinationConfiguration=destination()))
    assert code == "ResourceInUseException"
    code, message = error_code(lambda: fh.put_record(DeliveryStreamName="x", Record={"Data": b"a" * 1_024_001}))
    assert code == "ValidationException" and "record.data" in message and "1024000" in message
    code, message = error_code(lambda: fh.put_record_batch(DeliveryStreamName="x", Records=[{"Data": b"a" * 1_000_000}] * 5))
    assert (code, message) == ("InvalidArgumentException", "Records size exceeds 4 MB limit")
    code, message = error_code(lambda: fh.put_record_batch(DeliveryStreamName="x", Records=[{"Data": b"a"}] * 501))
    assert code == "ValidationException"
    code, message = error_code(lambda: fh.put_record(DeliveryStreamName="nope", Record={"Data": b"{}"}))
    assert (code, message) == ("ResourceNotFoundException", "Firehose nope under account 000000000000 not found.")
    # Nothing refused above disturbed what was accepted.
    assert fh.put_record(DeliveryStreamName="x", Record={"Data": b'{"ok":1}'})["RecordId"]


def test_aws_cli_lists_and_describes(make_server):
    server = make_server()
    server.client("firehose").create_delivery_stream(DeliveryStreamName="cli", ExtendedS3DestinationConfiguration=destination())
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION)
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run([aws, "--endpoint-url", server.endpoint, "firehose", "list-delivery-streams"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["DeliveryStreamNames"] == ["cli"]
    out = subprocess.run([aws, "--endpoint-url", server.endpoint, "firehose", "put-record", "--delivery-stream-name", "cli",
                          "--record", '{"Data":"eyJhIjoxfQ=="}'], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["RecordId"]


def test_dynamic_partitioning_by_query(make_server):
    server = make_server()
    fh = server.client("firehose")
    dest = destination(
        Prefix="orders/customer=!{partitionKeyFromQuery:customer}/!{timestamp:yyyy}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .Customer.Id}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]},
    )
    fh.create_delivery_stream(DeliveryStreamName="orders", ExtendedS3DestinationConfiguration=dest)
    s3 = fh.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["DynamicPartitioningConfiguration"]["Enabled"] is True
    records = [{"Data": json.dumps({"Order": i, "Customer": {"Id": ["acme", "globex"][i % 2]}}).encode()} for i in range(20)]
    records.append({"Data": b'{"Order": 99}'})  # no customer: cannot be partitioned
    assert fh.put_record_batch(DeliveryStreamName="orders", Records=records)["FailedPutCount"] == 0
    rows = rows_of(server, "raw_zone.orders", 20)
    assert sorted(r["order"] for r in rows) == list(range(20))
    year = time.gmtime().tm_year
    data = os.path.join(server.data_dir, "lake", "warehouse", "raw_zone", "orders", "data", "orders")
    import duckdb
    for customer, parity in (("acme", 0), ("globex", 1)):
        files = glob.glob(os.path.join(data, f"customer={customer}", str(year), "*.parquet"))
        assert files, customer
        orders = [o for (o,) in duckdb.sql(f"select \"order\" from read_parquet({files!r})").fetchall()]
        assert sorted(orders) == [i for i in range(20) if i % 2 == parity]
    deadline = time.time() + 30
    errors = []
    while time.time() < deadline and not errors:
        errors = glob.glob(os.path.join(server.data_dir, "lake", "errors", "raw_zone", "orders", "errors", "partitioning-failed", "*.json"))
        time.sleep(0.2)
    docs = [json.loads(line) for f in errors for line in open(f)]
    assert [d["lastErrorCode"] for d in docs] == ["DynamicPartitioning.MetadataExtractionFailed"]
    assert base64.b64decode(docs[0]["rawData"]) == b'{"Order": 99}', "the record as it arrived"

    code, message = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=destination(
        Prefix="p/!{partitionKeyFromQuery:customer}/", ErrorOutputPrefix="e/!{firehose:error-output-type}/")))
    assert code == "InvalidArgumentException" and "dynamic partitioning" in message
    code, message = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=dict(dest, ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "MetadataExtraction", "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .c | ascii_downcase}"}]}]})))
    assert code == "InvalidArgumentException" and "MetadataExtractionQuery" in message
