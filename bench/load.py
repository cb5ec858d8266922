"""Load of a benchmark run: wrk runs, warm-up requests, the cold stampede."""

import asyncio
import base64
import http.client
import json
import statistics
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

WRK_LUA = Path(__file__).resolve().parent / "wrk.lua"


def basic(client_id, secret):
    """The Authorization header value of a caller (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def bench_client(i):
    """Caller i of the authorization server's --bench-clients (1-based)."""
    return basic(f"bench-client-{i}", f"bench-secret-{i}")


def write_headers(path, values):
    Path(path).write_text("".join(v + "\n" for v in values))
    return path


class RunError(Exception):
    """A scenario could not be run (a non-2xx answer, a wrk error, ...)."""


def wrk(url, headers_file, connections, seconds, core, pin, log):
    """One wrk run with bench/wrk.lua; returns its WRK_JSON summary and
    raises RunError when any request failed."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
            "-s", str(WRK_LUA), url, "--", str(headers_file)]
    if pin:
        argv = ["taskset", "-c", str(core), *argv]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n{run.stdout}{run.stderr}\n")
    summary = None
    for line in run.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            summary = json.loads(line[len("WRK_JSON "):])
    if run.returncode != 0 or summary is None:
        raise RunError(f"wrk exited with {run.returncode}: {(run.stderr or run.stdout).strip()[-500:]}")
    errors = {k: v for k, v in summary["errors"].items() if v}
    if errors:
        raise RunError(f"{url}: {summary['requests']} requests, errors {errors} "
                       "(status = answers other than 2xx/3xx)")
    if summary["requests"] == 0:
        raise RunError(f"{url}: no request completed")
    return summary


def merge(summaries):
    """One summary of several wrk runs of one scenario (the slices of a
    round): requests, bytes, errors and time added up; of the latency
    percentiles, p50 and p90 the median of the runs', p99 and max the
    worst run's (wrk keeps no histogram to merge)."""
    if len(summaries) == 1:
        return summaries[0]
    total = sum(s["requests"] for s in summaries)
    latency = [s["latency_us"] for s in summaries]
    errors = {}
    for s in summaries:
        for k, v in s.get("errors", {}).items():
            errors[k] = errors.get(k, 0) + v
    return {
        "requests": total,
        "duration_us": sum(s["duration_us"] for s in summaries),
        "bytes": sum(s.get("bytes", 0) for s in summaries),
        "errors": errors,
        "latency_us": {
            "mean": sum(lat["mean"] * s["requests"] for lat, s in zip(latency, summaries)) / max(total, 1),
            "p50": round(statistics.median(lat["p50"] for lat in latency)),
            "p90": round(statistics.median(lat["p90"] for lat in latency)),
            "p99": max(lat["p99"] for lat in latency),
            "max": max(lat["max"] for lat in latency),
        },
        "slices": len(summaries),
    }


def get(port, auth, path="/bench", conn=None):
    """One GET on 127.0.0.1:PORT; returns (status, headers, body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": auth} if auth else {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, dict(resp.getheaders()), body
    finally:
        if own:
            conn.close()


def probe(port, auth, path="/bench", timeout=20):
    """A scenario's URL must answer 200 before it is measured. Proxies may
    listen before their routes are loaded (Traefik reads its file provider
    after opening its entry points), so other answers are retried for a
    while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, body = get(port, auth, path)
            if status == 200:
                return
            problem = f"answered {status}: {body[:200]!r}"
        except OSError as e:
            problem = str(e)
        if time.monotonic() > deadline:
            raise RunError(f"GET http://127.0.0.1:{port}{path} {problem}")
        time.sleep(0.1)


def warm(port, headers, threads=8, progress=None):
    """Sends one request per header value (each a caller), from THREADS
    keep-alive connections; raises RunError if any answer is not 200."""
    failures = []
    done = [0]
    lock = threading.Lock()

    def work(part):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for auth in part:
                status, _, body = get(port, auth, conn=conn)
                with lock:
                    done[0] += 1
                    if status != 200:
                        failures.append((status, body[:200]))
                    if progress and done[0] % progress[0] == 0:
                        progress[1](done[0])
        except OSError as e:
            with lock:
                failures.append(("error", str(e)))
        finally:
            conn.close()

    parts = [headers[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(p,)) for p in parts if p]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise RunError(f"warm-up: {len(failures)} of {len(headers)} requests failed, e.g. {failures[0]}")


def stampede(port, auth, n, timeout=60):
    """Scenario h: N connections are opened first, then each sends one
    request for the same caller at once. Returns (statuses, seconds it took
    to write all requests, each answer's time from the first write)."""

    async def one_reader(reader):
        data = await reader.read()  # the request says Connection: close
        line = data.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 else 0, time.monotonic()

    async def main():
        conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(n)))
        request = (f"GET /bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: {auth}\r\nConnection: close\r\n\r\n").encode()
        start = time.monotonic()
        for _, writer in conns:
            writer.write(request)
        await asyncio.gather(*(writer.drain() for _, writer in conns))
        written = time.monotonic() - start
        results = await asyncio.wait_for(asyncio.gather(*(one_reader(r) for r, _ in conns)), timeout)
        for _, writer in conns:
            writer.close()
        return [s for s, _ in results], written, [t - start for _, t in results]

    return asyncio.run(main())


class FaultLoad:
    """The load of the fault row: THREADS keep-alive connections, each
    sending requests back to back, alternating a cached caller (one of
    CACHED) and, while `cold` is set, a cold one (the next of COLD, in a
    cycle). Every answer is recorded as (kind, sent at, seconds, status,
    Retry-After); a request without an answer is recorded with status 0.
    At most MAX_REQUESTS requests in all; `stop()` ends it."""

    def __init__(self, port, cached, cold, threads, max_requests):
        self.port, self.cached, self.cold_callers = port, cached, cold
        self.max_requests = max_requests
        self.records = []
        self.cold = threading.Event()
        self.recovered = threading.Event()  # a cold 200 after `watch` was set
        self.watch = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_cold = 0
        self._workers = [threading.Thread(target=self._work, args=(i,)) for i in range(threads)]

    def start(self):
        for w in self._workers:
            w.start()

    def stop(self):
        self._stop.set()
        for w in self._workers:
            w.join()

    def _cold_caller(self):
        with self._lock:
            caller = self.cold_callers[self._next_cold % len(self.cold_callers)]
            self._next_cold += 1
            return caller

    def _work(self, n):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = n
        try:
            while not self._stop.is_set():
                with self._lock:
                    if len(self.records) >= self.max_requests:
                        return
                kind = "cold" if self.cold.is_set() and i % 2 else "cached"
                auth = self._cold_caller() if kind == "cold" else self.cached[i % len(self.cached)]
                i += 1
                sent = time.monotonic()
                try:
                    status, raw, _ = get(self.port, auth, conn=conn)
                    headers = {k.lower(): v for k, v in raw.items()}
                except OSError:
                    status, headers = 0, {}
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                took = time.monotonic() - sent
                with self._lock:
                    self.records.append((kind, sent, took, status, headers.get("retry-after")))
                if kind == "cold" and status == 200 and self.watch.is_set():
                    self.recovered.set()
        finally:
            conn.close()


def quantile(values, q):
    """The q-quantile (0..1) of VALUES, nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def metrics(port):
    """The Prometheus text of ccgate's metrics entry point, as
    {series: value}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status != 200:
            raise RunError(f"GET /metrics: {resp.status}")
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            try:
                values[series] = float(value)
            except ValueError:
                pass
    return values


def token(token_endpoint, client_id, secret, audience):
    """An access token straight from the token endpoint."""
    host, rest = token_endpoint.removeprefix("http://").split(":", 1)
    port, path = rest.split("/", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "audience": audience})
        conn.request("POST", "/" + path, body=body, headers={
            "Authorization": basic(client_id, secret), "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RunError(f"token request: {resp.status} {data[:200]!r}")
        return json.loads(data)["access_token"]
    finally:
        conn.close()


def idp_call(issuer, method, path):
    """A call to the authorization server's /__test/ API."""
    host, port = issuer.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RunError(f"{method} {path} on the authorization server: {resp.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def grpc_load(binary, url, concurrency, requests, metadata, core, pin):
    """`grpc-load` (testing/grpc-peer): REQUESTS unary calls from
    CONCURRENCY tasks on one HTTP/2 connection; a summary shaped like
    wrk's (requests, duration_us, latency_us p50/p99). Any failed call is
    a RunError."""
    argv = [str(binary), url, str(concurrency), str(requests), *metadata]
    if pin:
        argv = ["taskset", "-c", str(core), *argv]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        raise RunError(f"grpc-load against {url} did not end in 600 s") from e
    if run.returncode != 0:
        raise RunError(f"grpc-load against {url} failed ({run.returncode}): {run.stderr.strip()[-300:]}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    if out["errors"]:
        raise RunError(f"grpc-load against {url}: {out['errors']} of {requests} calls failed")
    return {
        "requests": out["requests"],
        "duration_us": round(out["seconds"] * 1e6),
        "latency_us": {"p50": round(out["p50_ms"] * 1000), "p99": round(out["p99_ms"] * 1000)},
    }
