"""Stores TRACES traces t1..tN, each with SPANS spans, through the service's POST /traces.

Usage: python3 seed.py http://127.0.0.1:PORT TRACES SPANS
Four connections in parallel, kept alive; a trace that exists already (409) is left as it is.
"""

import http.client
import json
import sys
import threading
from urllib.parse import urlsplit


def seed(base, ids, spans):
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for i in ids:
        start = 1_700_000_000_000_000 + i * 1_000
        trace = {
            "id": f"t{i}",
            "name": f"GET /orders/{i}",
            "spans": [
                {
                    "id": f"s{j}",
                    **({"parent_id": "s0"} if j else {}),
                    "name": "handler" if j == 0 else f"SELECT orders part {j}",
                    "start_us": start + j * 10,
                    "duration_us": 1_000 if j == 0 else 40 + j,
                }
                for j in range(spans)
            ],
        }
        conn.request("POST", "/traces", json.dumps(trace), {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status not in (201, 409):
            sys.exit(f"POST /traces t{i}: {response.status}")
    conn.close()


def main():
    base, traces, spans = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ids = list(range(1, traces + 1))
    workers = [
        threading.Thread(target=seed, args=(base, ids[k::4], spans)) for k in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
