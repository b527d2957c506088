#!/usr/bin/env python3
"""Slowloris, for tests: opens --count connections to HOST:PORT and sends each a request one
byte every --interval seconds, never finishing it; then reports, as one JSON line on stdout,
how many the server closed and how long the longest lasted. A server with a deadline per
request closes them all within it; one with only an idle timeout keeps them for ever.
"""
import argparse
import json
import socket
import sys
import time


def main():
    parser = argparse.ArgumentParser(description="Hold connections with requests that never end.")
    parser.add_argument("--connect", required=True, help="HOST:PORT")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to keep trying")
    settings = parser.parse_args()
    host, _, port = settings.connect.rpartition(":")
    request = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000

    sockets, opened_at, closed_at, sent = [], [], [None] * settings.count, [0] * settings.count
    for _ in range(settings.count):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.setblocking(False)
        sockets.append(s)
        opened_at.append(time.monotonic())
    print(f"slow-clients: {settings.count} connections open to {settings.connect}", file=sys.stderr, flush=True)

    end = time.monotonic() + settings.seconds
    while time.monotonic() < end and any(c is None for c in closed_at):
        for i, s in enumerate(sockets):
            if closed_at[i] is not None:
                continue
            try:
                # Anything the server says (a 503, a 408) and then EOF, or a reset: closed.
                data = s.recv(4096)
                if data == b"":
                    closed_at[i] = time.monotonic()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic()
                continue
            try:
                s.send(request[sent[i]:sent[i] + 1])
                sent[i] += 1
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic()
        time.sleep(settings.interval)

    now = time.monotonic()
    lasted = [(c if c is not None else now) - o for c, o in zip(closed_at, opened_at)]
    closed = sum(1 for c in closed_at if c is not None)
    print(json.dumps({"opened": settings.count, "closed": closed, "longestSeconds": round(max(lasted), 2),
                      "bytesSent": sum(sent)}), flush=True)
    print(f"slow-clients: the server closed {closed} of {settings.count}; the longest lasted {max(lasted):.1f} s",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
