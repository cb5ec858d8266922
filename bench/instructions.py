"""`--instructions`: user-space instructions per request of nginx (b),
HAProxy (b3) and ccgate (c, d), and of nginx and ccgate to the
upstream's TLS port (l0, l), counted by valgrind's callgrind.

Instruction counts do not depend on what else the machine is doing, so
they compare proxies (and two versions of ccgate) without the noise of a
shared 2-core machine; the kernel's share (system calls, TCP on
loopback), which is about the same for every proxy, is not counted.

Each proxy runs twice under callgrind, in front of the same upstream,
answering FEW and then MANY requests (4 keep-alive connections, taken in
turn); the difference of the two totals over MANY - FEW is the cost of one
request, without start-up and shutdown."""

import http.client
import re
from collections import Counter
import shutil
import signal
import subprocess
import time

import servers
from load import RunError
from servers import StartError

CONNECTIONS = 4


def requests(port, auth, n):
    """N GETs of /bench over CONNECTIONS keep-alive connections, each 200."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(CONNECTIONS)]
    try:
        for i in range(n):
            conn = conns[i % CONNECTIONS]
            conn.request("GET", "/bench", headers={"Authorization": auth})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RunError(f"port {port}: answer {resp.status} under callgrind")
    finally:
        for conn in conns:
            conn.close()


def total(procs, core, name, argv, port, auth, n, stop):
    """Runs ARGV under callgrind, sends N requests (after waiting for
    PORT), stops it with signal STOP; returns the instructions counted."""
    out = procs.workdir / f"callgrind-{name}-{n}.out"
    proc = procs.start(f"callgrind-{name}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                       core)
    try:
        procs.wait_port(f"callgrind-{name}", proc, port, timeout=120)
        requests(port, auth, n)
    finally:
        proc.send_signal(stop)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    if not match:
        raise RunError(f"{out}: no instruction total")
    return int(match.group(1))


def per_request(procs, core, name, argv, port, auth, few, many, stop=signal.SIGINT):
    """User-space instructions per request of the server ARGV; for
    ccgate, also a per-function and per-crate profile of one request
    (WORKDIR/callgrind-NAME-profile.txt)."""
    started = time.monotonic()
    a = total(procs, core, name, argv, port, auth, few, stop)
    b = total(procs, core, name, argv, port, auth, many, stop)
    cost = (b - a) / (many - few)
    if shutil.which("callgrind_annotate"):
        out = procs.workdir / f"callgrind-{name}-profile.txt"
        out.write_text(profile(procs.workdir / f"callgrind-{name}-{few}.out",
                               procs.workdir / f"callgrind-{name}-{many}.out", many - few))
    return {"instructions": round(cost), "seconds": round(time.monotonic() - started, 1)}


FUNCTION_LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(.*?)(?: \[(.*)\])?$")
CRATE = re.compile(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+[^/]*/")
STD = re.compile(r"/rustc/[0-9a-f]+/library/([a-z_]+)/")


def functions(path):
    """{"file:function [object]": instructions} of one callgrind file."""
    run = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--auto=no", str(path)],
                         capture_output=True, text=True, timeout=300)
    found = Counter()
    for line in run.stdout.splitlines():
        match = FUNCTION_LINE.match(line)
        if match and "PROGRAM TOTALS" not in line and "=>" not in line:
            found[match.group(2) + (f" [{match.group(3)}]" if match.group(3) else "")] += int(
                match.group(1).replace(",", ""))
    return found


SYMBOL_CRATE = re.compile(r"(?:^|[<\s(&*,])([a-z_][a-z0-9_]*)::")


def crate_of(function):
    """The crate a function belongs to: its symbol's first path segment;
    for a generic of core, alloc or std (`drop_in_place<hyper::…>`), the
    first other crate named in it, which is whose work it does. Else the
    crate of its source file, else its object file."""
    source, _, symbol = function.partition(":")
    names = [n for n in SYMBOL_CRATE.findall(symbol.split(" [", 1)[0])]
    if names:
        own = [n for n in names if n not in ("core", "alloc", "std")]
        return (own[0] if own and names[0] in ("core", "alloc", "std") else names[0]).replace("_", "-")
    for pattern in (CRATE, STD):
        match = pattern.search(source)
        if match:
            return match.group(1)
    if "memmove" in source or "memcpy" in source or "memset" in source:
        return "libc (memcpy, memmove, memset)"
    if "/crates/ccgate" in source:
        return "ccgate"
    obj = function.rsplit(" [", 1)[-1].rstrip("]") if " [" in function else "?"
    if source.startswith("???") or source == function:
        return obj.rsplit("/", 1)[-1]
    return source.rsplit("/", 2)[-2] if "/" in source else obj.rsplit("/", 1)[-1]


def profile(few_file, many_file, n):
    """Instructions of one request, per crate and per function: the
    difference of the two runs' profiles over N requests."""
    few, many = functions(few_file), functions(many_file)
    per = Counter({f: (many[f] - few.get(f, 0)) / n for f in many})
    crates = Counter()
    for f, v in per.items():
        crates[crate_of(f)] += v
    lines = [f"# instructions per request, by crate (total {sum(per.values()):,.0f})"]
    lines += [f"{v:10,.0f}  {c}" for c, v in crates.most_common() if abs(v) >= 5]
    lines += ["", "# by function (file:function [object])"]
    lines += [f"{v:10,.0f}  {f}" for f, v in per.most_common(120) if abs(v) >= 5]
    return "\n".join(lines) + "\n"


def nginx_proxy_argv(procs, values):
    """nginx as scenario b's and l0's proxy, in one process (no master),
    for callgrind; returns (argv, b's port, l0's port)."""
    port, tls_port = servers.free_port(), servers.free_port()
    name = "nginx-proxy-callgrind"
    (procs.workdir / f"{name}-tmp").mkdir(exist_ok=True)
    conf = servers.render("nginx-proxy.conf.in", procs.workdir, f"{name}.conf",
                          {"DIR": procs.workdir, **values, "PROXY_PORT": port, "AUTH_PORT": servers.free_port(),
                           "TLS_PROXY_PORT": tls_port})
    conf.write_text(conf.read_text().replace("daemon off;", "daemon off;\nmaster_process off;", 1)
                    .replace("-tmp;", "-callgrind-tmp;").replace("nginx-proxy.pid", f"{name}.pid"))
    return [servers.nginx_binary(), "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}.error.log"),
            "-c", str(conf)], port, tls_port


def haproxy_argv(procs, values):
    """HAProxy as scenario b3's proxy, for callgrind; returns (argv, port)."""
    port = servers.free_port()
    conf = servers.render("haproxy.cfg.in", procs.workdir, "haproxy-callgrind.cfg",
                          {"DIR": procs.workdir, **values, "PROXY_PORT": port})
    conf.write_text(conf.read_text().replace("haproxy.pid", "haproxy-callgrind.pid"))
    return [servers.haproxy_binary(), "-db", "-f", str(conf)], port


def ccgate_argv(procs, binary, values):
    """ccgate with scenario c's, d's and l's routes, for callgrind;
    returns (argv, c's port, d's port, l's port)."""
    ports = {"PLAIN_PORT": servers.free_port(), "ONE_PORT": servers.free_port(),
             "MANY_PORT": servers.free_port(), "FORWARD_AUTH_PORT": servers.free_port(),
             "TLS_ROUTE_PORT": servers.free_port()}
    conf = servers.render("ccgate.yaml.in", procs.workdir, "ccgate-callgrind.yaml", {**values, **ports})
    return [str(binary), "serve", "-c", str(conf)], ports["PLAIN_PORT"], ports["ONE_PORT"], ports["TLS_ROUTE_PORT"]


def measure(procs, core, binary, values, auth, few, many, log):
    """Instructions per request of b, b3, c, d, l0 and l, each run on
    CORE (one ccgate worker): {scenario: {"instructions": …, "seconds": …}}."""
    if not shutil.which("valgrind"):
        raise StartError("--instructions needs valgrind (Debian: apt-get install valgrind)")
    results = {}
    argv, port, tls_port = nginx_proxy_argv(procs, values)
    results["b"] = per_request(procs, core, "b", argv, port, auth, few, many, stop=signal.SIGQUIT)
    log(f"instructions per request, b: {results['b']}")
    results["l0"] = per_request(procs, core, "l0", argv, tls_port, auth, few, many, stop=signal.SIGQUIT)
    log(f"instructions per request, l0: {results['l0']}")
    argv, port = haproxy_argv(procs, values)
    results["b3"] = per_request(procs, core, "b3", argv, port, auth, few, many, stop=signal.SIGTERM)
    log(f"instructions per request, b3: {results['b3']}")
    argv, c_port, d_port, l_port = ccgate_argv(procs, binary, values)
    results["c"] = per_request(procs, core, "c", argv, c_port, auth, few, many)
    log(f"instructions per request, c: {results['c']}")
    # d: the first request of each run fetches the token; both runs make
    # exactly one, so it cancels out in the difference.
    results["d"] = per_request(procs, core, "d", argv, d_port, auth, few, many)
    log(f"instructions per request, d: {results['d']}")
    results["l"] = per_request(procs, core, "l", argv, l_port, auth, few, many)
    log(f"instructions per request, l: {results['l']}")
    return results
