"""`--instructions`: user-space instructions per request of nginx (b),
HAProxy (b3) and ccgate (c, d), counted by valgrind's callgrind.

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
    """User-space instructions per request of the server ARGV."""
    started = time.monotonic()
    a = total(procs, core, name, argv, port, auth, few, stop)
    b = total(procs, core, name, argv, port, auth, many, stop)
    cost = (b - a) / (many - few)
    return {"instructions": round(cost), "seconds": round(time.monotonic() - started, 1)}


def nginx_proxy_argv(procs, values):
    """nginx as scenario b's proxy, in one process (no master), for
    callgrind; returns (argv, port)."""
    port = servers.free_port()
    name = "nginx-proxy-callgrind"
    (procs.workdir / f"{name}-tmp").mkdir(exist_ok=True)
    conf = servers.render("nginx-proxy.conf.in", procs.workdir, f"{name}.conf",
                          {"DIR": procs.workdir, **values, "PROXY_PORT": port, "AUTH_PORT": servers.free_port(),
                           "TLS_PROXY_PORT": servers.free_port()})
    conf.write_text(conf.read_text().replace("daemon off;", "daemon off;\nmaster_process off;", 1)
                    .replace("-tmp;", "-callgrind-tmp;").replace("nginx-proxy.pid", f"{name}.pid"))
    return [servers.nginx_binary(), "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}.error.log"),
            "-c", str(conf)], port


def haproxy_argv(procs, values):
    """HAProxy as scenario b3's proxy, for callgrind; returns (argv, port)."""
    port = servers.free_port()
    conf = servers.render("haproxy.cfg.in", procs.workdir, "haproxy-callgrind.cfg",
                          {"DIR": procs.workdir, **values, "PROXY_PORT": port})
    conf.write_text(conf.read_text().replace("haproxy.pid", "haproxy-callgrind.pid"))
    return [servers.haproxy_binary(), "-db", "-f", str(conf)], port


def ccgate_argv(procs, binary, values):
    """ccgate with scenario c's and d's routes, for callgrind; returns
    (argv, c's port, d's port)."""
    ports = {"PLAIN_PORT": servers.free_port(), "ONE_PORT": servers.free_port(),
             "MANY_PORT": servers.free_port(), "FORWARD_AUTH_PORT": servers.free_port(),
             "TLS_ROUTE_PORT": servers.free_port()}
    conf = servers.render("ccgate.yaml.in", procs.workdir, "ccgate-callgrind.yaml", {**values, **ports})
    return [str(binary), "serve", "-c", str(conf)], ports["PLAIN_PORT"], ports["ONE_PORT"]


def measure(procs, core, binary, values, auth, few, many, log):
    """Instructions per request of b, b3, c and d, each run on CORE (one
    ccgate worker): {scenario: {"instructions": …, "seconds": …}}."""
    if not shutil.which("valgrind"):
        raise StartError("--instructions needs valgrind (Debian: apt-get install valgrind)")
    results = {}
    argv, port = nginx_proxy_argv(procs, values)
    results["b"] = per_request(procs, core, "b", argv, port, auth, few, many, stop=signal.SIGQUIT)
    log(f"instructions per request, b: {results['b']}")
    argv, port = haproxy_argv(procs, values)
    results["b3"] = per_request(procs, core, "b3", argv, port, auth, few, many, stop=signal.SIGTERM)
    log(f"instructions per request, b3: {results['b3']}")
    argv, c_port, d_port = ccgate_argv(procs, binary, values)
    results["c"] = per_request(procs, core, "c", argv, c_port, auth, few, many)
    log(f"instructions per request, c: {results['c']}")
    # d: the first request of each run fetches the token; both runs make
    # exactly one, so it cancels out in the difference.
    results["d"] = per_request(procs, core, "d", argv, d_port, auth, few, many)
    log(f"instructions per request, d: {results['d']}")
    return results
