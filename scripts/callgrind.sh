#!/usr/bin/env bash
# Instructions per invocation of cold starts, by callgrind: a measurement aid
# for the performance budget (docs/performance.md), not part of the tests.
#
#   scripts/callgrind.sh FUNCTION... [-- HARNESS-ARGS]
#   e.g. scripts/callgrind.sh login send -- --production-secrets
#   CALLGRIND_ARGS=--cache-sim=yes scripts/callgrind.sh send   # cache misses too
#
# Builds the named functions with the `profiling` profile (the release build
# with symbols) and the rest as `make bench` does, then runs the bench
# harness once: one cold start and three warm invocations of every function,
# the named ones under `valgrind --tool=callgrind`, dumping at the start of
# every invocation (`shared::metrics::set_request_id`; lambda_runtime's
# `amzn_trace_env` for the floor), so init, the first invocation and the
# warm ones are counted apart. Prints the instructions of
# each part, the cold-start penalty in instructions (to the first answer, less
# a warm invocation) and, when floors are among the named, each function's
# penalty against them (lambda-floor-dynamodb is the one a function of ours
# is judged by: each builds the DynamoDB client and serves from DynamoDB); the profiles stay
# in target/callgrind/ for callgrind_annotate.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
functions=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do functions+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#functions[@]} -gt 0 ] || { echo "usage: $0 FUNCTION... [-- HARNESS-ARGS]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

scripts/ensure-tools.sh dynamodb sqs lambda
export PATH="$root/.tools/venv/bin:$PATH"
all=(login subscribe messages send callback lambda-floor lambda-floor-dynamodb)
# The broadcast queues' batches are scenarios of their own, run by `send`
# (devstack's scenarios::binary).
queue_scenarios=(broadcast-plan broadcast-deliver)
binary() { case $1 in broadcast-*) echo send ;; *) echo "$1" ;; esac; }
packages() { for p in "$@"; do binary "$p"; done | awk '!seen[$0]++ { print "-p"; print }'; }
mapfile -t all_packages < <(packages "${all[@]}")
mapfile -t profiled_packages < <(packages "${functions[@]}")
cargo lambda build --release --locked "${all_packages[@]}" >&2
cargo lambda build --release --locked -p bench >&2
cargo build --profile profiling --locked "${profiled_packages[@]}" >&2

out="$root/target/callgrind"
bins="$out/bin"
rm -rf "$bins" && mkdir -p "$bins"
for f in "${all[@]}" "${queue_scenarios[@]}"; do
    mkdir -p "$bins/$f"
    ln -s "$root/target/lambda/$(binary "$f")/bootstrap" "$bins/$f/bootstrap"
done
for f in "${functions[@]}"; do
    rm -f "$out/$f".*
    rm "$bins/$f/bootstrap"
    at='*shared*metrics*set_request_id*'
    [ "$f" = lambda-floor ] && at='*amzn_trace_env*'
    cat > "$bins/$f/bootstrap" <<EOT
#!/bin/sh
exec valgrind --tool=callgrind ${CALLGRIND_ARGS:-} --callgrind-out-file=$out/$f.%p.cg --dump-before='$at' $root/target/profiling/$(binary "$f")
EOT
    chmod +x "$bins/$f/bootstrap"
done

endpoint="$(scripts/dynamodb-local.sh start)"
trap 'scripts/dynamodb-local.sh stop; scripts/sqs-local.sh stop' EXIT
export AWS_ENDPOINT_URL_DYNAMODB="$endpoint"
# The test environment creates the broadcast queues (messages and send need their URLs).
export AWS_ENDPOINT_URL_SQS="$(scripts/sqs-local.sh start)"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export RUST_LOG="${RUST_LOG:-warn}"
# Under valgrind a start takes seconds: a short DynamoDB Local warm-up, one cold start.
target/lambda/bench/bootstrap --bin-dir "$bins" --messages 0 --skip-broadcast --runs 1 --warm 3 --warm-up 5 "$@" > "$out/bench.txt"

# Dump 1 ends where our handler gets the first event (init, and the
# runtime fetching and decoding that event), 2 is the first invocation,
# 3 and on the warm ones. (The harness kills the process at the
# end, so what follows the last dump is not written.)
declare -A penalty
for f in "${functions[@]}"; do
    parts=()
    for part in 1 2 3; do
        file="$(ls "$out/$f".*.cg."$part" 2>/dev/null | head -n 1 || true)"
        total="$( [ -n "$file" ] && awk '/^totals:/ {print $2}' "$file" || true)"
        parts+=("${total:-0}")
        case $part in 1) name="to 1st handler" ;; 2) name="1st invocation" ;; 3) name="warm invocation" ;; esac
        printf '%-22s %-16s %12s instructions\n' "$f" "$name" "${total:-?}"
    done
    # The cold-start penalty in instructions, as make bench's in time: the
    # start to the first answer, less a warm invocation.
    penalty[$f]=$(( parts[0] + parts[1] - parts[2] ))
    printf '%-22s %-16s %12s instructions\n' "$f" "cold-start penalty" "${penalty[$f]}"
done
# Against each floor profiled in the same run (every function of ours is
# DynamoDB-backed, so lambda-floor-dynamodb is the one it is judged by).
for f in "${functions[@]}"; do
    case $f in lambda-floor*) continue ;; esac
    for floor in lambda-floor-dynamodb lambda-floor; do
        [ -n "${penalty[$floor]:-}" ] && [ "${penalty[$floor]}" -gt 0 ] || continue
        awk -v f="$f" -v fl="$floor" -v a="${penalty[$f]}" -v b="${penalty[$floor]}" \
            'BEGIN { printf "%-22s x %-22s %.2f (cold-start penalty in instructions)\n", f, fl, a / b }'
    done
done
