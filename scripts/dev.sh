#!/usr/bin/env bash
# `make dev`: the whole backend on this machine.
#   DynamoDB Local (tables created from template.yaml), the WeChat simulator
#   (pushing to our callback in safe mode), every function behind
#   `cargo lambda watch` behind devstack's API Gateway (routes, events and the
#   IAM context as template.yaml's HTTP API gives them; cargo lambda watch's
#   own router, [workspace.metadata.lambda.watch.router] in Cargo.toml, stays
#   for `cargo lambda watch` used alone), and a
#   ticker that invokes `send` with the EventBridge event every TICK_SECONDS.
#
#   scripts/dev.sh            run in the foreground; Ctrl-C stops everything
#   scripts/dev.sh --detach   start in the background (used by `make demo`)
#   scripts/dev.sh stop       stop a detached stack
#
# Knobs: DEV_PORT (HTTP API + Invoke API, default 9000 or any free port),
# TICK_SECONDS (default 60), PUSH_MODE plain|compat|safe (default safe),
# PUSH_FORMAT json|xml (default json), GRANT_SOURCE client|push.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="$root/.dev"
mkdir -p "$state"

APPID=wx0000000000000001
SECRET=local-secret
PUSH_TOKEN=pushtoken123
PUSH_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port_busy() { python3 -c 'import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"; }

stop() {
  for name in ticker sources gateway watch sim; do
    if [ -f "$state/$name.pid" ]; then
      # Each part runs in its own session (setsid): stop its whole group.
      read -r pid <"$state/$name.pid" || true
      [ -n "${pid:-}" ] && kill -TERM -- "-$pid" 2>/dev/null || true
      rm -f "$state/$name.pid"
    fi
  done
  scripts/dynamodb-local.sh stop
  scripts/sqs-local.sh stop
  rm -f "$state/stack.env"
}

if [ "${1:-}" = "stop" ]; then
  stop
  echo "dev: stopped"
  exit 0
fi
detach=false
[ "${1:-}" = "--detach" ] && detach=true

stop >/dev/null 2>&1 || true
echo "dev: installing what is missing (DynamoDB Local, moto's SQS, cargo-lambda)"
scripts/ensure-tools.sh dynamodb sqs lambda
export PATH="$root/.tools/venv/bin:$PATH"

echo "dev: building the functions, the simulator and devstack"
cargo build --locked -q -p login -p subscribe -p messages -p send -p callback -p wechat-sim -p devstack

# Anything failing from here on takes down what was started.
up=false
trap '$up || stop >/dev/null 2>&1' EXIT
dynamodb="$(scripts/dynamodb-local.sh start)"
target/debug/devstack tables --endpoint "$dynamodb" >"$state/tables.env"
sqs="$(scripts/sqs-local.sh start)"
target/debug/devstack queues --endpoint "$sqs" >"$state/queues.env"

port="${DEV_PORT:-9000}"
if port_busy "$port"; then
  if [ -n "${DEV_PORT:-}" ]; then echo "dev: port $port is in use (DEV_PORT)" >&2; exit 1; fi
  port="$(free_port)"
fi
api="http://127.0.0.1:$port"

setsid target/debug/wechat-sim --port 0 --appid "$APPID" --secret "$SECRET" \
  --push-url "$api/wechat/callback" --push-token "$PUSH_TOKEN" --push-aes-key "$PUSH_AES_KEY" \
  --push-mode "${PUSH_MODE:-safe}" --push-format "${PUSH_FORMAT:-json}" >"$state/sim.out" 2>"$state/sim.log" &
echo $! >"$state/sim.pid"
sim=""
for _ in $(seq 1 50); do
  sim="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wechat_sim"])' "$state/sim.out" 2>/dev/null || true)"
  [ -n "$sim" ] && break
  sleep 0.1
done
[ -n "$sim" ] || { echo "dev: the simulator did not start; see $state/sim.log" >&2; exit 1; }

{
  cat "$state/tables.env"
  cat "$state/queues.env"
  echo "WECHAT_APPID=$APPID"
  echo "WECHAT_SECRET=$SECRET"
  echo "WECHAT_API_BASE=$sim"
  echo "WECHAT_PUSH_TOKEN=$PUSH_TOKEN"
  echo "WECHAT_PUSH_AES_KEY=$PUSH_AES_KEY"
  echo "GRANT_SOURCE=${GRANT_SOURCE:-client}"
  echo "AWS_ENDPOINT_URL_DYNAMODB=$dynamodb"
  echo "AWS_ENDPOINT_URL_SQS=$sqs"
  echo "AWS_ACCESS_KEY_ID=local"
  echo "AWS_SECRET_ACCESS_KEY=local"
  echo "AWS_REGION=us-east-1"
  echo "RUST_LOG=${RUST_LOG:-info}"
} >"$state/functions.env"

# The functions under cargo lambda watch on a port of their own; in front of
# it, on the API's port, devstack's API Gateway makes each request the event
# API Gateway would send (with the IAM authorizer's context on the business
# routes, as once a SigV4 signature holds) and passes Invoke API calls through.
functions_port="$(free_port)"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$functions_port" --env-file "$state/functions.env" \
  >"$state/functions.log" 2>&1 &
echo $! >"$state/watch.pid"
setsid target/debug/devstack api-gateway --port "$port" --functions "http://127.0.0.1:$functions_port" \
  >"$state/gateway.log" 2>&1 &
echo $! >"$state/gateway.pid"

# Ready when /login answers (an empty body is a 400: the function runs).
ready=false
for _ in $(seq 1 600); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/login" -H 'content-type: application/json' -d '{}' 2>/dev/null || true)"
  if [ "$code" = "400" ]; then ready=true; break; fi
  sleep 0.5
done
$ready || { echo "dev: the functions did not come up; see $state/functions.log" >&2; exit 1; }

invoke="$api/2015-03-31/functions/send/invocations"
tick="${TICK_SECONDS:-60}"
setsid bash -c "while sleep $tick; do
  echo \"\$(date -u +%FT%TZ) tick: \$(curl -s -X POST '$invoke' -H 'content-type: application/json' --data-binary @'$root/events/send-scheduled.json')\"
done" >"$state/ticker.log" 2>&1 &
echo $! >"$state/ticker.pid"
# The broadcast queues' event source mappings, invoking send through the Invoke API.
(set -a; . "$state/queues.env"; set +a
 exec setsid target/debug/devstack event-sources --endpoint "$sqs" --invoke "$invoke") >"$state/sources.log" 2>&1 &
echo $! >"$state/sources.pid"

cat >"$state/stack.env" <<EOF
API_URL=$api
INVOKE_URL=$api
SIM_URL=$sim
DYNAMODB_URL=$dynamodb
SQS_URL=$sqs
EOF
up=true

cat <<EOF

Local stack is up (state and logs in .dev/):
  HTTP API (devstack's API Gateway)     $api   /login /subscriptions /messages /messages/{id} /broadcasts /broadcasts/{id} /wechat/callback
  send, Lambda Invoke API               $invoke
  send schedule                         every ${tick}s (events/send-scheduled.json; log .dev/ticker.log)
  WeChat simulator                      $sim   (pushes to $api/wechat/callback, ${PUSH_MODE:-safe} mode, ${PUSH_FORMAT:-json})
  DynamoDB Local                        $dynamodb   (tables: .dev/tables.env)
  SQS (moto), broadcast queues          $sqs   (.dev/queues.env; event source mappings log .dev/sources.log)
  function logs                         .dev/functions.log

Try it (or run: make demo):
  OPENID=\$(curl -s -X POST $sim/sim/users -d '{}' -H 'content-type: application/json' | python3 -c 'import json,sys;print(json.load(sys.stdin)["openid"])')
  CODE=\$(curl -s -X POST $sim/sim/users/\$OPENID/code | python3 -c 'import json,sys;print(json.load(sys.stdin)["code"])')
  TOKEN=\$(curl -s -X POST $api/login -H 'content-type: application/json' -d "{\"code\":\"\$CODE\"}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
  curl -s -X POST $sim/sim/users/\$OPENID/subscribe -H 'content-type: application/json' -d '{"results":{"tmpl_meeting_reminder":"accept"}}'
  curl -s -X POST $api/subscriptions -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"results":{"tmpl_meeting_reminder":"accept"}}'
  curl -s -X POST $api/messages -H 'content-type: application/json' -d "{\"openid\":\"\$OPENID\",\"template_id\":\"tmpl_meeting_reminder\",\"data\":{\"thing1\":\"项目评审会\",\"time2\":\"2026-11-24 14:00\"}}"
  curl -s -X POST $invoke --data-binary @events/send-scheduled.json
  curl -s $sim/sim/users/\$OPENID/inbox
  # A broadcast to everyone holding the template (the user above), then its progress:
  ID=\$(curl -s -X POST $api/broadcasts -H 'content-type: application/json' -d '{"template_id":"tmpl_meeting_reminder","data":{"thing1":"每日打卡","time2":"2026-11-24 08:00"}}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  curl -s $api/broadcasts/\$ID    # planning -> sending -> done
EOF

if $detach; then
  exit 0
fi
echo
echo "Ctrl-C stops everything. Function logs follow:"
tail -n 0 -f "$state/functions.log" &
tail_pid=$!
# The trap only ends the wait; stopping happens below, outside the trap.
trap 'kill $tail_pid 2>/dev/null || true' INT TERM
wait "$tail_pid" || true
trap '' INT TERM
echo
echo "dev: stopping"
stop
