#!/usr/bin/env python3
"""How long a broadcast to N grantees takes on AWS, from the per-message
costs `make bench` measures and limits AWS documents (docs/broadcasts.md
names the source of every input). A second-by-second model, not a
measurement:

  scripts/projection.py                      # the table in docs/broadcasts.md
  scripts/projection.py --latency 0.2 --warm 8000 --plan 16 --deliver 40

Each second: the delivery queue's event source mapping has at most
min(DeliveryConcurrency, 5 + 300/min x t) environments, each with 32 WeChat
calls in flight; planning reads min(PlanConcurrency, 16 segments) pages of
100 at a time; nothing is delivered before it is planned; and when a table
or index would need more write units than it serves at once (its warm
throughput), planning and delivery both slow to fit (DynamoDB throttles,
the SDK and the queues retry).
"""
import argparse

SEGMENTS = 16
PAGE = 100
CALLS_PER_ENVIRONMENT = 32  # dispatch::CONCURRENCY
RAMP_START, RAMP_PER_SECOND = 5, 300 / 60  # SQS event source mapping scaling (AWS Lambda guide)
OUTCOME_WRITE_S = 0.01  # one conditional UpdateItem after each WeChat answer

# Write units per one-time broadcast message (items under 1 KB; a
# transaction costs twice), per table or index: (when planned, when delivered).
WRITE_UNITS = {
    "messages": (2, 2),  # put in the scheduling transaction; outcome + delivered
    "by_broadcast": (1, 2),  # the index item follows each status change
    "grants": (2, 0),  # the credit spent in the same transaction
    "by_template_segment": (1, 0),  # projects ALL: the credit change
    "dedupe": (0, 1),  # the sent event's record
    "by_msgid": (0, 1),
}


def project(n, latency, step_s, plan, deliver, warm):
    planned = delivered = 0.0
    t = 0
    planned_at = None
    peak = {k: 0.0 for k in WRITE_UNITS}
    while delivered < n and t < 24 * 3600:
        environments = min(deliver, RAMP_START + RAMP_PER_SECOND * t)
        d = environments * CALLS_PER_ENVIRONMENT / (latency + OUTCOME_WRITE_S)
        p = min(plan, SEGMENTS) * PAGE / step_s if planned < n else 0.0
        p = min(p, n - planned)
        d = min(d, planned - delivered + p)
        need = {k: wp * p + wd * d for k, (wp, wd) in WRITE_UNITS.items()}
        scale = min([1.0] + [warm / v for v in need.values() if v > 0])
        p, d = p * scale, d * scale
        for k, (wp, wd) in WRITE_UNITS.items():
            peak[k] = max(peak[k], wp * p + wd * d)
        planned += p
        delivered += d
        t += 1
        if planned_at is None and planned >= n:
            planned_at = t
    return planned_at, t, peak


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--grantees", type=int, default=1_000_000)
    a.add_argument("--latency", type=float, nargs="*", default=[0.2, 0.3], help="WeChat's answer time, s")
    a.add_argument("--step", type=float, default=0.3, help="one planning page, s")
    a.add_argument("--plan", type=int, nargs="*", default=[8, 16], help="PlanConcurrency")
    a.add_argument("--deliver", type=int, nargs="*", default=[20], help="DeliveryConcurrency")
    a.add_argument("--warm", type=int, nargs="*", default=[12_000, 4_000],
                   help="write units/s each table and index serves at once (BroadcastWarmWriteUnits; 4,000 = a new on-demand table)")
    args = a.parse_args()
    print(f"{args.grantees:,} grantees, a planning page every {args.step} s\n")
    print("| warm WRU/s | WeChat latency s | PlanConcurrency | DeliveryConcurrency | planned min | reached min | peak WRU/s messages | by_broadcast | grants |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for warm in args.warm:
        for latency in args.latency:
            for plan in args.plan:
                for deliver in args.deliver:
                    planned_at, done, peak = project(args.grantees, latency, args.step, plan, deliver, warm)
                    print(f"| {warm:,} | {latency} | {plan} | {deliver} | {planned_at / 60:.1f} | {done / 60:.1f} "
                          f"| {peak['messages']:,.0f} | {peak['by_broadcast']:,.0f} | {peak['grants']:,.0f} |")


if __name__ == "__main__":
    main()
