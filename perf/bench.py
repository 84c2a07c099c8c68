"""Side-by-side benchmarks: this plugin against the existing Orthanc Python plugin.

Every configuration runs a real Orthanc on loopback, started and stopped here;
HTTP load comes from wrk, bounded by duration. Results go to perf/results/
(results.json, results.md, and PNG plots). Usage:

    .venv/bin/python perf/bench.py [--quick] [--scenarios cpu,trivial,storage,memory]
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
from orthanc_python_multi.process import OrthancProcess, make_orthanc, wrk_requests

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
    """The named configurations; "ours-auto" is left out where it equals "ours-2"."""
    ours = plugin_path()
    cores = len(os.sched_getaffinity(0))
    known = {
        "existing": Configuration("existing", EXISTING_PLUGIN, 1),
        "ours-1": Configuration("ours-1", ours, 1),
        "ours-2": Configuration("ours-2", ours, 2),
        "ours-auto": Configuration(f"ours-auto({cores})", ours, "auto"),
    }
    chosen = [known[name] for name in names]
    if cores in (1, 2) and "ours-auto" in names and f"ours-{cores}" in names:
        progress(f"ours-auto is ours-{cores} on this {cores}-core machine: measured once")
        chosen = [c for c in chosen if c.interpreters != "auto"]
    return chosen


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


TRIVIAL_SCRIPT = """
import orthanc

def Ok(output, uri, **request):
    output.AnswerBuffer('ok', 'text/plain')

def Size(output, uri, **request):
    output.AnswerBuffer(str(len(request['body'])), 'text/plain')

orthanc.RegisterRestCallback('/bench/ok', Ok)
orthanc.RegisterRestCallback('/bench/size', Size)
"""

# A storage area doing real CPU work per file: zlib level 9, then SHA-256.
STORAGE_SCRIPT = """
import hashlib
import os
import zlib
import orthanc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'python-storage')
os.makedirs(ROOT, exist_ok=True)

def Create(uuid, contentType, data):
    packed = zlib.compress(data, 9)
    digest = hashlib.sha256(packed).hexdigest()
    with open(os.path.join(ROOT, uuid), 'wb') as f:
        f.write(digest.encode() + b'\\n' + packed)

def Read(uuid, contentType):
    with open(os.path.join(ROOT, uuid), 'rb') as f:
        return zlib.decompress(f.read().split(b'\\n', 1)[1])

def Remove(uuid, contentType):
    os.remove(os.path.join(ROOT, uuid))

orthanc.RegisterStorageArea(Create, Read, Remove)
"""


# The same storage area with pure-Python work per file instead (zlib and hashlib
# release the GIL on large buffers, so the existing plugin runs them in parallel
# too): a byte-by-byte checksum of the file, 6 passes, about 30 ms a file here.
PYTHON_STORAGE_SCRIPT = STORAGE_SCRIPT.replace(
    "    packed = zlib.compress(data, 9)\n",
    "    checksum = 0\n"
    "    for _ in range(6):\n"
    "        for byte in data:\n"
    "            checksum = (checksum * 31 + byte) % 1000000007\n"
    "    packed = zlib.compress(data, 1)\n",
)


def storage_files(count: int, seed: int) -> list[bytes]:
    """`count` new DICOM files of 256x256 compressible noise (zlib -9 has work to do)."""
    import random

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from dicom_files import make_dicom  # type: ignore[import-not-found]

    rng = random.Random(seed)
    files = []
    for i in range(count):
        data = make_dicom(f"B{seed}-{i}", rows=256, columns=256)
        noise = bytes(rng.choice(b"\x00\x01\x02\x03") for _ in range(65536))
        files.append(data[:-65536] + noise)
    return files


def bench_storage(
    scenario: str,
    script: str,
    configs: list[Configuration],
    clients: list[int],
    files: int,
    work: Path,
) -> list[Measurement]:
    """Instances/s while `c` clients upload small DICOM files to a Python storage area."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    results = []
    for config in configs:
        server = start(config, script, work / f"storage-{len(results)}-{config.name}")
        try:

            def post(data: bytes, url: str = server.url + "/instances") -> float:
                request = urllib.request.Request(url, data=data, method="POST")
                began = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as answer:
                    assert answer.status == 200
                return time.perf_counter() - began

            for level, count in enumerate(clients):
                batch = storage_files(files, seed=hash((scenario, level)) % 1000)  # new instances
                progress(f"{scenario}: {config.name}, {count} client(s)")
                began = time.perf_counter()
                with ThreadPoolExecutor(count) as pool:
                    latencies = sorted(pool.map(post, batch))
                elapsed = time.perf_counter() - began
                results.append(
                    Measurement(
                        scenario,
                        config.name,
                        count,
                        files / elapsed,
                        1000 * latencies[len(latencies) // 2],
                        1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                        1,
                    )
                )
        finally:
            if server.stop() != 0:
                raise RuntimeError(f"{config.name} did not stop cleanly:\n{server.log()}")
    return results


def rss_mib(server: OrthancProcess) -> float:
    with open(f"/proc/{server.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def bench_memory(
    configs: list[Configuration], counts: list[int], requests_wanted: int, work: Path
) -> dict[str, object]:
    """Idle RSS, start and stop times by interpreter count; RSS growth under load."""
    import urllib.request

    ours = plugin_path()
    idle = []
    for count in counts:
        progress(f"memory: idle RSS and start/stop time, {count} interpreter(s)")
        server = make_orthanc(
            work / f"idle-{count}",
            "import orthanc\n",
            plugin=ours,
            interpreters=count,
            verbose=False,
        )
        began = time.perf_counter()
        server.start()
        started = time.perf_counter() - began
        time.sleep(1.0)
        rss = rss_mib(server)
        began = time.perf_counter()
        code = server.stop()
        stopped = time.perf_counter() - began
        if code != 0:
            raise RuntimeError(server.log())
        idle.append(
            {
                "interpreters": count,
                "rss_mib": round(rss, 1),
                "start_s": round(started, 3),
                "stop_s": round(stopped, 3),
            }
        )
    growth = []
    body = bytes(256 * 1024)
    for config in configs:
        progress(f"memory: RSS growth under load, {config.name}")
        server = start(config, TRIVIAL_SCRIPT, work / f"growth-{config.name}")
        try:
            url = server.url + "/bench/ok"
            wrk_requests(url, 20_000)
            before = rss_mib(server)
            done = wrk_requests(url, requests_wanted)
            after_requests = rss_mib(server)
            for _ in range(400):
                request = urllib.request.Request(
                    server.url + "/bench/size", data=body, method="POST"
                )
                with urllib.request.urlopen(request, timeout=60) as answer:
                    answer.read()
            after_posts = rss_mib(server)
        finally:
            server.stop()
        growth.append(
            {
                "configuration": config.name,
                "requests": done,
                "growth_requests_mib": round(after_requests - before, 2),
                "growth_posts_mib": round(after_posts - after_requests, 2),
            }
        )
    return {"idle": idle, "growth": growth}


def memory_markdown(memory: dict[str, object]) -> str:
    lines = ["| interpreters | idle RSS MiB | start s | stop s |", "|---:|---:|---:|---:|"]
    for row in memory["idle"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {row['interpreters']} | {row['rss_mib']} | {row['start_s']} | {row['stop_s']} |"
        )
    lines += [
        "",
        "| configuration | trivial requests | RSS growth MiB | "
        "RSS growth over 400 POSTs of 256 KiB, MiB |",
        "|---|---:|---:|---:|",
    ]
    for row in memory["growth"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {row['configuration']} | {row['requests']} | "
            f"{row['growth_requests_mib']} | {row['growth_posts_mib']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer repetitions")
    parser.add_argument("--configurations", default="existing,ours-1,ours-2,ours-auto")
    parser.add_argument("--scenarios", default="cpu,trivial,storage,memory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    if not EXISTING_PLUGIN.exists():
        raise SystemExit(f"the existing plugin is needed: {EXISTING_PLUGIN} (orthanc-python)")
    seconds, repetitions = (2.0, 1) if args.quick else (4.0, 3)
    configs = configurations(args.configurations.split(","))
    scenarios = args.scenarios.split(",")
    started = time.monotonic()
    results: list[Measurement] = []
    memory: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="opm-bench-") as folder:
        work = Path(folder)
        if "cpu" in scenarios:
            results += bench_http(
                "cpu-bound route",
                CPU_SCRIPT,
                "/bench/cpu",
                configs,
                [1, 2, 4, 8],
                seconds,
                repetitions,
                work,
            )
        if "trivial" in scenarios:
            results += bench_http(
                "trivial route",
                TRIVIAL_SCRIPT,
                "/bench/ok",
                configs,
                [1, 8, 32],
                seconds,
                repetitions,
                work,
            )
            results += bench_http(
                "built-in /system",
                TRIVIAL_SCRIPT,
                "/system",
                configs[:1],
                [1, 8, 32],
                seconds,
                repetitions,
                work,
            )
        if "storage" in scenarios:
            files = 20 if args.quick else 48
            results += bench_storage(
                "storage area (zlib 9 + SHA-256)", STORAGE_SCRIPT, configs, [1, 2, 4], files, work
            )
            results += bench_storage(
                "storage area (pure-Python checksum)",
                PYTHON_STORAGE_SCRIPT,
                configs,
                [1, 2, 4],
                files,
                work,
            )
        if "memory" in scenarios:
            memory = bench_memory(configs, [1, 2, 4, 8], 20_000 if args.quick else 100_000, work)
    RESULTS.mkdir(exist_ok=True)
    table = markdown(results)
    if memory:
        table += "\n\n" + memory_markdown(memory)
    report = {
        "machine": machine(),
        "results": [asdict(m) for m in results],
        "memory": memory,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    (RESULTS / "results.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "results.md").write_text(table + "\n")
    plotter = os.environ.get("OPM_PLOT_PYTHON")
    if plotter:
        # matplotlib brings numpy and Pillow, which must stay out of the plugin's
        # environment (they cannot load in sub-interpreters): plot from another one.
        subprocess.run(
            [plotter, str(Path(__file__).with_name("plot.py")), str(RESULTS / "results.json")],
            check=True,
            timeout=300,
        )
    print(table)
    progress(f"done in {report['elapsed_s']} s; results in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
