"""The processes of a benchmark run: the test authorization server, the
nginx upstream, nginx and Traefik as proxies, Redis and ccgate, each on
127.0.0.1, pinned to a core with taskset, logging into the run's folder.
Every process started here is stopped by `Processes.stop_all`."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "bench" / "conf"


class StartError(Exception):
    """A server did not start; the message says which and why."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template, workdir, name, values):
    """Fills in the @KEY@ placeholders of bench/conf/TEMPLATE, writes the
    result to WORKDIR/NAME and returns its path."""
    text = (CONF / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise StartError(f"{template}: no value for {sorted(set(leftover))}")
    path = Path(workdir) / name
    path.write_text(text)
    return path


def tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Processes:
    """Starts processes pinned to a core and stops them all at the end."""

    def __init__(self, workdir, pin):
        self.workdir = Path(workdir)
        self.pin = pin  # False: run unpinned (fewer than two cores available)
        self.procs = []  # (name, Popen, log path)

    def start(self, name, argv, core, stdin=subprocess.DEVNULL, stdout=None):
        log = self.workdir / f"{name}.log"
        if self.pin:
            argv = ["taskset", "-c", str(core), *argv]
        out = open(stdout, "wb") if stdout else open(log, "ab")
        err = open(log, "ab")
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, cwd=ROOT)
        out.close()
        err.close()
        self.procs.append((name, proc, log))
        return proc

    def wait_port(self, name, proc, port, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartError(
                    f"{name} exited with status {proc.returncode} before listening on "
                    f"port {port}:\n{tail(self.workdir / (name + '.log'))}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise StartError(f"{name}: nothing listens on port {port} after {timeout} s")

    def stop(self, proc, timeout=10):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = [p for p in self.procs if p[1] is not proc]

    def stop_all(self):
        for _, proc, _ in reversed(list(self.procs)):
            self.stop(proc)


def start_idp(procs, core, bench_clients, port=0, name="idp"):
    """The test authorization server (testing/idp) with bench-client-1..N,
    on PORT (0: a free one). Tokens live a day, so that no refresh ahead
    happens during a run. Returns (process, issuer, token_endpoint)."""
    out = procs.workdir / f"{name}.json"
    out.unlink(missing_ok=True)  # a restart writes a fresh line
    proc = procs.start(
        name,
        ["node", "testing/idp/server.js", "--ttl", "86400", "--bench-clients", str(bench_clients),
         "--port", str(port)],
        core,
        stdin=subprocess.PIPE,  # the server exits when this pipe closes
        stdout=out,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text.endswith("\n"):
            line = json.loads(text)
            return proc, line["issuer"], line["token_endpoint"]
        if proc.poll() is not None:
            raise StartError(f"the authorization server exited ({proc.returncode}):\n{tail(procs.workdir / (name + '.log'))}")
        time.sleep(0.05)
    raise StartError("the authorization server printed no JSON line in 60 s")


def start_nginx(procs, core, name, template, values):
    (procs.workdir / f"{name}-tmp").mkdir(exist_ok=True)
    conf = render(template, procs.workdir, f"{name}.conf", {"DIR": procs.workdir, **values})
    # -e: the error log from the start (before the configuration is read).
    return procs.start(
        name,
        [nginx_binary(), "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}.error.log"), "-c", str(conf)],
        core,
    )


def nginx_binary():
    for candidate in ("/usr/sbin/nginx", "/usr/bin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return "nginx"


def haproxy_binary():
    for candidate in ("/usr/sbin/haproxy", "/usr/bin/haproxy"):
        if os.access(candidate, os.X_OK):
            return candidate
    return "haproxy"


def start_haproxy(procs, core, values):
    """HAProxy in the foreground (`-db`), one thread (scenario b3)."""
    conf = render("haproxy.cfg.in", procs.workdir, "haproxy.cfg", {"DIR": procs.workdir, **values})
    return procs.start("haproxy", [haproxy_binary(), "-db", "-f", str(conf)], core)


def make_tls(workdir):
    """A CA and a certificate for 127.0.0.1 and `localhost` signed by it,
    for the upstream's TLS port (scenarios l0 and l), in WORKDIR/tls.
    Returns the CA certificate's path. Needs openssl."""
    tls = Path(workdir) / "tls"
    tls.mkdir(exist_ok=True)
    ca, ca_key = tls / "ca.pem", tls / "ca-key.pem"
    leaf, leaf_key, csr, ext = tls / "upstream.pem", tls / "upstream-key.pem", tls / "upstream.csr", tls / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
         "-subj", "/CN=ccgate bench CA"],
        ["openssl", "req", "-new", *ec, "-keyout", str(leaf_key), "-out", str(csr), "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(leaf), "-days", "2", "-extfile", str(ext)],
    ]
    for argv in steps:
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except OSError as e:
            raise StartError(f"cannot run openssl (Debian: apt-get install openssl): {e}")
        if run.returncode != 0:
            raise StartError(f"{' '.join(argv[:3])} failed: {run.stderr.strip()}")
    return ca


def traefik_binary():
    return str(ROOT / "testing" / "traefik" / ".venv" / "bin" / "traefik")


def start_traefik(procs, core, values):
    render("traefik-dynamic.yaml.in", procs.workdir, "traefik-dynamic.yaml", {"DIR": procs.workdir, **values})
    static = render("traefik.yaml.in", procs.workdir, "traefik.yaml", {"DIR": procs.workdir, **values})
    return procs.start("traefik", [traefik_binary(), f"--configFile={static}"], core)


def start_ccgate(procs, core, binary, name, template, values):
    conf = render(template, procs.workdir, f"{name}.yaml", values)
    return procs.start(name, [str(binary), "serve", "-c", str(conf)], core)


def ccgate_check(binary, workdir, name, template, values):
    """Runs `ccgate check` on a rendered configuration: (ok, output)."""
    conf = render(template, workdir, f"{name}.yaml", values)
    run = subprocess.run([str(binary), "check", "-c", str(conf)], capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def start_redis(procs, core, port):
    return procs.start(
        "redis",
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(procs.workdir)],
        core,
    )


def children(pid):
    """The child processes of PID (nginx's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def rss_kib(pid):
    """Resident set size of a process, from /proc/PID/status (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
