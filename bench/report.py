"""The report of a benchmark run: a Markdown section (the table, the
ratios and the goals of SPEC §9) and a short summary for the terminal."""

import statistics
from pathlib import Path

BEGIN = "<!-- bench/run writes from here to the end marker; edit outside -->"
END = "<!-- end of bench/run's results -->"

# The goals of SPEC §9, each a ratio of requests per second in one run.
GOALS = [
    ("d/c", "d", "c", 0.95, "the middleware on a warm cache keeps ≥ 0.95 of the route without it"),
    ("c/b", "c", "b", 1.0, "ccgate without middleware matches or beats nginx `proxy_pass`"),
    ("c/b2", "c", "b2", 1.0, "… and Traefik"),
    ("c/b3", "c", "b3", 1.0, "… and HAProxy"),
    ("d/b2", "d", "b2", 1.0, "with the middleware, still beats Traefik without any"),
    ("e/d", "e", "d", 0.9, "many callers keep ≥ 0.9 of one caller"),
    ("f/d", "f", "d", 0.9, "the Redis store keeps ≥ 0.9 of the memory store"),
    ("j/d", "j", "d", 0.9, "under the abuse mix (SPEC §10), good traffic keeps ≥ 0.9 of d, every request answered"),
    ("k/k0", "k", "k0", 1.0, "gRPC unary through ccgate with the middleware matches or beats nginx `grpc_pass` without any"),
    ("l/l0", "l", "l0", 1.0, "to an HTTPS upstream, ccgate matches or beats nginx `proxy_pass https://`"),
]


def rps(summary):
    return summary["requests"] / (summary["duration_us"] / 1e6)


def median_of(runs, key):
    if key == "rps":
        return statistics.median(rps(r) for r in runs)
    return statistics.median(r["latency_us"][key] for r in runs)


def ratio(data, num, den):
    """(median of the per-round ratios, per-round ratios, ratio of the
    medians) or None when either side is missing. The median of the
    per-round ratios is the value judged: the two sides of a round ran
    seconds apart, so a slow minute of a shared machine touches both."""
    a, b = data["results"].get(num), data["results"].get(den)
    if not a or not b:
        return None
    per_round = [rps(x) / rps(y) for x, y in zip(a, b)]
    return statistics.median(per_round), per_round, median_of(a, "rps") / median_of(b, "rps")


def ms(us):
    return f"{us / 1000:.2f} ms"


def missing(data, s):
    if s in data["failures"]:
        return "failed: " + data["failures"][s].splitlines()[0][:120]
    return data["notes"].get(s, "not run")


def goal_rows(data):
    rows = []
    for name, num, den, goal, meaning in GOALS:
        r = ratio(data, num, den)
        if r is None:
            absent = num if num not in data["results"] else den
            rows.append((name, "n/a", "", "", f"≥ {goal}", f"n/a ({absent}: {missing(data, absent)})", meaning))
        else:
            value, per_round, of_medians = r
            rounds = ", ".join(f"{x:.2f}" for x in per_round)
            # Three decimals, so that 0.947 does not read as 0.95 beside "no".
            rows.append((name, f"{value:.3f}", rounds, f"{of_medians:.3f}", f"≥ {goal}",
                         "yes" if value >= goal else "**no**", meaning))
    h = data.get("h")
    if h:
        holds = "yes" if h["token_requests"] == 1 else "**no**"
        rows.append(("h", str(h["token_requests"]), "", "", "= 1", holds,
                     f"token requests made for {h['requests']:,} concurrent cold requests of one client"))
    else:
        rows.append(("h", "n/a", "", "", "= 1", f"n/a (h: {missing(data, 'h')})", "cold stampede"))
    return rows


def markdown(data):
    m = data["machine"]
    p = data["params"]
    out = [BEGIN, ""]
    if data["mode"] == "smoke":
        out.append("**Smoke mode**: it only proves that every scenario runs; its numbers and ratios mean nothing.")
        out.append("")
    out.append(f"Command: `{data['command']}` ({data['mode']} mode), {m['date']}, commit `{m['commit']}`, "
               f"ccgate binary `{data['ccgate']}`.")
    out.append("")
    out.append(f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
               f"load average {' '.join(m['loadavg_before'])} before the run and "
               f"{' '.join(m['loadavg_after'])} after it (the run's own load counts in the second).")
    out.append("")
    v = m["versions"]
    out.append(f"Versions: {v['nginx']}, {v.get('haproxy', 'HAProxy ?')}, Traefik {v['traefik']}, {v['wrk']}, Node.js {v['node']}"
               f" (test authorization server), {v['redis']}.")
    out.append("")
    pin = data["pinned"]
    where = (f"wrk on core {pin['load_core']}; upstream, proxies, ccgate and Redis on core {pin['server_core']}"
             if pin else "no pinning (fewer than two cores available)")
    out.append(f"Load: wrk, 1 thread, {p['connections']} connections, keep-alive, `GET /bench` with "
               f"`Authorization: Basic …`; {p['rounds']} round(s) of {p['seconds']} s per scenario, "
               + (f"each cut into {p['slices']} wrk runs taken in turn across the scenarios (j runs whole); "
                  if p.get("slices", 1) > 1 else "scenarios interleaved within each round; ")
               + f"{where}. Requests/s and latencies are the medians over the rounds"
               + (" (a round's p50 is the median of its slices', its p99 the worst slice's)."
                  if p.get("slices", 1) > 1 else "."))
    out.append("")
    out.append("| scenario | what | requests/s | p50 | p99 | requests/s per round |")
    out.append("|---|---|---:|---:|---:|---|")
    for s, desc in data["scenarios"].items():
        runs = data["results"].get(s)
        if runs:
            per_round = ", ".join(f"{rps(r):,.0f}" for r in runs)
            out.append(f"| {s} | {desc} | {median_of(runs, 'rps'):,.0f} | {ms(median_of(runs, 'p50'))} | "
                       f"{ms(median_of(runs, 'p99'))} | {per_round} |")
        else:
            out.append(f"| {s} | {desc} | {missing(data, s)} | | | |")
    h = data.get("h")
    out.append(f"| h | cold stampede: {p['stampede']:,} concurrent first requests of one client, token "
               "endpoint held 0.5 s | "
               + (f"{h['token_requests']} token request(s); all {h['requests']:,} requests written within "
                  f"{h['written_s']:.3f} s, all answered 200, {h['latency_min_s']:.2f}–{h['latency_max_s']:.2f} s "
                  "after the first | | | |" if h else f"{missing(data, 'h')} | | | |"))
    i = data.get("i")
    out.append(f"| i | resident memory per cached token, {p['memory_tokens']:,} tokens | "
               + (f"{i['bytes_per_token']:,} bytes per token (RSS {i['rss_before_kib'] / 1024:.1f} → "
                  f"{i['rss_after_kib'] / 1024:.1f} MiB) | | | |" if i else f"{missing(data, 'i')} | | | |"))
    fault = data.get("fault")
    out.append(f"| fault | the token endpoint (its own test authorization server) stopped for "
               f"{p.get('fault_down_s', '?')} s under load, then restarted | "
               + (f"cached: {fault['cached']['requests']:,} requests, {fault['cached']['non_200']} not 200; "
                  f"cold during the fault: {fault_statuses(fault)}, the 503s in "
                  f"{fault['refused_ms']['p50']} ms (p50), {fault['refused_ms']['max']} ms max; "
                  f"token requests sent: {fault_sent(fault)} | | | |"
                  if fault else f"{missing(data, 'fault')} | | | |"))
    out.append("")
    if "k" in data["results"] or "k0" in data["results"]:
        out.append(f"Scenarios k0 and k: `grpc-load` (testing/grpc-peer), {p['connections']} concurrent unary calls "
                   "on one HTTP/2 connection (as one gRPC channel makes them), a fixed count of calls per run, "
                   "the two interleaved in each round; the echo server is `grpc-echo` (tonic's server over "
                   "hyper), ccgate's caller sends `authorization: Basic …` as metadata.")
        out.append("")
    if fault:
        out.append(fault_paragraph(fault, p))
        out.append("")
    if "token_requests_during_rounds" in data:
        out.append(f"Token requests during the measured rounds: {data['token_requests_during_rounds']} "
                   "(every cache stayed warm).")
        out.append("")
    j = data.get("j")
    if j:
        idle = [r["held_at_end"]["idle"] for r in j]
        slow = [r["held_at_end"]["slow"] for r in j]
        reopened = {k: sum(r["reopened"][k] for r in j) for k in ("idle", "slow")}
        out.append(f"Scenario j: at the end of each round the abusers held {min(idle):,}–{max(idle):,} idle and "
                   f"{min(slow)}–{max(slow)} slow-header connections open; over the rounds ccgate closed "
                   f"{reopened['slow']:,} slow-header connections (its 10 s header timeout) and "
                   f"{reopened['idle']:,} idle ones, each reopened at once.")
        out.append("")
    if i:
        out.append(f"Scenario i: {i['token_requests']:,} token requests while warming; a second request from "
                   f"{i['sample_rerequested']:,} of those clients made {i['sample_token_requests']} more "
                   "(all still cached).")
        out.append("")
    cost = data.get("cost")
    if cost:
        out.append("What one request costs the proxy (`--perf`: `perf stat` on the proxy's processes during "
                   "3 more runs of each, interleaved, per request, medians). c+jwt is c's route with the caller "
                   "sending the Bearer token that d forwards upstream, without the middleware:")
        out.append("")
        out.append("| scenario | requests/s | CPU time | system calls | context switches |")
        out.append("|---|---:|---:|---:|---:|")
        for s, c in cost.items():
            out.append(f"| {s} | {c['rps']:,.0f} | {c['cpu_us']:.1f} µs | {c['syscalls']:.2f} | "
                       f"{c['context_switches']:.3f} |")
        out.append("")
    counted = data.get("instructions")
    if counted:
        per = counted["per_request"]
        out.append("User-space instructions per request (`--instructions`: callgrind, the proxy in front of the "
                   f"same upstream answering {counted['few']:,} and then {counted['many']:,} requests, the "
                   "difference over the extra requests; the kernel's share is not counted). Unlike the "
                   "numbers above, these do not depend on what else the machine is doing:")
        out.append("")
        out.append("| scenario | instructions per request | relative to b |")
        out.append("|---|---:|---:|")
        for s in ("b", "b3", "c", "d", "l0", "l"):
            if s in per:
                out.append(f"| {s} | {per[s]['instructions']:,} | {per[s]['instructions'] / per['b']['instructions']:.2f} |")
        out.append("")
    out.append("Goals of SPEC §9. The value judged is the median of the per-round ratios (the two sides of a "
               "round ran seconds apart); the ratio of the medians of the table above is shown beside it:")
    out.append("")
    out.append("| ratio | value | per round | ratio of the medians | goal | holds | meaning |")
    out.append("|---|---:|---|---:|---|---|---|")
    for row in goal_rows(data):
        out.append("| " + " | ".join(row) + " |")
    if data["failures"]:
        out.append("")
        out.append("Failures:")
        out.append("")
        for s, reason in data["failures"].items():
            out.append(f"- {s}: {reason.splitlines()[0]}")
    out += ["", END]
    return "\n".join(out) + "\n"


def fault_statuses(f):
    return ", ".join(f"{n:,} × {status}" for status, n in f["cold_statuses"].items()) or "none"


def fault_sent(f):
    failed = sum(v for k, v in f["token_requests"].items() if k != "success")
    return f"{failed} failed while it was down"


def fault_paragraph(f, p):
    t = f["token_requests"]
    failed = sum(v for k, v in t.items() if k != "success")
    c = f["cached"]
    return (
        f"Fault row: {p['fault_threads']} keep-alive connections sent requests back to back, alternating one of "
        f"{p['fault_cached']} cached callers and, from the moment the authorization server was stopped "
        f"(SIGTERM), a cold caller (bench clients never seen before, in a cycle of {p['fault_cold']:,}); "
        f"{f['requests']:,} requests in all, {f['unanswered']} without an answer. Cached callers: "
        f"{c['requests']:,} requests, {c['non_200']} not answered 200; {c['during_fault']:,} of them while "
        f"the server was down, p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms. Cold callers until the first cold "
        f"200 after the restart: {fault_statuses(f)}; the cool-down began "
        f"{f['cool_down_began_s']} s after the stop (5 token requests in a row failed, each after its "
        f"retries), and its 503s took {f['refused_ms']['p50']} ms (p50), {f['refused_ms']['p99']} ms (p99), "
        f"{f['refused_ms']['max']} ms at most, with `Retry-After` {', '.join(f['retry_after']) or '–'}. "
        f"Token requests ccgate sent (its `ccgate_token_requests_total`): {failed} failed "
        f"({', '.join(f'{k} {v}' for k, v in t.items() if k != 'success')}) in the {f['down_s']} s: 5 in a "
        "row opened the breaker, the others were in flight when it opened or were the probe at the end of a "
        "cool-down (one per cool-down); refused without a request "
        f"(`ccgate_token_requests_refused_total`): {f['refused']['cooling_down']:,} cooling down, "
        f"{f['refused']['throttled']:,} throttled. The server listened again "
        f"{f['restart_listening_s']} s after its restart began; the first cold 200 came "
        f"{f['recovery_s']} s after that began (the rest of the cool-down, then one probe); the restarted "
        f"server received {f['idp_after_restart']['received']:,} token requests for "
        f"{f['cold_200_after_recovery']:,} cold answers 200 (one each, the first the probe), "
        f"{t.get('success', 0):,} successful token requests in all with the warm-up."
    )


def write(path, section):
    """Writes SECTION into PATH between the markers, keeping what stands
    outside them; a file without markers is replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text(head + section.rstrip("\n") + tail)
    else:
        path.write_text("# Benchmarks\n\n" + section)


def summary(data):
    lines = [""]
    if data["mode"] == "smoke":
        lines.append("smoke mode: every scenario ran; its numbers and ratios mean nothing (debug build, 1 s runs)")
    lines.append("scenario   requests/s        p50        p99")
    for s in data["scenarios"]:
        runs = data["results"].get(s)
        if runs:
            lines.append(f"{s:>8} {median_of(runs, 'rps'):12,.0f} {ms(median_of(runs, 'p50')):>10} "
                         f"{ms(median_of(runs, 'p99')):>10}")
        else:
            lines.append(f"{s:>8}   {missing(data, s)}")
    for name, value, rounds, _, goal, holds, _ in goal_rows(data):
        lines.append(f"{name:>8}   {value:>6}  goal {goal:<6} holds: {holds}")
    i = data.get("i")
    if i:
        lines.append(f"{'i':>8}   {i['bytes_per_token']:,} bytes per cached token")
    f = data.get("fault")
    if f:
        lines.append(f"{'fault':>8}   cached {f['cached']['requests']:,} requests ({f['cached']['non_200']} not 200); "
                     f"cold {fault_statuses(f)}; 503 p50 {f['refused_ms']['p50']} ms; {fault_sent(f)}")
    return "\n".join(lines) + "\n"
