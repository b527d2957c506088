#!/usr/bin/env python3
"""Wake-up at a rollout's start, with real waiting connections (issue 14's "wake-up" bench).

Starts fledge-hbs (embedded store, anonymous beats), registers HOSTS hosts, measures the steady
rate of idle beats on 64 keep-alive connections (the reference), then holds one long-poll beat
(`?wait=60`) per host on a connection of its own and POSTs a rollout. Connections stay open
after their answers, as agents keep theirs for the next beat, until every host is answered
(closing 19,000 at once costs HBS more than answering them: a Swift task group removes a
finished connection's task in time linear in the connections open). Two runs, each on a fresh
HBS:
  one batch:  every host is admissible; time from the POST to the last order answered, and the
              hosts answered per second after the POST's own answer (the simulator's HBSService);
  canary:     a first batch of FIRST hosts; time from the POST to its last order (woken first),
              and to the last answer of all (the rest woken with nothing to do yet).
The reference is HOSTS / steady beats per second: how long answering every host once takes at
the rate HBS sustains. HBS's resident memory (VmRSS) is read before the long-polls and once they
all wait: what a waiting host costs, for sizing an instance. Prints a table and one JSON line.

Usage: wake_up.py --hbs .build-bench/release/fledge-hbs [--hosts 19000] [--first 1000]
The client is this one Python process (asyncio), at a higher priority than HBS where it may
(root): its own CPU is part of what is measured, but it reads answers as they are sent.
"""
import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beat(host):
    return json.dumps({"hostname": host, "ip": "127.0.0.1", "version": "1.0.0", "labels": {}, "state": "idle", "held": []}).encode()


async def exchange(reader, writer, path, body):
    writer.write(b"POST %s HTTP/1.1\r\nHost: hbs\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), len(body), body))
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


async def register(port, hosts, seconds=None):
    """Beats every host once (seconds=None), or beats round and round for `seconds`; answers/s."""
    count = 0
    deadline = time.monotonic() + (seconds or 1e9)

    async def worker(mine):
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            for host in mine:
                await exchange(reader, writer, "/v1/heartbeat", beat(host))
                count += 1
                if time.monotonic() > deadline:
                    writer.close()
                    return
            if seconds is None:
                writer.close()
                return

    started = time.monotonic()
    await asyncio.gather(*(worker(hosts[i::64]) for i in range(64)))
    return count / (time.monotonic() - started)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def wake(agent_port, admin_port, hosts, canary, pid):
    """Holds a long-poll per host, POSTs the rollout; (seconds to each answer, whether it had an order), and HBS's
    RSS (KiB) before the long-polls and while they all wait."""
    rss_before = rss_kib(pid)
    connected = 0
    all_connected = asyncio.Event()
    answers = {}

    async def waiter(host):
        nonlocal connected
        reader, writer = await asyncio.open_connection("127.0.0.1", agent_port)
        body = beat(host)
        writer.write(b"POST /v1/heartbeat?wait=60 HTTP/1.1\r\nHost: hbs\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        connected += 1
        if connected == len(hosts):
            all_connected.set()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        answer = await reader.readexactly(length)
        answers[host] = (time.monotonic(), b'"order"' in answer)
        return writer  # kept open, as an agent keeps its connection to HBS for the next beat

    tasks = [asyncio.create_task(waiter(h)) for h in hosts]
    await all_connected.wait()
    await asyncio.sleep(2)  # every beat read and waiting in HBS
    rss_waiting = rss_kib(pid)
    spec = {"release": {"name": "fledge-agent", "version": "1.1.0"}, "sources": [{"url": "http://127.0.0.1:1", "capacityMbps": 100000000}],
            "maxConcurrent": len(hosts), "canary": canary, "peers": False}
    request = urllib.request.Request("http://127.0.0.1:%d/v1/rollouts" % admin_port, data=json.dumps(spec).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    posted = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, lambda: urllib.request.urlopen(request, timeout=60).read())
    created = time.monotonic() - posted
    writers = await asyncio.gather(*tasks)
    for writer in writers:
        writer.close()
    return [(t - posted, ordered) for t, ordered in answers.values()], rss_before, rss_waiting, created


def start_hbs(binary, directory):
    agent, admin = free_port(), free_port()
    child = subprocess.Popen([binary, "--data", directory, "--agent-listen", "127.0.0.1:%d" % agent, "--admin-listen", "127.0.0.1:%d" % admin,
                              "--anonymous-beats", "--fast-beat", "1"], stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", agent), timeout=0.2).close()
            return child, agent, admin
        except OSError:
            time.sleep(0.1)
    raise SystemExit("fledge-hbs did not listen")


async def run(binary, count, first):
    hosts = ["host-%05d" % i for i in range(count)]
    results = {}
    for name, canary in (("one batch", 0), ("canary", first)):
        with tempfile.TemporaryDirectory(prefix="fledge-wake-") as directory:
            child, agent, admin = start_hbs(binary, directory)
            try:
                await register(agent, hosts)
                rate = await register(agent, hosts, seconds=3)
                times, rss_before, rss_waiting, created = await wake(agent, admin, hosts, canary, child.pid)
            finally:
                child.kill()
                child.wait()
        ordered = sorted(t for t, o in times if o)
        everyone = sorted(t for t, _ in times)
        results[name] = {"beats_per_s": rate, "answered": len(times), "ordered": len(ordered),
                         "first_order_s": ordered[0] if ordered else None, "last_order_s": ordered[-1] if ordered else None,
                         "last_answer_s": everyone[-1], "reference_s": count / rate, "post_s": created,
                         "answers_per_s_after_post": len(times) / (everyone[-1] - created),
                         "rss_before_mib": rss_before / 1024, "rss_waiting_mib": rss_waiting / 1024,
                         "kib_per_waiting_host": (rss_waiting - rss_before) / count}
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hbs", required=True)
    parser.add_argument("--hosts", type=int, default=19000)
    parser.add_argument("--first", type=int, default=1000)
    args = parser.parse_args()
    # The client shares the cores with HBS: it runs at a higher priority (where it may), so it
    # reads each answer when HBS sends it instead of when the scheduler lets it (without, the
    # first batch's orders, sent within 0.2 s, were read anywhere between 0.25 and 0.9 s).
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        print("wake_up.py: cannot raise this client's priority (not root): answers are read when the scheduler allows")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.hosts + 100 > hard:
        raise SystemExit("--hosts %d needs more than the %d open files this process may have" % (args.hosts, hard))
    results = asyncio.run(run(args.hbs, args.hosts, args.first))
    print("wake-up: %d hosts, each holding a long-poll beat on a connection of its own, then POST /v1/rollouts" % args.hosts)
    print("%-10s  %10s  %8s  %8s  %14s  %13s  %14s  %12s  %8s" % (
        "run", "beats/s", "answered", "ordered", "first order s", "last order s", "last answer s", "reference s", "ratio"))
    for name, r in results.items():
        print("%-10s  %10.0f  %8d  %8d  %14.3f  %13.3f  %14.3f  %12.3f  %8.2f" % (
            name, r["beats_per_s"], r["answered"], r["ordered"], r["first_order_s"], r["last_order_s"], r["last_answer_s"],
            r["reference_s"], r["last_order_s"] / r["reference_s"]))
    for name, r in results.items():
        print("  * %s: HBS resident %.1f MiB before the long-polls, %.1f MiB with all %d waiting: %.1f KiB per waiting host" % (
            name, r["rss_before_mib"], r["rss_waiting_mib"], args.hosts, r["kib_per_waiting_host"]))
    for name, r in results.items():
        print("  * %s: POST answered (rollout durable) after %.3f s; then %.0f hosts answered per second until the last (what the simulator's HBSService takes)" % (
            name, r["post_s"], r["answers_per_s_after_post"]))
    print("  * reference: hosts / steady idle beats per second on 64 keep-alive connections, measured on the same HBS just before;")
    print("    ratio: last order / reference (one batch: every host's order; canary: the first batch's, woken first).")
    print(json.dumps({"bench": "wake-up", "hosts": args.hosts, "first": args.first, "results": results}))


if __name__ == "__main__":
    main()
