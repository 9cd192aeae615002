#!/usr/bin/env bash
# Runs Tarn's whole test suite on a fresh machine: installs what it needs (a Python venv with
# boto3, the AWS CLI and pytest; the JavaScript SDK from npm), builds, runs the Rust tests, then
# the client suites against the real binary. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements-$(sha256sum tests/python/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    touch "$stamp"
fi

# The JavaScript SDK v3, the client that speaks HTTP/2 (skipped where node is missing).
if command -v npm >/dev/null 2>&1; then
    (cd tests/node && npm ci --no-audit --no-fund --silent)
fi

# A real S3-compatible server for the S3 lake tests: s3s-fs (file-backed, verifies SigV4).
# 0.14.1 is the newest that builds with this toolchain.
peers="${CARGO_TARGET_DIR:-$PWD/target}/peers"
if [ ! -x "$peers/bin/s3s-fs" ]; then
    echo "== installing s3s-fs (test peer)"
    cargo install --quiet --locked s3s-fs --version 0.14.1 --features binary --root "$peers"
fi

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz targets build"
cargo build --locked -p tarn-fuzz --bins

echo "== client suites (boto3, AWS CLI, JavaScript SDK over HTTP/2, raw wire, SubscribeToShard, crash, pyiceberg)"
# `cargo test --workspace` above built the tarn binary (for its integration tests) and the
# examples, with the same features; building them again separately would recompile half the tree.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
for built in "$target_dir/debug/tarn" "$target_dir/debug/examples/write_vehicles"; do
    [ -x "$built" ] || { echo "missing $built: cargo test should have built it" >&2; exit 1; }
done
TEST_S3S_BINARY="$peers/bin/s3s-fs" TEST_LAKE_WRITER="$target_dir/debug/examples/write_vehicles" TEST_TARN_BINARY="$target_dir/debug/tarn" "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider
