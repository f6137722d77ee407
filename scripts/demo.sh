#!/usr/bin/env bash
# `make demo`: the whole story (login -> subscribe -> schedule -> send ->
# phone -> push) against the local stack. Uses a stack `make dev` already
# runs; otherwise starts one for the demo and stops it afterwards.
# Exits non-zero if any step fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

running() {
  [ -f .dev/stack.env ] || return 1
  # shellcheck disable=SC1091
  . .dev/stack.env
  curl -s -o /dev/null -X POST "$API_URL/login" -d '{}' 2>/dev/null
}

if running; then
  echo "demo: using the stack that is already running ($API_URL)"
else
  scripts/dev.sh --detach >/dev/null
  trap 'scripts/dev.sh stop >/dev/null' EXIT
  # shellcheck disable=SC1091
  . .dev/stack.env
  echo "demo: started a local stack for the demo ($API_URL)"
fi
target/debug/devstack demo --api "$API_URL" --sim "$SIM_URL" --invoke "$INVOKE_URL"
