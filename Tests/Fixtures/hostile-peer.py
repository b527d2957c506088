#!/usr/bin/env python3
"""A misbehaving Fledge peer, as a real process, for tests.

It beats to HBS like an agent host (so HBS lists it as a peer that holds the release),
publishes a piece map that claims every piece, and then serves release files badly in one
of several ways (--mode): forever, too slowly, too much, too little, half then a reset,
not at all, or wrong bytes. Tests start it beside real agents and require that they upgrade
anyway, within a bounded time: one bad peer must not stall the hosts that ask it.

Python 3, standard library only. Every request is logged to stderr as one line:
    MODE METHOD PATH RANGE STATUS
and every new upgrade order HBS hands it as one line starting with "order".
"""

import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ["endless-200", "trickle-206", "long-206", "short-206", "close-mid-piece", "lying-map", "corrupt"]

# Size claimed in Content-Range when no --origin tells the real one.
DEFAULT_SIZE = 64 << 20
# trickle-206: 130 bytes every 0.1 s, about 1.3 KB/s: just above a 1 KiB/s low-speed limit.
TRICKLE_BYTES = 130
TRICKLE_PAUSE = 0.1
# long-206: this many bytes more than asked.
LONG_EXTRA = 65536
# The availability stream's keep-alive comment interval.
PING_SECONDS = 2.0
# Random bytes for endless-200 and corrupt, made once: generating them per request would cost
# the machine more CPU than the clients it is testing.
RANDOM_POOL = os.urandom(1 << 20)


def log(line):
    print(line, file=sys.stderr, flush=True)


def random_bytes(count, start=0):
    """`count` bytes of the random pool, from `start` on, wrapping around."""
    out = bytearray()
    offset = start % len(RANDOM_POOL)
    while len(out) < count:
        take = min(count - len(out), len(RANDOM_POOL) - offset)
        out += RANDOM_POOL[offset:offset + take]
        offset = 0
    return bytes(out)


class Origin:
    """The real origin (fledge-seeder serve), when --origin is given: sizes, byte ranges and
    the manifest, each fetched once and cached, so the bad modes can send right bytes badly."""

    def __init__(self, base):
        self.base = base.rstrip("/") if base else None
        self.lock = threading.Lock()
        self.sizes = {}
        self.ranges = {}
        self.manifests = {}

    def url(self, path):
        return self.base + path

    def size(self, path):
        """Size of the file at `path` (/NAME/VERSION/FILE), or None if unknown."""
        if not self.base:
            return None
        with self.lock:
            if path in self.sizes:
                return self.sizes[path]
        size = None
        try:
            request = urllib.request.Request(self.url(path), headers={"Range": "bytes=0-0"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
                content_range = answer.headers.get("Content-Range", "")
                if "/" in content_range and content_range.rsplit("/", 1)[1].strip().isdigit():
                    size = int(content_range.rsplit("/", 1)[1])
                elif answer.status == 200 and answer.headers.get("Content-Length"):
                    size = int(answer.headers["Content-Length"])
        except (urllib.error.URLError, OSError, ValueError) as error:
            log(f"origin: size of {path}: {error}")
            return None
        with self.lock:
            self.sizes[path] = size
        return size

    def bytes(self, path, first, last):
        """Bytes first...last of `path` from the origin, or None if it will not give them."""
        if not self.base:
            return None
        key = (path, first, last)
        with self.lock:
            if key in self.ranges:
                return self.ranges[key]
        try:
            request = urllib.request.Request(self.url(path), headers={"Range": f"bytes={first}-{last}"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = answer.read()
                if answer.status == 200:
                    body = body[first:last + 1]
        except (urllib.error.URLError, OSError) as error:
            log(f"origin: {path} bytes={first}-{last}: {error}")
            return None
        if len(body) != last - first + 1:
            log(f"origin: {path} bytes={first}-{last}: got {len(body)} bytes")
            return None
        with self.lock:
            self.ranges[key] = body
        return body

    def manifest(self, path):
        """The origin's manifest.json at `path`, or None."""
        if not self.base:
            return None
        with self.lock:
            if path in self.manifests:
                return self.manifests[path]
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as answer:
                body = answer.read()
        except (urllib.error.URLError, OSError) as error:
            log(f"origin: {path}: {error}")
            return None
        with self.lock:
            self.manifests[path] = body
        return body


def parse_range(header, size):
    """(first, last) of a `Range: bytes=a-b` header (a-, -n too), clamped to `size`; None for
    no header; "bad" for one it cannot satisfy."""
    if not header:
        return None
    if not header.startswith("bytes=") or "," in header:
        return "bad"
    spec = header[len("bytes="):].strip()
    first_text, _, last_text = spec.partition("-")
    try:
        if first_text == "":
            count = int(last_text)
            if count <= 0:
                return "bad"
            return (max(0, size - count), size - 1)
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return "bad"
    if first > last or first >= size:
        return "bad"
    return (first, min(last, size - 1))


class HostilePeer(BaseHTTPRequestHandler):
    """One connection from an agent: the piece map, its availability stream, release files
    served the way --mode says."""

    protocol_version = "HTTP/1.1"
    server_version = "hostile-peer"
    sys_version = ""
    # Set on the class by main().
    settings = None
    origin = None

    def log_message(self, format, *args):
        pass  # one line per request is written by `note`, with the mode and range

    def note(self, status):
        log(f"{self.settings.mode} {self.command} {self.path} {self.headers.get('Range', '-')} {status}")

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout, TimeoutError) as error:
            log(f"{self.settings.mode} client {self.client_address[0]}:{self.client_address[1]} went away: {type(error).__name__}")
            self.close_connection = True

    def send(self, status, headers, body=b""):
        """A whole answer: status, headers, Content-Length, body."""
        self.note(status)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self, why):
        self.send(404, [("Content-Type", "text/plain")], (why + "\n").encode())

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        parts = [part for part in path.split("/") if part]
        name, version = self.settings.name, self.settings.version
        if parts == ["_fledge", "pieces", name, version]:
            if "watch" in query:
                return self.watch()
            return self.send(200, [("Content-Type", "text/plain")], ("1" * self.settings.pieces + "\n").encode())
        if len(parts) == 3 and parts[0] == name and parts[1] == version:
            if self.command == "HEAD":
                return self.not_found("no HEAD here")
            return self.release_file(path, parts[2])
        self.not_found(f"not here: {path}")

    # The availability stream: one map event, then only pings, never "complete".

    def watch(self):
        self.note(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        count = self.settings.pieces
        self.chunk(f"event: map\nid: 7.{count}\ndata: {'1' * count}\n\n".encode())
        while True:
            time.sleep(PING_SECONDS)
            self.chunk(b": ping\n\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # Release files.

    def release_file(self, path, file):
        mode = self.settings.mode
        if mode == "endless-200":
            return self.endless()
        if file == "manifest.json":
            manifest = self.origin.manifest(path)
            if manifest is None:
                return self.not_found("no manifest here (no --origin to take it from)")
            return self.send(200, [("Content-Type", "application/json")], manifest)
        if mode == "lying-map":
            return self.not_found("the map said so, but no")
        size = self.origin.size(path)
        known = size is not None
        asked = parse_range(self.headers.get("Range"), size if known else DEFAULT_SIZE)
        if asked == "bad":
            self.note(416)
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size if known else DEFAULT_SIZE}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if asked is None:
            asked = (0, (size if known else DEFAULT_SIZE) - 1)
        first, last = asked
        if not known:
            size = max(DEFAULT_SIZE, last + 1)
        count = last - first + 1

        def right_bytes(start, end):
            """Bytes start...end of the file: from the origin if it gives them, else zeros."""
            body = self.origin.bytes(path, start, end) if known else None
            return body if body is not None else bytes(end - start + 1)

        if mode == "trickle-206":
            self.partial(first, last, size, count)
            body = right_bytes(first, last)
            for offset in range(0, count, TRICKLE_BYTES):
                self.wfile.write(body[offset:offset + TRICKLE_BYTES])
                self.wfile.flush()
                time.sleep(TRICKLE_PAUSE)
        elif mode == "long-206":
            self.partial(first, last, size, count + LONG_EXTRA)
            self.wfile.write(right_bytes(first, last) + random_bytes(LONG_EXTRA, first))
        elif mode == "short-206":
            half = max(1, count // 2)
            self.partial(first, first + half - 1, size, half)
            self.wfile.write(right_bytes(first, first + half - 1))
        elif mode == "close-mid-piece":
            self.partial(first, last, size, count)
            half = max(1, count // 2)
            self.wfile.write(right_bytes(first, first + half - 1))
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.connection.close()
        elif mode == "corrupt":
            self.partial(first, last, size, count)
            self.wfile.write(random_bytes(count, first))

    def partial(self, first, last, size, length):
        """206 headers: Content-Range first-last/size, Content-Length `length`."""
        self.note(206)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def endless(self):
        """200, no length, random bytes at full speed until the client gives up."""
        self.note(200)
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        offset = 0
        block = 64 << 10
        while True:
            self.wfile.write(random_bytes(block, offset))
            offset += block


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        log(f"error serving {client_address[0]}:{client_address[1]}: {type(error).__name__}: {error}")


class Beats:
    """Beats to HBS every --beat-seconds as the agent host it pretends to be; takes the first
    order it gets as its own upgrade, and from then on reports it as downloading (claiming all
    pieces but one) or, with --claim whole, running and holding the release whole. With a
    fleet token it enrols first, as a real agent does, so HBS hears it as the host it names."""

    def __init__(self, settings, port, labels):
        self.settings = settings
        self.port = port
        self.labels = labels
        self.rollout = None
        self.last_order = None
        self.last_error = None
        self.secret = None

    def body(self):
        s = self.settings
        whole = [{"name": s.name, "version": s.version, "complete": True}]
        beat = {"hostname": s.hostname, "ip": "127.0.0.1", "version": s.from_version, "labels": self.labels,
                "state": "idle", "held": [], "peerPort": self.port}
        if s.claim == "whole":
            # A host that runs the release already and holds it whole: HBS vouches for a host
            # it saw run the version, so whole-file relay lists it from the rollout's start.
            beat["held"] = whole
            beat["version"] = s.version
        if self.rollout is not None:
            beat["rolloutId"] = self.rollout
            if s.claim == "pieces":
                beat["state"] = "downloading"
                beat["held"] = [{"name": s.name, "version": s.version, "complete": False,
                                 "verifiedPieces": max(1, s.pieces - 1)}]
        return json.dumps(beat).encode()

    def enrol(self):
        """Gets this host's secret with the fleet token (POST /v1/enrol), once."""
        with open(self.settings.fleet_token_file) as f:
            token = f.read().strip()
        request = urllib.request.Request(
            self.settings.hbs.rstrip("/") + "/v1/enrol", data=json.dumps({"hostname": self.settings.hostname}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            self.secret = json.loads(answer.read())["secret"]
        log(f"enrolled as {self.settings.hostname}")

    def beat(self):
        headers = {"Content-Type": "application/json"}
        if self.settings.fleet_token_file:
            if self.secret is None:
                self.enrol()
            headers.update({"Fledge-Host": self.settings.hostname, "Authorization": f"Bearer {self.secret}"})
        request = urllib.request.Request(
            self.settings.hbs.rstrip("/") + "/v1/heartbeat", data=self.body(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            reply = json.loads(answer.read() or b"{}")
        order = reply.get("order") if isinstance(reply, dict) else None
        if isinstance(order, dict) and order.get("rolloutId"):
            self.rollout = order["rolloutId"]
            if order != self.last_order:
                self.last_order = order
                sources = " ".join(order.get("sources") or [])
                fallbacks = " ".join(order.get("fallbackSources") or [])
                log(f"order {self.rollout}: {order.get('name')} {order.get('version')} from {sources or '-'}"
                    f" fallbacks {fallbacks or '-'}")

    def run(self):
        while True:
            try:
                self.beat()
                if self.last_error is not None:
                    log("heartbeat: HBS answers again")
                    self.last_error = None
            except Exception as error:  # never exit on HBS errors: it may be restarting
                text = f"{type(error).__name__}: {error}"
                if text != self.last_error:
                    log(f"heartbeat to {self.settings.hbs} failed ({text}); retrying")
                    self.last_error = text
            time.sleep(self.settings.beat_seconds)


def parse_labels(text):
    labels = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"label '{item}' is not KEY=VALUE")
        labels[key] = value
    return labels


def main():
    parser = argparse.ArgumentParser(description="A Fledge peer that holds a release and serves it badly (for tests).")
    parser.add_argument("--hbs", required=True, help="HBS agent listener, http://HOST:PORT")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve peers on")
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--name", default="fledge-agent")
    parser.add_argument("--version", default="1.1.0", help="the release it claims to hold")
    parser.add_argument("--from-version", default="1.0.0", help="the version it reports running")
    parser.add_argument("--pieces", type=int, required=True, help="pieces in the release (its manifest's total)")
    parser.add_argument("--labels", type=parse_labels, default={}, help="idc=a,rack=r1")
    parser.add_argument("--origin", help="the real origin: right bytes and the manifest come from there")
    parser.add_argument("--claim", choices=["pieces", "whole"], default="pieces")
    parser.add_argument("--fleet-token-file", help="enrol with this fleet token and beat with the secret HBS issues")
    parser.add_argument("--beat-seconds", type=float, default=0.5)
    settings = parser.parse_args()
    if settings.pieces < 1:
        parser.error("--pieces must be at least 1")
    host, _, port_text = settings.listen.rpartition(":")
    if not host or not port_text.isdigit():
        parser.error(f"--listen '{settings.listen}' is not HOST:PORT")

    HostilePeer.settings = settings
    HostilePeer.origin = Origin(settings.origin)
    try:
        server = Server((host, int(port_text)), HostilePeer)
    except OSError as error:
        log(f"cannot listen on {settings.listen}: {error}")
        return 2
    port = server.server_address[1]
    log(f"hostile peer {settings.hostname}: {settings.mode}, claims {settings.claim} of {settings.name} "
        f"{settings.version} ({settings.pieces} pieces), on {host}:{port}, beating to {settings.hbs}")
    threading.Thread(target=Beats(settings, port, settings.labels).run, name="beats", daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
