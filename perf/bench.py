"""Side-by-side benchmarks: this plugin against the existing Orthanc Python plugin.

Every configuration runs a real Orthanc on loopback, started and stopped here;
load comes from wrk (bounded by duration). Results go to perf/results/ as JSON
and a markdown table. Usage:

    .venv/bin/python perf/bench.py [--quick] [--scenarios cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from orthanc_python_multi import plugin_path
from orthanc_python_multi.process import OrthancProcess, make_orthanc

EXISTING_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")
RESULTS = Path(__file__).resolve().parent / "results"

# About 50 ms of pure-Python work per call on this kind of machine.
CPU_SCRIPT = """
import orthanc

def Cpu(output, uri, **request):
    total = 0
    for i in range(600000):
        total += i * i % 7
    output.AnswerBuffer(str(total), 'text/plain')

orthanc.RegisterRestCallback('/bench/cpu', Cpu)
"""


@dataclass(frozen=True)
class Configuration:
    name: str
    plugin: Path
    interpreters: int | str  # ignored by the existing plugin


@dataclass
class Measurement:
    scenario: str
    configuration: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    repetitions: int


def configurations(names: list[str]) -> list[Configuration]:
    ours = plugin_path()
    known = {
        "existing": Configuration("existing", EXISTING_PLUGIN, 1),
        "ours-1": Configuration("ours-1", ours, 1),
        "ours-2": Configuration("ours-2", ours, 2),
        "ours-auto": Configuration("ours-auto", ours, "auto"),
    }
    return [known[name] for name in names]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(url: str, connections: int, seconds: float) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms of one wrk run (loopback only, bounded by -d)."""
    assert url.startswith("http://127.0.0.1:")
    threads = 1  # wrk itself stays light; one thread drives many connections
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "30s",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        raise ValueError(f"no throughput in wrk output:\n{result.stdout}")
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk saw errors:\n{result.stdout}")
    return float(match.group(1)), _latency_ms(result.stdout, "50"), _latency_ms(result.stdout, "99")


def start(config: Configuration, script: str, folder: Path) -> OrthancProcess:
    server = make_orthanc(
        folder, script, plugin=config.plugin, interpreters=config.interpreters, verbose=False
    )
    server.start()
    return server


def bench_http(
    scenario: str,
    script: str,
    path: str,
    configs: list[Configuration],
    concurrencies: list[int],
    seconds: float,
    repetitions: int,
    work: Path,
) -> list[Measurement]:
    results = []
    for config in configs:
        server = start(config, script, work / f"{scenario}-{config.name}")
        try:
            url = server.url + path
            run_wrk(url, 2, 1.0)  # warm-up
            for connections in concurrencies:
                progress(f"{scenario}: {config.name}, {connections} connection(s)")
                runs = [run_wrk(url, connections, seconds) for _ in range(repetitions)]
                results.append(
                    Measurement(
                        scenario,
                        config.name,
                        connections,
                        statistics.median(r[0] for r in runs),
                        statistics.median(r[1] for r in runs),
                        statistics.median(r[2] for r in runs),
                        repetitions,
                    )
                )
        finally:
            if server.stop() != 0:
                raise RuntimeError(f"{config.name} did not stop cleanly:\n{server.log()}")
    return results


def markdown(results: list[Measurement], baseline: str = "existing") -> str:
    lines = [
        "| scenario | configuration | concurrency | req/s | p50 ms | p99 ms | vs existing |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = {
        (m.scenario, m.concurrency): m.requests_per_s
        for m in results
        if m.configuration == baseline
    }
    for m in results:
        ratio = (
            m.requests_per_s / base[(m.scenario, m.concurrency)]
            if (m.scenario, m.concurrency) in base
            else float("nan")
        )
        lines.append(
            f"| {m.scenario} | {m.configuration} | {m.concurrency} | "
            f"{m.requests_per_s:.1f} | {m.p50_ms:.1f} | {m.p99_ms:.1f} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def machine() -> dict[str, object]:
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repetitions")
    parser.add_argument("--configurations", default="existing,ours-1,ours-2,ours-auto")
    parser.add_argument("--concurrency", default="1,2,4,8")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    if not EXISTING_PLUGIN.exists():
        raise SystemExit(f"the existing plugin is needed: {EXISTING_PLUGIN} (orthanc-python)")
    seconds, repetitions = (3.0, 1) if args.quick else (8.0, 3)
    configs = configurations(args.configurations.split(","))
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opm-bench-") as folder:
        results = bench_http(
            "cpu-bound route",
            CPU_SCRIPT,
            "/bench/cpu",
            configs,
            concurrencies,
            seconds,
            repetitions,
            Path(folder),
        )
    RESULTS.mkdir(exist_ok=True)
    table = markdown(results)
    report = {
        "machine": machine(),
        "results": [asdict(m) for m in results],
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (RESULTS / "results.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "results.md").write_text(table + "\n")
    print(table)
    progress(f"done in {report['elapsed_s']} s; results in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
