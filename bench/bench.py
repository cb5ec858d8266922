#!/usr/bin/env python3
"""ccgate's benchmarks: every scenario of SPEC §9 in one run on 127.0.0.1,
side by side with nginx and Traefik. Started by bench/run, which installs
what is needed and builds ccgate; see bench/README.md.

  python3 bench/bench.py --ccgate target/release/ccgate [--smoke] [--out FILE]

Exits 1 when a scenario could not be run (a server that does not start, an
answer other than 2xx, a wrk error); never because of a ratio."""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import abuse
import instructions
import load
import report
import servers
from load import RunError
from servers import StartError

ROOT = servers.ROOT

# Sizes of a full run and of the smoke run (which only proves the harness
# works: one short round, a small warm-up).
PROFILES = {
    "full": dict(rounds=5, seconds=5, slices=5, warmup_seconds=2, connections=50,
                 many_clients=10_000, memory_tokens=100_000, stampede=1000,
                 abuse_idle=2000, abuse_slow=100,
                 fault_down_s=10, fault_before_s=2, fault_cached=50, fault_cold=10_000,
                 fault_threads=4, fault_max_requests=300_000),
    "smoke": dict(rounds=1, seconds=1, slices=1, warmup_seconds=0, connections=4,
                  many_clients=200, memory_tokens=1000, stampede=1000,
                  abuse_idle=300, abuse_slow=30,
                  fault_down_s=2, fault_before_s=0.5, fault_cached=10, fault_cold=500,
                  fault_threads=2, fault_max_requests=30_000),
}

# The fault row: how long after the restart the first cold request may
# take to be answered 200 (the rest of a cool-down is at most 5 s here:
# a closed port sends no Retry-After; ccgate's MAX_COOL_DOWN is 60 s).
FAULT_RECOVERY_LIMIT_S = 20

# The throughput scenarios, in the order they run in each round.
SCENARIOS = [
    ("a", "the upstream directly (nginx `return 200`): the ceiling"),
    ("b", "nginx `proxy_pass` to the upstream, upstream keep-alive"),
    ("b2", "Traefik proxying to the upstream"),
    ("b3", "HAProxy proxying to the upstream (`nbthread 1`, `http-reuse always`)"),
    ("c", "ccgate, a route without middleware"),
    ("d", "ccgate + oAuthClientCredentials, memory store, warm, 1 client"),
    ("e", "the same, {many} distinct clients, warm"),
    ("f", "the same as d with the Redis store, warm"),
    ("g", "nginx `auth_request` → ccgate `forward-auth@internal`, then the upstream"),
    ("g2", "Traefik `forwardAuth` → ccgate `forward-auth@internal`, then the upstream"),
    ("j", "abuse mix: d's load while {idle:,} idle connections and {slow} slow-header clients are held open "
          "against the same entry point"),
    ("l0", "nginx `proxy_pass https://` to the upstream's TLS port, keep-alive, sessions reused"),
    ("l", "ccgate, a route without middleware, to the same TLS port (`https` server, `rootCAs`)"),
]

# The gRPC scenarios: grpc-load (testing/grpc-peer) against the gRPC echo
# server behind nginx and behind ccgate, in rounds of their own.
GRPC_SCENARIOS = [
    ("k0", "gRPC unary: nginx `grpc_pass` (h2c) to the echo server, no authentication"),
    ("k", "gRPC unary: ccgate + oAuthClientCredentials, warm, 1 client, h2c upstream"),
]

STORE_SECRET = "0123456789abcdef0123456789abcdef"  # 32 bytes: AES-256-GCM


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cores():
    """(load generator core, servers core, pinned?)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return available[0], available[0], False
    return available[0], available[1], True


def command_output(argv):
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (run.stdout + run.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    head = command_output(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    dirty = command_output(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "commit": head + (" (with uncommitted changes)" if dirty else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "versions": {
            "nginx": command_output([servers.nginx_binary(), "-v"]).replace("nginx version: ", ""),
            "haproxy": command_output([servers.haproxy_binary(), "-v"]).splitlines()[0].split(" - ")[0],
            "wrk": command_output(["wrk", "-v"]).split(" [")[0],
            "traefik": next((l.split()[-1] for l in command_output([servers.traefik_binary(), "version"]).splitlines()
                             if l.startswith("Version")), "?"),
            "node": command_output(["node", "--version"]),
            "redis": command_output(["redis-server", "--version"]).split(" sha=")[0],
        },
    }


def display_path(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_perf_stat(text):
    """`perf stat -x,` output: event name -> count (task-clock in ms)."""
    counters = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2]:
            try:
                counters[fields[2]] = float(fields[0])
            except ValueError:
                pass  # <not counted>, <not supported>
    return counters


def perf_summary(data):
    """A flat profile, readable: the share of each binary (kernel, libc,
    ccgate), the top symbols, and those of the middleware and its cache."""

    def report(sort, fields):
        text = command_output(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                               "--sort", sort, "-F", fields])
        rows = [line.rstrip()[:180] for line in text.splitlines() if line.strip() and not line.startswith("#")]
        return sorted(rows, key=lambda r: -float(r.split("%")[0]) if "%" in r else 0)

    symbols = report("dso,sym", "overhead,dso,sym")
    ours = [r for r in symbols if any(k in r for k in ("ccgate::", "moka::", "aws_lc", "base64"))]
    return "\n".join(["# share per binary", *report("dso", "overhead,dso"), "",
                       "# top symbols", *symbols[:40], "",
                       "# ccgate's own code, its cache (moka), HMAC (aws-lc), base64", *ours[:40]]) + "\n"


class Run:
    """One benchmark run: starts the servers, measures, writes the report."""

    def __init__(self, args):
        self.args = args
        self.p = dict(PROFILES["smoke" if args.smoke else "full"])
        for key in ("rounds", "seconds", "slices", "connections", "many_clients", "memory_tokens"):
            if getattr(args, key) is not None:
                self.p[key] = getattr(args, key)
        self.workdir = Path(args.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.load_core, self.server_core, self.pin = cores()
        if args.no_pin:
            self.pin = False
        self.procs = servers.Processes(self.workdir, self.pin)
        self.failures = {}  # scenario -> reason it could not run
        self.ports = {}  # scenario -> port its wrk run targets
        self.server_pids = {}  # scenario -> pids of the proxy measured (for --perf)
        self.results = {}  # scenario -> [wrk summary per round]
        self.notes = {}  # scenario -> note shown instead of numbers
        self.extra = {}

    # -- servers -------------------------------------------------------

    def fail(self, scenarios, reason):
        for s in scenarios:
            self.failures.setdefault(s, reason)
        log(f"FAILED {', '.join(scenarios)}: {reason}")

    def start_servers(self):
        srv = self.server_core
        bench_clients = max(self.p["many_clients"], self.p["memory_tokens"])
        log(f"authorization server with {bench_clients} bench clients (core {self.load_core})")
        self.idp, self.issuer, self.token_endpoint = servers.start_idp(self.procs, self.load_core, bench_clients)

        self.upstream_port = servers.free_port()
        upstream_tls_port = servers.free_port()
        ca = servers.make_tls(self.workdir)
        up = servers.start_nginx(self.procs, srv, "nginx-upstream", "nginx-upstream.conf.in",
                                 {"PORT": self.upstream_port, "TLS_PORT": upstream_tls_port})
        self.procs.wait_port("nginx-upstream", up, self.upstream_port)
        self.procs.wait_port("nginx-upstream", up, upstream_tls_port)
        self.ports["a"] = self.upstream_port

        common = {"UPSTREAM_PORT": self.upstream_port, "TOKEN_ENDPOINT": self.token_endpoint,
                  "UPSTREAM_TLS_PORT": upstream_tls_port, "CA_FILE": ca}
        self.common = common
        cc = {"PLAIN_PORT": servers.free_port(), "ONE_PORT": servers.free_port(),
              "MANY_PORT": servers.free_port(), "FORWARD_AUTH_PORT": servers.free_port(),
              "TLS_ROUTE_PORT": servers.free_port()}
        try:
            proc = servers.start_ccgate(self.procs, srv, self.args.ccgate, "ccgate", "ccgate.yaml.in",
                                        {**common, **cc})
            for key in ("PLAIN_PORT", "ONE_PORT", "MANY_PORT", "FORWARD_AUTH_PORT", "TLS_ROUTE_PORT"):
                self.procs.wait_port("ccgate", proc, cc[key])
            self.ccgate = proc
            self.server_pids.update(c=[proc.pid], d=[proc.pid], l=[proc.pid])
            self.ports.update(c=cc["PLAIN_PORT"], d=cc["ONE_PORT"], e=cc["MANY_PORT"], j=cc["ONE_PORT"],
                              l=cc["TLS_ROUTE_PORT"])
        except StartError as e:
            self.fail(["c", "d", "e", "g", "g2", "j", "l"], str(e))

        ng = {"PROXY_PORT": servers.free_port(), "AUTH_PORT": servers.free_port(),
              "TLS_PROXY_PORT": servers.free_port(), "FORWARD_AUTH_PORT": cc["FORWARD_AUTH_PORT"]}
        try:
            proc = servers.start_nginx(self.procs, srv, "nginx-proxy", "nginx-proxy.conf.in", {**common, **ng})
            for key in ("PROXY_PORT", "AUTH_PORT", "TLS_PROXY_PORT"):
                self.procs.wait_port("nginx-proxy", proc, ng[key])
            self.ports.update(b=ng["PROXY_PORT"], g=ng["AUTH_PORT"], l0=ng["TLS_PROXY_PORT"])
            self.server_pids["b"] = [proc.pid]  # the master; its worker is found later
        except StartError as e:
            self.fail(["b", "g", "l0"], str(e))

        ha = {"PROXY_PORT": servers.free_port()}
        try:
            proc = servers.start_haproxy(self.procs, srv, {**common, **ha})
            self.procs.wait_port("haproxy", proc, ha["PROXY_PORT"])
            self.ports["b3"] = ha["PROXY_PORT"]
            self.server_pids["b3"] = [proc.pid]
        except StartError as e:
            self.fail(["b3"], str(e))

        tr = {"PROXY_PORT": servers.free_port(), "AUTH_PORT": servers.free_port(),
              "FORWARD_AUTH_PORT": cc["FORWARD_AUTH_PORT"]}
        try:
            proc = servers.start_traefik(self.procs, srv, {**common, **tr})
            self.procs.wait_port("traefik", proc, tr["PROXY_PORT"])
            self.procs.wait_port("traefik", proc, tr["AUTH_PORT"])
            self.ports.update(b2=tr["PROXY_PORT"], g2=tr["AUTH_PORT"])
            self.server_pids["b2"] = [proc.pid]
        except StartError as e:
            self.fail(["b2", "g2"], str(e))

        self.start_redis_scenario(common)

    def start_redis_scenario(self, common):
        """Scenario f runs when this ccgate accepts `store.redis`; a
        version without the Redis store rejects it, and f is n/a."""
        values = {**common, "REDIS_ROUTE_PORT": servers.free_port(), "REDIS_PORT": servers.free_port(),
                  "STORE_SECRET": STORE_SECRET}
        ok, output = servers.ccgate_check(self.args.ccgate, self.workdir, "ccgate-redis", "ccgate-redis.yaml.in",
                                          values)
        if not ok:
            if "store.redis" in output and "not available" in output:
                self.notes["f"] = "n/a (Redis store not merged)"
                log("f: n/a — `ccgate check` rejects store.redis: " + output.splitlines()[-1])
            else:
                self.fail(["f"], f"ccgate check of the Redis configuration failed: {output}")
            return
        try:
            redis = servers.start_redis(self.procs, self.server_core, values["REDIS_PORT"])
            self.procs.wait_port("redis", redis, values["REDIS_PORT"])
            proc = servers.start_ccgate(self.procs, self.server_core, self.args.ccgate, "ccgate-redis",
                                        "ccgate-redis.yaml.in", values)
            self.procs.wait_port("ccgate-redis", proc, values["REDIS_ROUTE_PORT"])
            self.ports["f"] = values["REDIS_ROUTE_PORT"]
        except (StartError, OSError) as e:
            self.fail(["f"], str(e))

    # -- throughput scenarios --------------------------------------------

    def wanted(self, s):
        return self.args.only is None or s in self.args.only

    def runnable(self):
        return [s for s, _ in SCENARIOS if s in self.ports and s not in self.failures and s not in self.notes
                and self.wanted(s)]

    def prepare(self):
        """Probes every scenario once (which warms d, f, g and g2's one
        client) and warms e's clients."""
        one = load.basic("basic-client", "basic-secret")
        self.headers = {
            "one": load.write_headers(self.workdir / "headers-one.txt", [one]),
            "many": load.write_headers(self.workdir / "headers-many.txt",
                                       [load.bench_client(i) for i in range(1, self.p["many_clients"] + 1)]),
        }
        for s in self.runnable():
            try:
                load.probe(self.ports[s], one)
            except RunError as e:
                self.fail([s], str(e))
        if "e" in self.runnable():
            n = self.p["many_clients"]
            log(f"e: warming {n} clients")
            try:
                many = [load.bench_client(i) for i in range(1, n + 1)]
                load.warm(self.ports["e"], many, progress=(max(n // 5, 1), lambda k: log(f"  {k}/{n}")))
            except RunError as e:
                self.fail(["e"], str(e))

    def measure(self):
        p = self.p
        url = lambda s: f"http://127.0.0.1:{self.ports[s]}/bench"  # noqa: E731
        headers = lambda s: self.headers["many" if s == "e" else "one"]  # noqa: E731
        wrk_log = self.workdir / "wrk.log"
        if p["warmup_seconds"]:
            log(f"warm-up: {p['warmup_seconds']} s of load per scenario, not counted")
            for s in self.runnable():
                try:
                    load.wrk(url(s), headers(s), p["connections"], p["warmup_seconds"], self.load_core, self.pin,
                             wrk_log)
                except RunError as e:
                    self.fail([s], str(e))
        self.token_requests_before = load.idp_call(self.issuer, "GET", "/__test/stats")["received"]
        # Each round's time per scenario is cut into slices, taken in
        # turn: a few slow seconds of the machine then touch every scenario
        # alike instead of the one that happened to run (j, which holds
        # thousands of connections open around its run, runs whole).
        slices = next(n for n in range(max(1, min(p["slices"], p["seconds"])), 0, -1) if p["seconds"] % n == 0)
        slice_seconds = p["seconds"] // slices
        p["slices"] = slices  # as run, for the report
        for r in range(1, p["rounds"] + 1):
            parts = {}
            failed = set()
            for k in range(slices):
                for s in self.runnable():
                    if s in failed or (s == "j" and k > 0):
                        continue
                    try:
                        if s == "j":
                            summary = self.abused(url(s), headers(s), wrk_log)
                        else:
                            summary = load.wrk(url(s), headers(s), p["connections"], slice_seconds,
                                               self.load_core, self.pin, wrk_log)
                    except (RunError, OSError) as e:
                        self.fail([s], str(e))
                        failed.add(s)
                        continue
                    parts.setdefault(s, []).append(summary)
            for s, summaries in parts.items():
                if s in failed:
                    continue
                summary = load.merge(summaries)
                self.results.setdefault(s, []).append(summary)
                rps = summary["requests"] / (summary["duration_us"] / 1e6)
                log(f"round {r}/{p['rounds']} {s:>2}: {rps:9.0f} req/s  p50 {summary['latency_us']['p50']} µs"
                    f"  p99 {summary['latency_us']['p99']} µs")
        self.extra["token_requests_during_rounds"] = (
            load.idp_call(self.issuer, "GET", "/__test/stats")["received"] - self.token_requests_before)

    def abused(self, url, headers, wrk_log):
        """Scenario j: d's wrk run while the abusers hold their
        connections open on the same port (bench/abuse.py)."""
        with abuse.Abuse(self.ports["j"], self.p["abuse_idle"], self.p["abuse_slow"]) as abusers:
            summary = load.wrk(url, headers, self.p["connections"], self.p["seconds"], self.load_core, self.pin,
                               wrk_log)
            held = abusers.held()
        runs = self.extra.setdefault("j", [])
        runs.append({"held_at_end": held, "reopened": dict(abusers.reopened)})
        log(f"j: abusers held {held['idle']} idle and {held['slow']} slow-header connections at the end "
            f"(reopened after ccgate closed them: {abusers.reopened})")
        return summary

    def profile(self):
        """--perf: what one request costs the proxy: CPU time, system calls
        and context switches counted by `perf stat` during more wrk runs of
        b, b2, c, d and "c+jwt" (c's route, the caller sending the Bearer
        token d forwards upstream: what forwarding the bigger header costs
        without the middleware), interleaved, 3 runs each, per request,
        medians; then a flat CPU profile of ccgate (`perf record`) during
        c and d."""
        jwt = load.write_headers(self.workdir / "headers-jwt.txt", ["Bearer " + load.token(
            self.token_endpoint, "basic-client", "basic-secret", "https://api.example.com")])
        plan = [(s, s, self.headers["one"]) for s in ("b", "b2", "b3", "c")] + [("c+jwt", "c", jwt), ("d", "d", self.headers["one"])]
        plan = [x for x in plan if x[1] in self.runnable() and x[1] in self.server_pids]
        runs = {}
        for _ in range(3):
            for name, s, headers in plan:
                pids = [p for pid in self.server_pids[s] for p in (pid, *servers.children(pid))]
                perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e",
                                         "task-clock,context-switches,raw_syscalls:sys_enter",
                                         "-p", ",".join(map(str, pids))],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(0.3)
                summary = self.wrk_once(s, headers)
                perf.send_signal(signal.SIGINT)
                counters = parse_perf_stat(perf.communicate()[1])
                n = summary["requests"]
                runs.setdefault(name, []).append({
                    "rps": n / (summary["duration_us"] / 1e6),
                    "cpu_us": counters.get("task-clock", 0) * 1000 / n,  # task-clock is in ms
                    "syscalls": counters.get("raw_syscalls:sys_enter", 0) / n,
                    "context_switches": counters.get("context-switches", 0) / n,
                })
        cost = {name: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]} for name, rs in runs.items()}
        for name, c in cost.items():
            log(f"cost per request, {name}: {c}")
        self.extra["cost"] = cost
        out = {}
        for s in ("c", "d"):
            if s not in self.runnable():
                continue
            data = self.workdir / f"perf-{s}.data"
            perf = subprocess.Popen(["perf", "record", "-F", "1999", "-p", str(self.ccgate.pid), "-o", str(data)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            self.wrk_once(s, self.headers["one"])
            perf.send_signal(signal.SIGINT)
            perf.wait()
            (self.workdir / f"perf-{s}.txt").write_text(perf_summary(data))
            out[s] = str(self.workdir / f"perf-{s}.txt")
            log(f"perf profile of {s}: {out[s]}")
        self.extra["perf"] = out

    def count_instructions(self):
        """--instructions: user-space instructions per request of b, b3, c,
        d, l0 and l under callgrind (bench/instructions.py)."""
        few, many = (5, 25) if self.args.smoke else (300, 2300)
        log(f"instructions: b, b3, c, d, l0 and l under callgrind, {few} then {many} requests each")
        try:
            self.extra["instructions"] = {
                "few": few, "many": many,
                "per_request": instructions.measure(
                    self.procs, self.server_core, self.args.ccgate,
                    {**self.common, "FORWARD_AUTH_PORT": servers.free_port()},
                    load.basic("basic-client", "basic-secret"), few, many, log),
            }
        except (StartError, RunError, OSError) as e:
            self.fail(["instructions"], str(e))

    def wrk_once(self, s, headers):
        return load.wrk(f"http://127.0.0.1:{self.ports[s]}/bench", headers, self.p["connections"],
                        self.p["seconds"], self.load_core, self.pin, self.workdir / "wrk.log")

    # -- k0, k: gRPC unary ------------------------------------------------

    def grpc(self):
        """k0 and k: grpc-load (CONNECTIONS concurrent calls on one HTTP/2
        connection, as one gRPC channel makes them) sends unary calls to
        the echo server through nginx `grpc_pass` and through ccgate with
        the middleware, interleaved in each round. The binaries are built
        beside ccgate (`cargo build -p grpc-peer`)."""
        bin_dir = Path(self.args.ccgate).resolve().parent
        load_bin, echo_bin = bin_dir / "grpc-load", bin_dir / "grpc-echo"
        if not (load_bin.is_file() and echo_bin.is_file()):
            for s in ("k0", "k"):
                self.notes[s] = f"n/a (no grpc-load/grpc-echo beside {display_path(self.args.ccgate)})"
            return
        p = self.p
        echo_port, nginx_port, ccgate_port = servers.free_port(), servers.free_port(), servers.free_port()
        try:
            echo = self.procs.start("grpc-echo", [str(echo_bin), str(echo_port)], self.server_core)
            self.procs.wait_port("grpc-echo", echo, echo_port)
            nginx = servers.start_nginx(self.procs, self.server_core, "nginx-grpc", "nginx-grpc.conf.in",
                                        {"PORT": nginx_port, "ECHO_PORT": echo_port})
            self.procs.wait_port("nginx-grpc", nginx, nginx_port)
            proc = servers.start_ccgate(self.procs, self.server_core, self.args.ccgate, "ccgate-grpc",
                                        "ccgate-grpc.yaml.in",
                                        {"GRPC_PORT": ccgate_port, "ECHO_PORT": echo_port,
                                         "TOKEN_ENDPOINT": self.token_endpoint})
            self.procs.wait_port("ccgate-grpc", proc, ccgate_port)
        except StartError as e:
            self.fail(["k0", "k"], str(e))
            return
        auth = "authorization=" + load.basic("basic-client", "basic-secret")
        targets = {"k0": nginx_port, "k": ccgate_port}
        # A bounded count per run: what the wrk scenarios send in their
        # seconds, at most, so that a slow build still ends.
        count = 2000 if self.args.smoke else 200_000
        try:
            for s, port in targets.items():  # probe (and warm k's token)
                load.grpc_load(load_bin, f"http://127.0.0.1:{port}", 1, 10, [auth], self.load_core, self.pin)
            for r in range(1, p["rounds"] + 1):
                for s, port in targets.items():
                    summary = load.grpc_load(load_bin, f"http://127.0.0.1:{port}", p["connections"], count,
                                             [auth], self.load_core, self.pin)
                    self.results.setdefault(s, []).append(summary)
                    rps = summary["requests"] / (summary["duration_us"] / 1e6)
                    log(f"round {r}/{p['rounds']} {s:>2}: {rps:9.0f} req/s  p50 {summary['latency_us']['p50']} µs"
                        f"  p99 {summary['latency_us']['p99']} µs")
        except (RunError, OSError) as e:
            self.fail(["k0", "k"], str(e))
        finally:
            for process in (proc, nginx, echo):
                self.procs.stop(process)

    # -- h: the cold stampede, i: memory per token ------------------------

    def single_ccgate(self, name):
        values = {"WEB_PORT": servers.free_port(), "UPSTREAM_PORT": self.upstream_port,
                  "TOKEN_ENDPOINT": self.token_endpoint}
        proc = servers.start_ccgate(self.procs, self.server_core, self.args.ccgate, name, "ccgate-single.yaml.in",
                                    values)
        self.procs.wait_port(name, proc, values["WEB_PORT"])
        return proc, values["WEB_PORT"]

    def stampede(self):
        n = self.p["stampede"]
        log(f"h: {n} concurrent first requests for one client on a fresh ccgate")
        try:
            proc, port = self.single_ccgate("ccgate-cold")
        except StartError as e:
            self.fail(["h"], str(e))
            return
        try:
            load.idp_call(self.issuer, "POST", "/__test/delay?ms=500")
            load.idp_call(self.issuer, "POST", "/__test/reset")
            statuses, written, latencies = load.stampede(port, load.basic("basic-client", "basic-secret"), n)
            stats = load.idp_call(self.issuer, "GET", "/__test/stats")
            bad = [s for s in statuses if s != 200]
            if bad:
                raise RunError(f"{len(bad)} of {n} answers were not 200, e.g. {bad[0]}")
            self.extra["h"] = {
                "requests": n, "token_requests": stats["received"], "written_s": round(written, 3),
                "latency_min_s": round(min(latencies), 3), "latency_max_s": round(max(latencies), 3),
            }
            log(f"h: {stats['received']} token request(s) for {n} requests, all written within {written:.3f} s; "
                f"answers {min(latencies):.3f}–{max(latencies):.3f} s after the first (token endpoint held 0.5 s)")
        except (RunError, OSError, TimeoutError) as e:
            self.fail(["h"], str(e))
        finally:
            load.idp_call(self.issuer, "POST", "/__test/delay?ms=0")
            self.procs.stop(proc)

    def memory(self):
        n = self.p["memory_tokens"]
        log(f"i: resident memory of a fresh ccgate before and after caching {n} tokens")
        try:
            proc, port = self.single_ccgate("ccgate-memory")
        except StartError as e:
            self.fail(["i"], str(e))
            return
        try:
            # Run the code paths once (one client, 100 requests) so that the
            # baseline holds the runtime, pools and allocator arenas.
            load.warm(port, [load.basic("basic-client", "basic-secret")] * 100)
            time.sleep(0.5)
            before = servers.rss_kib(proc.pid)
            received = load.idp_call(self.issuer, "GET", "/__test/stats")["received"]
            load.warm(port, [load.bench_client(i) for i in range(1, n + 1)],
                      progress=(max(n // 10, 1), lambda k: log(f"  {k}/{n}")))
            time.sleep(0.5)
            after = servers.rss_kib(proc.pid)
            tokens = load.idp_call(self.issuer, "GET", "/__test/stats")["received"] - received
            # Every token still cached? A second pass over a sample must not
            # ask the authorization server again.
            sample = [load.bench_client(i) for i in range(1, n + 1, max(n // 1000, 1))]
            load.warm(port, sample)
            again = load.idp_call(self.issuer, "GET", "/__test/stats")["received"] - received - tokens
            self.extra["i"] = {
                "tokens": n, "token_requests": tokens, "rss_before_kib": before, "rss_after_kib": after,
                "bytes_per_token": round((after - before) * 1024 / n),
                "sample_rerequested": len(sample), "sample_token_requests": again,
            }
            log(f"i: RSS {before} KiB → {after} KiB: {(after - before) * 1024 / n:.0f} bytes per token "
                f"({tokens} token requests; a second pass over {len(sample)} clients made {again})")
        except (RunError, OSError) as e:
            self.fail(["i"], str(e))
        finally:
            self.procs.stop(proc)

    # -- fault: the token endpoint down under load ------------------------

    def fault(self):
        """The token endpoint (its own test authorization server, on a
        fixed port) is stopped for fault_down_s under load, then started
        again on the same port. Cached callers must keep 200; cold ones get
        503 at once during the cool-down; ccgate's own counters say how
        many token requests it sent (5 failures, then one probe per
        cool-down)."""
        p = self.p
        down = p["fault_down_s"]
        log(f"fault: the token endpoint stopped for {down} s under load "
            f"({p['fault_cached']} cached callers, cold ones from {p['fault_cold']:,})")
        idp_port = servers.free_port()
        clients = p["fault_cached"] + p["fault_cold"]
        values = {"WEB_PORT": servers.free_port(), "METRICS_PORT": servers.free_port(),
                  "UPSTREAM_PORT": self.upstream_port}
        idp = proc = None
        try:
            idp, issuer, endpoint = servers.start_idp(self.procs, self.load_core, clients, idp_port, "idp-fault")
            proc = servers.start_ccgate(self.procs, self.server_core, self.args.ccgate, "ccgate-fault",
                                        "ccgate-fault.yaml.in", {**values, "TOKEN_ENDPOINT": endpoint})
            self.procs.wait_port("ccgate-fault", proc, values["WEB_PORT"])
            self.procs.wait_port("ccgate-fault", proc, values["METRICS_PORT"])
            cached = [load.bench_client(i) for i in range(1, p["fault_cached"] + 1)]
            cold = [load.bench_client(i) for i in range(p["fault_cached"] + 1, clients + 1)]
            load.warm(values["WEB_PORT"], cached)
            traffic = load.FaultLoad(values["WEB_PORT"], cached, cold, p["fault_threads"], p["fault_max_requests"])
            traffic.start()
            try:
                time.sleep(p["fault_before_s"])
                t_stop = time.monotonic()
                self.procs.stop(idp)
                traffic.cold.set()
                time.sleep(max(0.0, t_stop + down - time.monotonic()))
                t_restart = time.monotonic()
                idp, issuer, _ = servers.start_idp(self.procs, self.load_core, clients, idp_port, "idp-fault")
                t_listening = time.monotonic()
                traffic.watch.set()
                recovered = traffic.recovered.wait(FAULT_RECOVERY_LIMIT_S)
                time.sleep(0.5)
            finally:
                traffic.stop()
            if not recovered:
                raise RunError(f"no cold request was answered 200 within {FAULT_RECOVERY_LIMIT_S} s of the restart")
            counters = load.metrics(values["METRICS_PORT"])
            idp_stats = load.idp_call(issuer, "GET", "/__test/stats")
            self.extra["fault"] = summarize_fault(traffic.records, counters, idp_stats, down,
                                                  t_stop, t_restart, t_listening)
            f = self.extra["fault"]
            log(f"fault: cached {f['cached']['requests']:,} requests, {f['cached']['non_200']} not 200; "
                f"cold during the fault {f['cold_statuses']}; 503 in {f['refused_ms']['p50']} ms (p50), "
                f"{f['refused_ms']['max']} ms max; token requests {f['token_requests']}, "
                f"refused {f['refused']}; cold 200 again {f['recovery_s']} s after the restart")
            if f["unanswered"]:
                raise RunError(f"{f['unanswered']} request(s) got no answer")
            if f["cached"]["non_200"]:
                raise RunError(f"{f['cached']['non_200']} cached request(s) were not answered 200")
        except (StartError, RunError, OSError) as e:
            self.fail(["fault"], str(e))
        finally:
            for process in (proc, idp):
                if process is not None:
                    self.procs.stop(process)

    # -- the whole run -----------------------------------------------------

    def run(self):
        info = machine()
        log(f"work folder {self.workdir}; ccgate {self.args.ccgate}; "
            + (f"wrk on core {self.load_core}, servers on core {self.server_core}" if self.pin else "unpinned"))
        try:
            self.start_servers()
            self.prepare()
            self.measure()
            if self.args.perf:
                self.profile()
            if self.args.instructions:
                self.count_instructions()
            if self.wanted("k") or self.wanted("k0"):
                self.grpc()
            if self.wanted("h"):
                self.stampede()
            if self.wanted("i"):
                self.memory()
            if self.wanted("fault"):
                self.fault()
        except (StartError, RunError, OSError) as e:
            self.fail(["run"], str(e))
        finally:
            self.procs.stop_all()
        info["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
        data = {
            "mode": "smoke" if self.args.smoke else "full",
            "command": self.args.command,
            "ccgate": display_path(self.args.ccgate),
            "params": self.p,
            "pinned": {"load_core": self.load_core, "server_core": self.server_core} if self.pin else None,
            "machine": info,
            "scenarios": {**{s: desc.format(many=f"{self.p['many_clients']:,}", idle=self.p["abuse_idle"], slow=self.p["abuse_slow"]) for s, desc in SCENARIOS},
                          **dict(GRPC_SCENARIOS)},
            "results": self.results,
            "notes": self.notes,
            "failures": self.failures,
            **self.extra,
        }
        (self.workdir / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        text = report.markdown(data)
        report.write(self.args.out, text)
        print(report.summary(data), flush=True)
        log(f"report: {self.args.out}; raw results: {self.workdir / 'results.json'}")
        if self.failures:
            log(f"FAILED: {len(self.failures)} scenario(s) could not run: {', '.join(self.failures)}")
            return 1
        return 0


def summarize_fault(records, counters, idp_stats, down, t_stop, t_restart, t_listening):
    """The figures of the fault row from every answer's record and
    ccgate's counters after the run."""
    def ms(seconds):
        return None if seconds is None else round(seconds * 1000, 1)

    def series(name, **labels):
        key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        return int(counters.get(key, 0))

    cached = [r for r in records if r[0] == "cached"]
    during = [r for r in cached if t_stop <= r[1] < t_restart]
    cold = [r for r in records if r[0] == "cold"]
    recovered_at = min((r[1] for r in cold if r[3] == 200 and r[1] >= t_restart), default=None)
    faulted = [r for r in cold if recovered_at is None or r[1] < recovered_at]
    statuses = {}
    for r in faulted:
        statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
    refused = [r for r in faulted if r[3] == 503]
    first_refusal = min((r[1] for r in refused), default=None)
    outcomes = ("success", "rejected", "unreachable", "unavailable", "malformed", "timeout", "internal")
    token_requests = {o: series("ccgate_token_requests_total", middleware="cc-auth", outcome=o) for o in outcomes}
    return {
        "down_s": down,
        "restart_listening_s": round(t_listening - t_restart, 2),
        "requests": len(records),
        "unanswered": sum(1 for r in records if r[3] == 0),
        "cached": {
            "requests": len(cached), "non_200": sum(1 for r in cached if r[3] != 200),
            "during_fault": len(during),
            "p50_ms": ms(load.quantile([r[2] for r in during], 0.5)),
            "p99_ms": ms(load.quantile([r[2] for r in during], 0.99)),
        },
        "cold_statuses": dict(sorted(statuses.items())),
        "cool_down_began_s": None if first_refusal is None else round(first_refusal - t_stop, 3),
        "refused_ms": {
            "p50": ms(load.quantile([r[2] for r in refused], 0.5)),
            "p99": ms(load.quantile([r[2] for r in refused], 0.99)),
            "max": ms(max((r[2] for r in refused), default=None)),
        },
        "retry_after": sorted({r[4] for r in refused if r[4] is not None}),
        "recovery_s": None if recovered_at is None else round(recovered_at - t_restart, 2),
        "token_requests": {k: v for k, v in token_requests.items() if v},
        "refused": {reason: series("ccgate_token_requests_refused_total", middleware="cc-auth", reason=reason)
                    for reason in ("throttled", "cooling_down")},
        "idp_after_restart": {"received": idp_stats["received"], "success": idp_stats["success"]},
        "cold_200_after_recovery": sum(1 for r in cold if r[3] == 200),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ccgate", required=True, type=Path, help="the ccgate binary to measure")
    ap.add_argument("--smoke", action="store_true", help="a short run that proves every scenario runs")
    ap.add_argument("--out", type=Path, help="the report (default: docs/benchmarks.md; with --smoke, in --workdir)")
    ap.add_argument("--workdir", type=Path, help="configurations, logs and raw results (default: target/bench/…)")
    ap.add_argument("--perf", action="store_true", help="also record CPU profiles of ccgate during c and d")
    ap.add_argument("--instructions", action="store_true",
                    help="also count user-space instructions per request of b, b3, c and d (callgrind)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--command", default="bench/run", help="the command to show in the report")
    ap.add_argument("--only", type=lambda v: set(v.split(",")), metavar="a,b,…",
                    help="run only these scenarios (to compare a change quickly; the report goes to --workdir)")
    for key, what in (("rounds", "rounds of every throughput scenario"),
                      ("seconds", "seconds per scenario and round"),
                      ("slices", "wrk runs each round's seconds are cut into, taken in turn across the scenarios"),
                      ("connections", "wrk connections"), ("many-clients", "clients of scenario e"),
                      ("memory-tokens", "tokens cached for scenario i")):
        ap.add_argument(f"--{key}", type=int, dest=key.replace("-", "_"), help=f"override: {what}")
    args = ap.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.workdir = args.workdir or ROOT / "target" / "bench" / f"{'smoke' if args.smoke else 'full'}-{stamp}"
    partial = args.smoke or args.only is not None
    args.out = args.out or (args.workdir / "benchmarks.md" if partial else ROOT / "docs" / "benchmarks.md")
    known = {s for s, _ in SCENARIOS + GRPC_SCENARIOS} | {"h", "i", "fault"}
    if args.only is not None and not args.only <= known:
        sys.exit(f"bench: --only: unknown scenario(s) {', '.join(sorted(args.only - known))}; known: "
                 + ", ".join(sorted(known)))
    if not args.ccgate.is_file():
        sys.exit(f"bench: no ccgate binary at {args.ccgate}")
    if args.perf and not shutil.which("perf"):
        sys.exit("bench: --perf needs perf (Debian: apt-get install linux-perf)")
    # 1,000 concurrent connections (scenario h) need more descriptors than
    # a default soft limit of 1,024; ccgate inherits the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 65536:
        hard_target = 65536
    else:
        hard_target = hard
    if soft < hard_target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard_target, hard))
    run = Run(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    sys.exit(run.run())


if __name__ == "__main__":
    main()
