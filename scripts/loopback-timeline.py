#!/usr/bin/env python3
"""Where a cold start's time goes, from the loopback traffic, without slowing
the processes down the way strace does (README, Performance).

  sudo scripts/loopback-timeline.py capture FILE      # run while `bench` runs; Ctrl-C to stop
  scripts/loopback-timeline.py report FILE DDB_PORT   # DDB_PORT: DynamoDB Local's (.dev/dynamodb.port)

`capture` records every TCP segment on `lo` (kernel timestamps, first 700
payload bytes) through an AF_PACKET socket (root, Linux). `report` finds each
function process by its Runtime API connection (the bench starts them in its
round-robin order: floor, login, subscribe, messages, send, callback) and
prints, per function, the first invocation against the warm ones: total time
(event delivered -> response posted) and the time spent waiting for DynamoDB
Local, with the answer times by operation. A measurement aid; not part of the tests."""
import re, socket, statistics, struct, sys
from collections import defaultdict

ORDER = ["lambda-floor", "login", "subscribe", "messages", "send", "callback"]


def capture(path):
    out = open(path, "w")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("lo", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    try:
        while True:
            data, anc, _, addr = s.recvmsg(65535, 1024)
            if addr[2] == socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00":
                continue  # loopback shows each segment twice; IPv4 only
            ts = next((a + b / 1e9 for lvl, typ, d in anc if typ == 35 for a, b in [struct.unpack("qq", d[:16])]), 0.0)
            ip = data[14:]
            if ip[9] != 6:
                continue
            tcp = ip[(ip[0] & 15) * 4:]
            sport, dport = struct.unpack("!HH", tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                out.write("%.6f %d %d %r\n" % (ts, sport, dport, payload[:700]))
    except KeyboardInterrupt:
        out.close()


def report(path, ddb):
    rows = []
    for line in open(path):
        t, sp, dp, pl = line.rstrip("\n").split(" ", 3)
        if pl != "b''":  # bare ACKs
            rows.append((float(t), int(sp), int(dp), pl))
    first_poll = {}
    for r in rows:
        if "runtime/invocation/next" in r[3]:
            first_poll.setdefault(r[2], r[0])
    stats = defaultdict(lambda: {"cold": [], "warm": [], "ops": defaultdict(list)})
    for i, port in enumerate(sorted(first_poll, key=first_poll.get)):
        name = ORDER[i % len(ORDER)]
        own = [r for r in rows if port in (r[1], r[2])]
        window = [r for r in rows if own[0][0] <= r[0] <= own[-1][0]]
        inv, start, asked, waited, since = -1, None, {}, 0.0, None
        for r in window:
            if r[1] == port and r[3].startswith("b'HTTP/1.1 200"):
                inv, start, waited = inv + 1, r[0], 0.0
            elif start is not None and r[2] == port and r[3].startswith("b'POST /2018"):
                stats[name]["cold" if inv == 0 else "warm"].append(((r[0] - start) * 1e3, waited * 1e3))
                start = None
            elif start is not None and r[2] == ddb and r[3].startswith("b'POST"):
                op = re.search(r"x-amz-target: DynamoDB_20120810\.(\w+)", r[3], re.I)
                if not asked:
                    since = r[0]
                asked[r[1]] = (r[0], op.group(1) if op else "?")
            elif start is not None and r[1] == ddb and r[2] in asked:
                t, op = asked.pop(r[2])
                stats[name]["ops"][(inv == 0, op)].append((r[0] - t) * 1e3)
                if not asked:  # waiting while any request is unanswered
                    waited += r[0] - since
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    for name in ORDER:
        s = stats.get(name)
        if not s or not s["cold"]:
            continue
        c, w = s["cold"], s["warm"]
        print("%-12s 1st invocation %.2f ms (DynamoDB %.2f) | warm %.2f ms (DynamoDB %.2f) | %d cold starts"
              % (name, med([x[0] for x in c]), med([x[1] for x in c]), med([x[0] for x in w]), med([x[1] for x in w]), len(c)))
        for (cold, op), v in sorted(s["ops"].items()):
            print("    %-4s %-15s answered in %.2f ms median, %.2f max (%d)" % ("cold" if cold else "warm", op, med(v), max(v), len(v)))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "capture":
        capture(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "report":
        report(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
