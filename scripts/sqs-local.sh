#!/usr/bin/env bash
# Starts or stops a local SQS API (moto's server, from PyPI) on a free
# loopback port. State lives in .dev/: sqs.pid, sqs.port. In memory: a
# restart loses every queue (the tests and devstack create their own).
#   scripts/sqs-local.sh start   -> prints the endpoint URL
#   scripts/sqs-local.sh stop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.dev"
mkdir -p "$state"

case "${1:-}" in
  start)
    "$root/scripts/ensure-tools.sh" sqs
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    nohup "$root/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/sqs.log" 2>&1 &
    echo $! >"$state/sqs.pid"
    echo "$port" >"$state/sqs.port"
    for _ in $(seq 1 150); do
      if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
        echo "http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.2
    done
    echo "sqs-local: did not start; see $state/sqs.log" >&2
    exit 1 ;;
  stop)
    if [ -f "$state/sqs.pid" ]; then
      kill "$(cat "$state/sqs.pid")" 2>/dev/null || true
      rm -f "$state/sqs.pid" "$state/sqs.port"
    fi ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
