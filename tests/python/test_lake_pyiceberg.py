"""pyiceberg, which shares no code with Tarn's writer, opens Tarn's catalog and reads its tables."""

import json
import os
import subprocess
import tempfile

import pytest

WRITER = os.environ.get("TEST_LAKE_WRITER")


@pytest.mark.skipif(not WRITER, reason="TEST_LAKE_WRITER (the write_vehicles example) is not built")
def test_pyiceberg_reads_what_tarn_writes():
    from pyiceberg.catalog.sql import SqlCatalog

    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([WRITER, d, "1000"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["checkpoint"] == {"shardId-000000000000": "1000"}
        catalog = SqlCatalog("tarn", uri=f"sqlite:///{d}/catalog.db", warehouse=f"file://{d}/warehouse")
        assert ("raw", "vehicles") in catalog.list_tables("raw")
        table = catalog.load_table("raw.vehicles")
        types = {f.name: str(f.field_type) for f in table.schema().fields}
        assert types["eventtime"] == "timestamptz", "ISO-8601 text is typed as a timestamp"
        assert types["speed"] == "long"
        assert types["status"].startswith("struct<")
        assert types["alerts"].startswith("list<")
        rows = table.scan().to_arrow().sort_by("vehicleid").to_pylist()
        assert len(rows) == 1000
        assert len({r["vehicleid"] for r in rows}) == 1000, "each record exactly once"
        first = rows[0]
        assert first["vehicleid"] == "V00000" and first["speed"] == 0
        assert first["status"] == {"fuel": 0.0, "engineon": True}
        assert first["alerts"] == ["a0"]
        assert first["eventtime"].isoformat() == "2026-11-22T00:00:00+00:00"
        # The metadata lists snapshots in no particular order; the sequence number orders them.
        snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
        assert len(snapshots) == 2
        assert snapshots[1].parent_snapshot_id == snapshots[0].snapshot_id
        assert json.loads(table.current_snapshot().summary["tarn.checkpoint"]) == {"shardId-000000000000": "1000"}
        # Only the first half existed at the first snapshot: the checkpoint moved with the data.
        first_snapshot = table.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow()
        assert first_snapshot.num_rows == 500
        assert json.loads(snapshots[0].summary["tarn.checkpoint"]) == {"shardId-000000000000": "500"}
