#!/usr/bin/env bash
# `make bench`: builds every function (and the bare lambda_runtime floor) with
# `cargo lambda build --release`, starts DynamoDB Local and moto's SQS, and runs the bench
# harness, which prints the tables docs/performance.md quotes.
# Extra arguments go to the harness: --runs N --warm N --messages N --drain-warm-up N,
# --settle-ms N, --production-secrets (secrets from a Secrets Manager stand-in),
# --skip-broadcast, --broadcast-grantees 20000,100000 --broadcast-workers 1,2,4,8
# --broadcast-latency-ms 0,100 (the broadcast table, through moto's SQS).
# `--panic abort` builds the functions with the other panic strategy (the
# release profile unwinds: docs/performance.md compares the two).
set -euo pipefail
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --panic) export CARGO_PROFILE_RELEASE_PANIC="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/ensure-tools.sh dynamodb sqs lambda
export PATH="$root/.tools/venv/bin:$PATH"

echo "bench: cargo lambda build --release (functions + the two floors)" >&2
cargo lambda build --release --locked -p login -p subscribe -p messages -p send -p callback -p lambda-floor -p lambda-floor-dynamodb >&2
# The harness hosts the simulator and the counting proxy: build it optimised
# too, but on its own, so its dependencies' features do not leak into the
# functions' build (Cargo unifies features across the packages of one build).
cargo lambda build --release --locked -p bench >&2

endpoint="$(scripts/dynamodb-local.sh start)"
trap 'scripts/dynamodb-local.sh stop; scripts/sqs-local.sh stop' EXIT
export AWS_ENDPOINT_URL_DYNAMODB="$endpoint"
export AWS_ENDPOINT_URL_SQS="$(scripts/sqs-local.sh start)"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export RUST_LOG="${RUST_LOG:-warn}"
# EMF metric lines from the harness's own in-process set-up are not part of the report.
target/lambda/bench/bootstrap --bin-dir target/lambda "${args[@]}" | grep -v '"_aws":'

