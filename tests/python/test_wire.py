"""Raw requests, signed with botocore's SigV4 signer: malformed bodies, CBOR, unknown operations."""

import json
import urllib.error
import urllib.request
import uuid

import cbor2
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, SECRET_KEY


def call(server, target, body, content_type="application/x-amz-json-1.1", sign=True, method="POST"):
    headers = {"Content-Type": content_type}
    if target:
        headers["X-Amz-Target"] = target
    req = AWSRequest(method=method, url=server.endpoint + "/", data=body, headers=headers)
    if sign:
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesis", REGION).add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(prepared.url, data=body if method == "POST" else None, method=method)
    for k, v in prepared.headers.items():
        raw.add_header(k, v)
    try:
        with urllib.request.urlopen(raw) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def cbor_loads(body):
    """Decodes CBOR keeping tag 1 raw: AWS puts epoch *milliseconds* in it, not RFC 8949's seconds."""
    return cbor2.loads(body, semantic_decoders={1: lambda value, _immutable: cbor2.CBORTag(1, value)})


def json_call(server, op, payload):
    status, headers, body = call(server, f"Kinesis_20131202.{op}", json.dumps(payload).encode())
    return status, json.loads(body) if body else {}


def test_malformed_bodies_get_serialization_errors_and_the_server_keeps_serving(server):
    for body in [b"{not json", b"", b"[1,2]", b'{"StreamName": 5}', b'{"StreamName":"x","ShardCount":"two"}']:
        status, _, out = call(server, "Kinesis_20131202.CreateStream", body)
        assert status == 400, (body, out)
        assert json.loads(out)["__type"] == "SerializationException", (body, out)
    status, out = json_call(server, "ListStreams", {})
    assert status == 200 and "StreamNames" in out


def test_bad_base64_data_is_refused(server):
    name = "w-" + uuid.uuid4().hex[:8]
    assert json_call(server, "CreateStream", {"StreamName": name, "ShardCount": 1})[0] == 200
    status, out = json_call(server, "PutRecord", {"StreamName": name, "Data": "not base64!", "PartitionKey": "k"})
    assert (status, out["__type"]) == (400, "SerializationException")


def test_unknown_or_missing_operation(server):
    status, headers, out = call(server, "Kinesis_20131202.Frobnicate", b"{}")
    assert (status, json.loads(out)["__type"]) == (400, "UnknownOperationException")
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    status, _, out = call(server, None, b"{}")
    assert json.loads(out)["__type"] == "UnknownOperationException"


def test_missing_signature(server):
    status, _, out = call(server, "Kinesis_20131202.ListStreams", b"{}", sign=False)
    assert (status, json.loads(out)["__type"]) == (403, "MissingAuthenticationTokenException")


def test_validation_message_is_coral_shaped(server):
    status, out = json_call(server, "CreateStream", {"ShardCount": 0})
    assert status == 400 and out["__type"] == "ValidationException"
    assert out["message"] == (
        "2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null; "
        "Value 0 at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
    )


def test_cbor_round_trip_with_millisecond_timestamps(server):
    """The Java SDKs' encoding: byte-string blobs, tag(1) epoch-millisecond timestamps."""
    name = "c-" + uuid.uuid4().hex[:8]
    cbor = "application/x-amz-cbor-1.1"

    def c(op, payload):
        status, headers, body = call(server, f"Kinesis_20131202.{op}", cbor2.dumps(payload), content_type=cbor)
        assert headers["Content-Type"] == cbor
        return status, cbor_loads(body) if body else {}

    assert c("CreateStream", {"StreamName": name, "ShardCount": 1})[0] == 200
    status, out = c("PutRecord", {"StreamName": name, "Data": b"\x00\x01binary", "PartitionKey": "k"})
    assert status == 200, out
    status, summary = c("DescribeStreamSummary", {"StreamName": name})
    created = summary["StreamDescriptionSummary"]["StreamCreationTimestamp"]
    assert isinstance(created, cbor2.CBORTag) and created.tag == 1 and created.value > 10**12, created
    start = cbor2.CBORTag(1, created.value - 1000)
    status, it = c(
        "GetShardIterator",
        {"StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": start},
    )
    assert status == 200, it
    status, page = c("GetRecords", {"ShardIterator": it["ShardIterator"]})
    rec = page["Records"][0]
    assert rec["Data"] == b"\x00\x01binary"
    arrival = rec["ApproximateArrivalTimestamp"]
    assert arrival.tag == 1 and abs(arrival.value - created.value) < 600_000
    status, err = c("DescribeStream", {"StreamName": "missing-" + name})
    assert (status, err["__type"]) == (400, "ResourceNotFoundException")
    status, err = call(server, "Kinesis_20131202.ListStreams", b"\xff\x00garbage", content_type=cbor)[:2], None
    assert status[0] == 400


def test_oversized_request_is_refused(server):
    status, _, _ = call(server, "Kinesis_20131202.PutRecords", b"{" + b" " * (9 * 1024 * 1024) + b"}")
    assert status == 413


def test_put_records_bodies_on_and_off_the_fast_path(server):
    """Well-formed JSON PutRecords take a path without a document tree; everything else must
    still be accepted or refused exactly as the general path does."""
    import base64

    name = "p-" + uuid.uuid4().hex[:8]
    assert json_call(server, "CreateStream", {"StreamName": name, "ShardCount": 1})[0] == 200

    def put(body):
        status, _, out = call(server, "Kinesis_20131202.PutRecords", body.encode() if isinstance(body, str) else body)
        return status, json.loads(out)

    b64 = base64.b64encode
    plain = {"StreamName": name, "Records": [{"Data": b64(b"\xff/one").decode(), "PartitionKey": "a"}]}
    status, out = put(json.dumps(plain))
    assert status == 200 and out["FailedRecordCount"] == 0 and out["EncryptionType"] == "NONE", out
    assert out["Records"][0]["ShardId"] == "shardId-000000000000" and out["Records"][0]["SequenceNumber"].isdigit()
    # Escaped slashes and an escaped key do not borrow from the body: the general path takes them.
    escaped = json.dumps(plain).replace("/", "\\/").replace('"a"', '"\\u0062"')
    assert "\\/" in escaped
    status, out = put(escaped)
    assert status == 200 and out["FailedRecordCount"] == 0, out
    with_hash_key = {"StreamName": name, "Records": [{"Data": b64(b"three").decode(), "PartitionKey": "c", "ExplicitHashKey": "7"}]}
    assert put(json.dumps(with_hash_key))[0] == 200

    status, it = json_call(
        server, "GetShardIterator", {"StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}
    )
    status, page = json_call(server, "GetRecords", {"ShardIterator": it["ShardIterator"]})
    got = [(base64.b64decode(r["Data"]), r["PartitionKey"]) for r in page["Records"]]
    assert got == [(b"\xff/one", "a"), (b"\xff/one", "b"), (b"three", "c")], got

    def refused(records, extra=None):
        body = {"StreamName": name, "Records": records, **(extra or {})}
        status, out = put(json.dumps(body))
        assert status == 400, out
        return out["__type"], out.get("message", "")

    assert refused([{"Data": "bad base64!", "PartitionKey": "k"}])[0] == "SerializationException"
    assert refused([{"Data": 5, "PartitionKey": "k"}])[0] == "SerializationException"
    kind, message = refused([{"Data": "", "PartitionKey": ""}])
    assert kind == "ValidationException" and "records.1.member.partitionKey" in message, message
    kind, message = refused([{"Data": "", "PartitionKey": "k" * 257}])
    assert kind == "ValidationException" and "less than or equal to 256" in message, message
    kind, message = refused([{"Data": "", "PartitionKey": "k"}] * 501)
    assert kind == "ValidationException" and "less than or equal to 500" in message, message
    assert refused([], None)[0] == "ValidationException"
    kind, message = refused([{"Data": "", "PartitionKey": "k", "ExplicitHashKey": str(2**128)}])
    assert kind == "InvalidArgumentException", message
    kind, _ = refused([{"Data": "", "PartitionKey": "k"}], {"StreamName": "missing-" + name})
    assert kind == "ResourceNotFoundException"
    # Nothing refused was written.
    status, page = json_call(server, "GetRecords", {"ShardIterator": page["NextShardIterator"]})
    assert page["Records"] == []
