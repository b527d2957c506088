#!/usr/bin/env python3
"""Two fledge-hbs builds side by side: both run at once on their embedded stores, each with N
enrolled hosts beating with their credentials (what `fledge-bench hbs`'s embedded row sends),
and wrk passes alternate between them (new, old, old, new, ...) so the VM's drift from minute
to minute falls on both alike. Reports each pass, then per build the median beats/s, the median
CPU microseconds per beat (the server process's user + system time over the pass, and its
redis-server's with --redis) and RSS.

    python3 bench/hbs_ab.py --new .build-bench/release/fledge-hbs --old /tmp/old/fledge-hbs --hosts 100000

Needs wrk, and fledge-bench (--bench) for the wrk script of `fledge-bench hbs`. Ports 22001-22004 on 127.0.0.1; data under --workdir (removed at the end)."""
import argparse, concurrent.futures, http.client, json, os, re, secrets, shutil, socket, subprocess, sys, tempfile, time

ROLLOUT = ('{"release":{"name":"fledge-agent","version":"2.0.0"},'
           '"sources":[{"url":"http://cdn.test","capacityMbps":100000}],"maxConcurrent":100}')



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", required=True, help="fledge-hbs under test")
    parser.add_argument("--old", required=True, help="fledge-hbs to compare with")
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=6, help="measured passes of each build")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workdir", default="/tmp")
    parser.add_argument("--bench", default=".build-bench/release/fledge-bench", help="fledge-bench, for its wrk script")
    parser.add_argument("--redis", action="store_true",
                        help="each build on a redis-server of its own (AOF, appendfsync always, as fledge-bench hbs) instead of its embedded store")
    parser.add_argument("--rollout", action="store_true",
                        help="measure with a rollout active (fledge-bench hbs's: every host targeted, 100 at a time)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("hbs_ab: wrk is not installed (apt-get install wrk)")
    work = tempfile.mkdtemp(prefix="hbs-ab-", dir=args.workdir)
    builds = {"new": (args.new, 22001, 22002), "old": (args.old, 22003, 22004)}
    digits = max(5, len(str(args.hosts - 1)))
    names = [f"host-{i:0{digits}d}" for i in range(args.hosts)]
    procs, redis = {}, []
    try:
        for index, (name, (binary, agent, admin)) in enumerate(builds.items()):
            data = os.path.join(work, name)
            os.makedirs(data)
            with open(os.path.join(data, "fleet-token"), "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            store = []
            if args.redis:
                port = 22011 + index
                redis.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data, "--save", "",
                                               "--appendonly", "yes", "--appendfsync", "always"], stdout=subprocess.DEVNULL))
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                store = ["--redis", f"redis://127.0.0.1:{port}"]
            procs[name] = subprocess.Popen(
                [binary, "--data", data, "--agent-listen", f"127.0.0.1:{agent}", "--admin-listen", f"127.0.0.1:{admin}",
                 "--fleet-token-file", os.path.join(data, "fleet-token")] + store, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, (_, agent, _) in builds.items():  # up once it accepts connections
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", agent), timeout=1).close()
                    break
                except OSError:
                    if procs[name].poll() is not None:
                        raise SystemExit(f"hbs_ab: {name} ({builds[name][0]}) exited with {procs[name].returncode}")
                    time.sleep(0.1)
            else:
                raise SystemExit(f"hbs_ab: {name} does not listen on 127.0.0.1:{agent}")
        for name, (binary, agent, _) in builds.items():
            token = open(os.path.join(work, name, "fleet-token")).read().strip()

            def enrol(lane):
                connection, issued = http.client.HTTPConnection("127.0.0.1", agent), {}
                for i in range(lane, args.hosts, 8):
                    connection.request("POST", "/v1/enrol", json.dumps({"hostname": names[i]}),
                                       {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                    answer = connection.getresponse()
                    body = answer.read()
                    if answer.status != 201:
                        raise SystemExit(f"hbs_ab: enrolling {names[i]} at {name}: HTTP {answer.status} {body[:200]!r}")
                    issued[i] = json.loads(body)["secret"]
                return issued

            started, issued = time.time(), {}
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                for part in pool.map(enrol, range(8)):
                    issued.update(part)
            with open(os.path.join(work, f"secrets-{name}.txt"), "w") as f:
                f.write("\n".join(issued[i] for i in range(args.hosts)) + "\n")
            with open(os.path.join(work, f"beat-{name}.lua"), "w") as f:  # fledge-bench hbs's own script
                f.write(subprocess.run([args.bench, "heartbeat-script", "--hosts", str(args.hosts), "--threads", str(args.threads),
                                        "--secrets", os.path.join(work, f"secrets-{name}.txt")], check=True, capture_output=True, text=True).stdout)
            print(f"{name}: {binary}: {args.hosts} hosts enrolled in {time.time() - started:.1f} s", flush=True)

        def seconds_of(pid):
            fields = open(f"/proc/{pid}/stat").read().split(")")[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        def cpu(name):  # the server's, and its redis-server's
            index = list(builds).index(name)
            return seconds_of(procs[name].pid) + (seconds_of(redis[index].pid) if redis else 0)

        def run(name, seconds):
            agent = builds[name][1]
            before = cpu(name)
            out = subprocess.run(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency", "-s",
                                  os.path.join(work, f"beat-{name}.lua"), f"http://127.0.0.1:{agent}/v1/heartbeat"],
                                 capture_output=True, text=True).stdout
            used = cpu(name) - before
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            requests = int(re.search(r"(\d+) requests in", out).group(1))
            if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
                raise SystemExit(f"hbs_ab: {name} answered errors:\n{out}")
            p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
            return rate, used / requests * 1e6, float(p99.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[p99.group(2)]

        for name in builds:  # registration: first beats are journaled
            for _ in range(3):
                run(name, 5)
        if args.rollout:
            for name, (_, _, admin) in builds.items():
                connection = http.client.HTTPConnection("127.0.0.1", admin)
                connection.request("POST", "/v1/rollouts", ROLLOUT, {"Content-Type": "application/json"})
                answer = connection.getresponse()
                body = answer.read()
                if answer.status != 201:
                    raise SystemExit(f"hbs_ab: POST /v1/rollouts at {name}: HTTP {answer.status} {body[:200]!r}")
                run(name, 5)  # warm-up: the first 100 admitted, the rest pending
            print(f"a rollout active at both: {ROLLOUT}", flush=True)
        results = {name: [] for name in builds}
        for index in range(args.passes):
            for name in (["new", "old"] if index % 2 == 0 else ["old", "new"]):
                rate, micros, p99 = run(name, args.seconds)
                results[name].append((rate, micros, p99))
                print(f"pass {index + 1} {name}: {rate:.0f} beats/s, {micros:.1f} us CPU a beat, p99 {p99:.2f} ms", flush=True)
        median = lambda values: sorted(values)[len(values) // 2]
        summary = {}
        for name in builds:
            rss = int(open(f"/proc/{procs[name].pid}/status").read().split("VmRSS:")[1].split()[0])
            summary[name] = (median([r for r, _, _ in results[name]]), median([c for _, c, _ in results[name]]), rss,
                             median([p for _, _, p in results[name]]))
            print(f"{name}: median {summary[name][0]:.0f} beats/s, {summary[name][1]:.1f} us CPU a beat, p99 {summary[name][3]:.2f} ms; "
                  f"RSS {rss / 1024:.0f} MiB")
        print(f"new / old: beats/s {summary['new'][0] / summary['old'][0]:.3f}, CPU a beat {summary['new'][1] / summary['old'][1]:.3f}, "
              f"RSS {summary['new'][2] / summary['old'][2]:.3f}, p99 {summary['new'][3] / summary['old'][3]:.3f} ({args.hosts} hosts, wrk -t{args.threads} -c{args.connections}, "
              f"{args.passes} x {args.seconds} s passes each, alternating{', on Redis' if args.redis else ''}{', a rollout active' if args.rollout else ''})")
    finally:
        for process in procs.values():
            process.terminate()
        for process in procs.values():
            process.wait()
        for process in redis:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
