"""What N costs: start and stop time, idle RSS, thread states, dispatch at N = 64.

Issue 22, item 3. Every Orthanc runs this plugin with a trivial script (REST routes
that answer the interpreter's index) on 127.0.0.1, started and stopped here (by PID).
Four measurements, each bounded in time:

- start/stop: for each N of --counts, --rounds times (counts interleaved): seconds
  from launch until /system answers and the log says "runs in N sub-interpreters";
  then idle RSS (after --idle-s) from /proc/PID/smaps_rollup; then seconds from
  SIGTERM to exit, the exit code, and whether the log has "Fatal Python error".
  Per extra interpreter: (RSS(N) - RSS(1)) / (N - 1) as the issue counts it, and
  the least-squares slope over N >= 2 (the per-sub-interpreter cost alone).
- modules: sys.modules per interpreter (from a route), at the largest N below 16.
- thread states: N = --states-n with "HttpThreadsCount": --http-threads and as many
  keep-alive client connections, each sending --states-requests requests; each answer
  names (OS thread, interpreter), so the pairs seen are the thread states the plugin
  caches. RSS after a first and a second pass (the second creates no new state: its
  growth must be near 0), then a clean stop.
- dispatch: N = 2 and N = 64 up together, wrk -t2 -c8 -d5s on the trivial route,
  --wrk-rounds rounds interleaved; median req/s, and the interpreters that served.

Writes perf/results/<environment>/costs.md (and costs.json) and prints the table.

    .venv/bin/python perf/costs.py [--counts 1,2,4,8,16,32,64] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from bench import RESULTS, environment_name, os_release, progress, rotated, settle

from orthanc_python_multi import plugin_path

# The Orthanc process helpers are the tests' (tests/support/); importing bench put
# the checkout on sys.path.
from tests.support.process import OrthancProcess, make_orthanc  # noqa: E402

# No import beyond what the bootstrap already loaded (threading), so the modules of
# each interpreter are the plugin's own: every module costs its objects once per interpreter.
SCRIPT = """
import sys
import threading

import orthanc


def Index(output, uri, **request):
    output.AnswerBuffer(str(orthanc.GetInterpreterIndex()), 'text/plain')


def Who(output, uri, **request):
    output.AnswerBuffer(f'{orthanc.GetInterpreterIndex()} {threading.get_ident()}', 'text/plain')


def Modules(output, uri, **request):
    output.AnswerBuffer(' '.join([str(orthanc.GetInterpreterIndex())] + sorted(sys.modules)),
                        'text/plain')


orthanc.RegisterRestCallback('/costs/index', Index)
orthanc.RegisterRestCallback('/costs/who', Who)
orthanc.RegisterRestCallback('/costs/modules', Modules)
"""

MIB = 1024 * 1024


@dataclass
class Report:
    environment: dict[str, Any]
    cycles: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[str, Any] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    dispatch: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def smaps_rollup(pid: int) -> dict[str, float]:
    """The process's memory by kind, in MiB (Rss, Pss, Anonymous, Shared_Clean...)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return fields


# The plugin under test: the installed one, or --plugin (a build to compare).
PLUGIN: list[Path] = []


def server_for(
    folder: Path, interpreters: int, extra: dict[str, Any] | None = None
) -> OrthancProcess:
    plugin = PLUGIN[0] if PLUGIN else plugin_path()
    return make_orthanc(
        folder, SCRIPT, plugin=plugin, interpreters=interpreters, extra=extra, verbose=False
    )


def runs_in_line(server: OrthancProcess, interpreters: int) -> bool:
    wanted = (
        "runs in 1 interpreter" if interpreters == 1 else f"runs in {interpreters} sub-interpreters"
    )
    return wanted in server.log()


def start_timed(server: OrthancProcess, interpreters: int, limit_s: float) -> float:
    """Seconds from launch until /system answers and the plugin logged its start line."""
    began = time.perf_counter()
    server.start(wait=False)
    server.wait_ready(timeout=limit_s)
    deadline = began + limit_s
    while not runs_in_line(server, interpreters):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no 'runs in {interpreters}' line within {limit_s} s")
        time.sleep(0.01)
    return time.perf_counter() - began


def stop_timed(server: OrthancProcess, limit_s: float) -> tuple[float, int | None, bool]:
    """SIGTERM to exit: seconds, exit code (None: killed after limit_s), fatal error seen."""
    began = time.perf_counter()
    try:
        code: int | None = server.stop(timeout=limit_s)
    except RuntimeError:
        code = None
    took = time.perf_counter() - began
    return took, code, "Fatal Python error" in server.log()


def get_text(url: str, timeout: float = 30.0) -> str:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("requests only ever go to 127.0.0.1")
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


# --- start / stop / idle RSS --------------------------------------------------------


def measure_cycles(
    counts: list[int], rounds: int, idle_s: float, work: Path, report: Report
) -> None:
    for round_ in range(rounds):
        for n in rotated(counts, round_):
            progress(f"start/stop: N={n}, round {round_ + 1}/{rounds}")
            server = server_for(work / f"cycle-{n}-{round_}", n)
            cycle: dict[str, Any] = {"n": n, "round": round_}
            try:
                cycle["start_s"] = start_timed(server, n, limit_s=120)
                time.sleep(idle_s)
                memory = smaps_rollup(server.pid)
                cycle["rss_mib"] = memory.get("Rss")
                cycle["anon_mib"] = memory.get("Anonymous")
                cycle["threads"] = psutil.Process(server.pid).num_threads()
            except Exception as failure:  # noqa: BLE001 - recorded, the run goes on
                cycle["error"] = str(failure).splitlines()[0]
            finally:
                stop_s, code, fatal = stop_timed(server, limit_s=60)
            cycle.update(stop_s=stop_s, exit_code=code, fatal=fatal)
            if code != 0 or fatal:
                tail = "\n".join(server.log().splitlines()[-5:])
                report.notes.append(f"N={n} round {round_}: exit {code}, fatal={fatal}:\n{tail}")
            report.cycles.append(cycle)


def median_of(cycles: list[dict[str, Any]], n: int, key: str) -> float | None:
    values = [c[key] for c in cycles if c["n"] == n and c.get(key) is not None]
    return statistics.median(values) if values else None


def slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of value over N."""
    if len(points) < 2:
        return None
    mean_n = statistics.fmean(n for n, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    den = sum((n - mean_n) ** 2 for n, _ in points)
    return sum((n - mean_n) * (v - mean_v) for n, v in points) / den if den else None


# --- sys.modules per interpreter ------------------------------------------------------


def measure_modules(n: int, work: Path, report: Report) -> None:
    progress(f"modules: sys.modules in each of {n} interpreters")
    server = server_for(work / f"modules-{n}", n)
    try:
        start_timed(server, n, limit_s=120)
        seen: dict[int, list[str]] = {}
        for _ in range(4 * n):  # idle dispatch rotates on ties: each interpreter in turn
            index, *modules = get_text(server.url + "/costs/modules").split()
            seen.setdefault(int(index), modules)
            if len(seen) == n:
                break
        counts = sorted({len(m) for m in seen.values()})
        report.modules = {
            "n": n,
            "interpreters_seen": len(seen),
            "counts": counts,
            "modules": next(iter(seen.values()), []),
        }
    finally:
        stop_timed(server, limit_s=60)


# --- thread states: HTTP threads x interpreters --------------------------------------


def client_loop(
    port: int,
    requests: int,
    deadline: float,
    pairs: set[tuple[int, int]],
    errors: list[str],
    lock: threading.Lock,
    barrier: threading.Barrier,
) -> None:
    """One keep-alive connection (so one Orthanc HTTP thread), `requests` requests;
    after the first one, waits until every client's connection is open, so that
    every HTTP thread holds one connection for the rest of the pass."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for sent in range(requests):
            if time.monotonic() > deadline:
                break
            if sent == 1:
                try:
                    barrier.wait(max(0.1, deadline - time.monotonic()))
                except threading.BrokenBarrierError:
                    pass  # a client failed or the time is up: go on regardless
            connection.request("GET", "/costs/who")
            answer = connection.getresponse()
            body = answer.read().decode()
            if answer.status != 200:
                with lock:
                    errors.append(f"{answer.status}: {body[:80]}")
                continue
            index, ident = body.split()
            with lock:
                pairs.add((int(ident), int(index)))
    except Exception as failure:  # noqa: BLE001 - counted, reported
        with lock:
            errors.append(repr(failure))
    finally:
        connection.close()


def one_pass(
    port: int, clients: int, requests: int, limit_s: float
) -> tuple[set[tuple[int, int]], list[str], float]:
    """The (OS thread ident, interpreter index) pairs the answers named, the errors."""
    pairs: set[tuple[int, int]] = set()
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + limit_s
    began = time.perf_counter()
    threads = [
        threading.Thread(
            target=client_loop, args=(port, requests, deadline, pairs, errors, lock, barrier)
        )
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit_s + 35)
    return pairs, errors, time.perf_counter() - began


def measure_states(
    n: int, http_threads: int, requests: int, limit_s: float, work: Path, report: Report
) -> None:
    progress(f"thread states: {http_threads} HTTP threads x {n} interpreters")
    extra = {"HttpThreadsCount": http_threads, "KeepAlive": True}
    server = server_for(work / f"states-{n}", n, extra)
    result: dict[str, Any] = {"n": n, "http_threads": http_threads, "requests_per_client": requests}
    try:
        start_timed(server, n, limit_s=120)
        port = int(server.config["HttpPort"])
        result["rss_idle_mib"] = smaps_rollup(server.pid)["Rss"]
        passes = []
        seen: set[tuple[int, int]] = set()
        for pass_ in range(2):
            pairs, errors, took = one_pass(port, http_threads, requests, limit_s)
            settle(psutil.Process(server.pid), 5)
            memory = smaps_rollup(server.pid)
            threads = {ident for ident, _ in pairs}
            per_thread: dict[int, set[int]] = {}
            for ident, index in pairs:
                per_thread.setdefault(ident, set()).add(index)
            passes.append(
                {
                    "seconds": took,
                    "errors": len(errors),
                    "first_error": errors[0] if errors else None,
                    "os_threads": len(threads),
                    "interpreters": len({index for _, index in pairs}),
                    "pairs": len(pairs),
                    "new_pairs": len(pairs - seen),
                    "threads_touching_all": sum(1 for s in per_thread.values() if len(s) == n),
                    "rss_mib": memory["Rss"],
                    "anon_mib": memory["Anonymous"],
                }
            )
            seen |= pairs
            progress(f"  pass {pass_ + 1}: {passes[-1]}")
        result["passes"] = passes
    except Exception as failure:  # noqa: BLE001 - recorded
        result["error"] = str(failure).splitlines()[0]
    finally:
        stop_s, code, fatal = stop_timed(server, limit_s=60)
    result.update(stop_s=stop_s, exit_code=code, fatal=fatal)
    if code != 0 or fatal:
        report.notes.append("thread states: " + "\n".join(server.log().splitlines()[-5:]))
    report.states = result


# --- dispatch cost at N = 2 and N = 64 ------------------------------------------------


def run_wrk(url: str, seconds: int) -> float:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only ever sent to 127.0.0.1")
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise ValueError(f"no throughput in wrk output:\n{out}")
    return float(match.group(1))


def served(url: str) -> list[int]:
    """Calls per interpreter, from the plugin's counters."""
    listed = json.loads(get_text(url + "/python/interpreters"))["Interpreters"]
    return [int(i["Calls"]) for i in listed]


def measure_dispatch(
    counts: list[int], rounds: int, seconds: int, work: Path, report: Report
) -> None:
    progress(f"dispatch: wrk -t2 -c8 -d{seconds}s at N = {counts}, {rounds} rounds")
    servers: dict[int, OrthancProcess] = {}
    runs: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for n in counts:
            servers[n] = server_for(work / f"dispatch-{n}", n)
            start_timed(servers[n], n, limit_s=120)
        for n in counts:  # warm-up: every thread gets its states
            run_wrk(servers[n].url + "/costs/index", 1)
            settle(psutil.Process(servers[n].pid), 10)
        for round_ in range(rounds):
            for n in rotated(counts, round_):
                runs[n].append(run_wrk(servers[n].url + "/costs/index", seconds))
                settle(psutil.Process(servers[n].pid), 10)
                progress(f"  N={n} round {round_ + 1}: {runs[n][-1]:.0f} req/s")
        calls = {n: served(servers[n].url) for n in counts}
        report.dispatch = {
            "runs": runs,
            "median": {n: statistics.median(v) for n, v in runs.items()},
            "interpreters_serving": {n: sum(1 for c in calls[n] if c > 0) for n in counts},
            "calls_min_max": {n: (min(calls[n]), max(calls[n])) for n in counts},
        }
    finally:
        for n, server in servers.items():
            _, code, fatal = stop_timed(server, limit_s=60)
            if code != 0 or fatal:
                report.notes.append(f"dispatch N={n}: exit {code}, fatal={fatal}")


# --- report ---------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(report: Report, counts: list[int]) -> str:
    env = report.environment
    lines = [
        "# What N costs",
        "",
        f"{env['os']}, Orthanc {env['orthanc']}, CPython {env['python']}, {env['cpus']} CPUs, "
        f"{env['date']}; {env['rounds']} round(s), medians; plugin {env['plugin']}."
        + (" QUICK" if env["quick"] else ""),
        "",
        "| N | start s | stop s | exit 0, no fatal | idle RSS MiB | anon MiB | "
        "RSS per extra interpreter MiB (vs N=1) | threads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = median_of(report.cycles, 1, "rss_mib")
    for n in counts:
        rss = median_of(report.cycles, n, "rss_mib")
        ok = all(
            c["exit_code"] == 0 and not c["fatal"] and "error" not in c
            for c in report.cycles
            if c["n"] == n
        )
        extra = (rss - base) / (n - 1) if rss is not None and base is not None and n > 1 else None
        lines.append(
            f"| {n} | {fmt(median_of(report.cycles, n, 'start_s'))} | "
            f"{fmt(median_of(report.cycles, n, 'stop_s'))} | {'yes' if ok else 'NO'} | "
            f"{fmt(rss, 1)} | {fmt(median_of(report.cycles, n, 'anon_mib'), 1)} | "
            f"{fmt(extra)} | {fmt(median_of(report.cycles, n, 'threads'), 0)} |"
        )
    subs = [(c["n"], c["rss_mib"]) for c in report.cycles if c["n"] >= 2 and c.get("rss_mib")]
    anon = [(c["n"], c["anon_mib"]) for c in report.cycles if c["n"] >= 2 and c.get("anon_mib")]
    lines += [
        "",
        f"Per sub-interpreter (least-squares slope over N >= 2): RSS {fmt(slope(subs))} MiB, "
        f"anonymous {fmt(slope(anon))} MiB.",
    ]
    if report.modules:
        m = report.modules
        lines += [
            "",
            f"sys.modules at N={m['n']}: {m['counts']} modules in each of the "
            f"{m['interpreters_seen']} interpreters seen.",
        ]
    if report.states:
        s = report.states
        lines += [
            "",
            f"Thread states: N={s['n']}, HttpThreadsCount {s['http_threads']}, "
            f"{s['http_threads']} keep-alive clients x {s['requests_per_client']} requests "
            f"a pass; idle RSS {fmt(s.get('rss_idle_mib'), 1)} MiB.",
            "",
            "| pass | s | errors | OS threads | interpreters | (thread, interpreter) pairs "
            "(new) | threads that touched all | RSS MiB | anon MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for i, p in enumerate(s.get("passes", [])):
            lines.append(
                f"| {i + 1} | {fmt(p['seconds'], 1)} | {p['errors']} | {p['os_threads']} | "
                f"{p['interpreters']} | {p['pairs']} ({p['new_pairs']}) | "
                f"{p['threads_touching_all']} | "
                f"{fmt(p['rss_mib'], 1)} | {fmt(p['anon_mib'], 1)} |"
            )
        lines.append(
            f"\nStop: {fmt(s['stop_s'])} s, exit {s['exit_code']}, "
            f"fatal error: {'yes' if s['fatal'] else 'no'}"
            f"{', error: ' + s['error'] if 'error' in s else ''}."
        )
    if report.dispatch:
        d = report.dispatch
        ns = sorted(d["median"])
        lines += [
            "",
            "| trivial route, wrk -t2 -c8 | " + " | ".join(f"N={n}" for n in ns) + " |",
            "|---" * (len(ns) + 1) + "|",
            "| req/s, median (runs) | "
            + " | ".join(
                f"{d['median'][n]:.0f} ({', '.join(f'{r:.0f}' for r in d['runs'][n])})" for n in ns
            )
            + " |",
            "| interpreters that served | "
            + " | ".join(
                f"{d['interpreters_serving'][n]} of {n} (calls {d['calls_min_max'][n][0]}-"
                f"{d['calls_min_max'][n][1]})"
                for n in ns
            )
            + " |",
        ]
        if len(ns) == 2:
            lines.append(
                f"\nN={ns[1]} / N={ns[0]}: {d['median'][ns[1]] / d['median'][ns[0]]:.2f}x "
                "(goal >= 0.9x)."
            )
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def orthanc_version() -> str:
    out = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    return match.group(1) if match else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4,8,16,32,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=1.0)
    parser.add_argument("--parts", default="cycles,modules,states,dispatch")
    parser.add_argument("--states-n", type=int, default=8)
    parser.add_argument("--http-threads", type=int, default=96)
    parser.add_argument("--states-requests", type=int, default=40)
    parser.add_argument("--states-limit-s", type=float, default=60.0)
    parser.add_argument("--dispatch-counts", default="2,64")
    parser.add_argument("--wrk-rounds", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s wrk: not for reporting")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plugin", type=Path, default=None, help="a plugin build to measure")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.wrk_rounds, args.wrk_seconds, args.states_requests = 1, 1, 2, 16
    counts = [int(c) for c in args.counts.split(",")]
    if args.plugin:
        PLUGIN.append(args.plugin.resolve())
    parts = set(args.parts.split(","))
    release = os_release()
    report = Report(
        environment={
            "os": release.get("PRETTY_NAME", "?"),
            "orthanc": orthanc_version(),
            "python": platform.python_version(),
            "cpus": psutil.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "rounds": args.rounds,
            "quick": args.quick,
            "plugin": str(PLUGIN[0] if PLUGIN else plugin_path()),
        }
    )
    out = args.out or RESULTS / (environment_name(release) + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opm-costs-") as folder:
        work = Path(folder)
        if "cycles" in parts:
            measure_cycles(counts, args.rounds, args.idle_s, work, report)
        if "modules" in parts:
            measure_modules(max([n for n in counts if n < 16] or [2]), work, report)
        if "states" in parts:
            measure_states(
                args.states_n,
                args.http_threads,
                args.states_requests,
                args.states_limit_s,
                work,
                report,
            )
        if "dispatch" in parts:
            measure_dispatch(
                [int(c) for c in args.dispatch_counts.split(",")],
                args.wrk_rounds,
                args.wrk_seconds,
                work,
                report,
            )
    (out / "costs.json").write_text(json.dumps(report.__dict__, indent=2, default=list))
    text = markdown(report, counts if "cycles" in parts else [])
    (out / "costs.md").write_text(text)
    print(text)
    print(f"written to {out}/costs.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
