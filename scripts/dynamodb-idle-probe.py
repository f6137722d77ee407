#!/usr/bin/env python3
"""How DynamoDB Local answers a PutItem: on a kept-alive connection, on a fresh
one, and after the server sat idle for 30 ms (what a cold start gives it).
Usage: scripts/dynamodb-idle-probe.py PORT   (creates a table "probe").
A measurement aid for `make bench` (README, Performance; docs/performance.md); not part of the tests."""
import socket, time, sys, statistics, json, uuid
port = int(sys.argv[1])
def req(target, payload):
    body = json.dumps(payload).encode()
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/x-amz-json-1.0\r\n"
       b"X-Amz-Target: DynamoDB_20120810.%s\r\n"
       b"Authorization: AWS4-HMAC-SHA256 Credential=probe/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00\r\n"
       b"X-Amz-Date: 20261202T000000Z\r\nContent-Length: %d\r\n\r\n" % (port, target.encode(), len(body))) + body
def recv_resp(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(rest) < n:
        rest += s.recv(65536)
    return head, rest
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
s = conn(); s.sendall(req("CreateTable", {"TableName":"probe","AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}],"KeySchema":[{"AttributeName":"k","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"})); print(recv_resp(s)[0].split(b"\r\n")[0]); s.close()
def put():
    return req("PutItem", {"TableName":"probe","Item":{"k":{"S":uuid.uuid4().hex},"v":{"S":"x"*200}},"ConditionExpression":"attribute_not_exists(k)"})
def one(s):
    t = time.perf_counter(); s.sendall(put()); recv_resp(s); return time.perf_counter() - t
def fresh():
    s = conn(); d = one(s); s.close(); return d
def kept(n):
    s = conn(); one(s); out = [one(s) for _ in range(n)]; s.close(); return out
for _ in range(500): fresh()
mode = sys.argv[2] if len(sys.argv) > 2 else "loop"
for rnd in range(4):
    k = kept(40)
    f0 = [fresh() for _ in range(40)]
    gap = []
    for _ in range(15):
        time.sleep(0.03); gap.append(fresh())
    print("kept %.3f ms  fresh %.3f ms  fresh-after-30ms-idle %.3f ms (max %.1f)" % (statistics.median(k)*1000, statistics.median(f0)*1000, statistics.median(gap)*1000, max(gap)*1000))
s = conn(); one(s)
ka = []
for _ in range(30):
    time.sleep(0.03); ka.append(one(s))
print("kept-after-30ms-idle %.3f ms (max %.1f)" % (statistics.median(ka)*1000, max(ka)*1000))
