#!/usr/bin/env bash
# `make test`: installs what is missing, checks formatting and clippy, starts
# DynamoDB Local and the local SQS once for the run, runs every test of the workspace, lints
# template.yaml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/ensure-tools.sh dynamodb sqs lint schemathesis

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

endpoint="$(scripts/dynamodb-local.sh start)"
trap 'scripts/dynamodb-local.sh stop; scripts/sqs-local.sh stop' EXIT
echo "DynamoDB Local at $endpoint"
sqs="$(scripts/sqs-local.sh start)"
echo "SQS (moto) at $sqs"

export AWS_ENDPOINT_URL_DYNAMODB="$endpoint" AWS_ENDPOINT_URL_SQS="$sqs"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export RUST_LOG="${RUST_LOG:-warn}"

echo "== cfn-lint template.yaml"
.tools/venv/bin/cfn-lint template.yaml

echo "== cargo build --workspace --bins (tests/tests/binaries.rs runs the function binaries)"
cargo build --workspace --bins --locked

echo "== cargo test --workspace"
cargo test --workspace --locked -- --test-threads "${TEST_THREADS:-4}"
