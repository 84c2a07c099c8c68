"""Side-by-side benchmarks: this plugin against the existing Orthanc Python plugin.

Every configuration runs a real Orthanc on loopback, started and stopped here (by
PID). The configurations are interleaved: in each repetition round every
configuration runs each measurement once, one after the other, the order rotated
from round to round, so a burst of load from elsewhere on the machine hits all of
them rather than one block. Each measurement keeps every run, its median and its
spread (min, max), and what else the machine was doing meanwhile (load average,
CPU time of the Orthanc process, of the load client, and of everything else).

Results go to perf/results/<environment>/ (perf/results/<environment>-quick/ with
--quick): results.json, results.md, and PNG plots when OPM_PLOT_PYTHON names a
Python with matplotlib (scripts/bench.sh does that). Usage:

    .venv/bin/python perf/bench.py [--quick] [--scenarios loop,cpu,trivial,storage,reads,...]
        [--interpreters 1,2,4] [--connections 1,2,4] [--wrk-threads 1]
"""

from __future__ import annotations

import argparse
import array
import io
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from orthanc_python_multi import plugin_path
from orthanc_python_multi.server import find_orthanc

CHECKOUT = Path(__file__).resolve().parents[1]
# The Orthanc process and imaging venv helpers are the tests' (tests/support/), not
# part of the installed package.
sys.path.insert(0, str(CHECKOUT))
from tests.support import venvs  # noqa: E402
from tests.support.process import OrthancProcess, make_orthanc, wrk_requests  # noqa: E402

EXISTING_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")
RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("loop", "cpu", "trivial", "storage", "reads", "mixed", "memory")

# The pure-Python work of the CPU-bound route: about 40-60 ms a call on this kind
# of machine. The same text runs standalone on each CPython ("loop" scenario).
LOOP_FUNCTION = """
def work():
    total = 0
    for i in range(600000):
        total += i * i % 7
    return total
"""

# A run during which other processes used more than this many cores on average is
# marked as noisy in results.md.
NOISY_CORES = 0.25

# How many times one loop measurement runs work(); its value is the fastest call
# (other load only ever adds time; as timeit does).
LOOP_CALLS = 10

CPU_SCRIPT = (
    "import json\nimport time\nimport orthanc\n"
    + LOOP_FUNCTION
    + f"""
def Cpu(output, uri, **request):
    output.AnswerBuffer(str(work()), 'text/plain')

def LoopTimes(output, uri, **request):
    times = []
    for _ in range({LOOP_CALLS}):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    output.AnswerBuffer(json.dumps(times), 'application/json')

orthanc.RegisterRestCallback('/bench/cpu', Cpu)
orthanc.RegisterRestCallback('/bench/loop', LoopTimes)
"""
)

# The same measurement as /bench/loop, in a standalone interpreter.
STANDALONE_LOOP = (
    "import json\nimport time\n"
    + LOOP_FUNCTION
    + f"""
times = []
for _ in range({LOOP_CALLS}):
    began = time.perf_counter()
    work()
    times.append(time.perf_counter() - began)
print(json.dumps(times))
"""
)

# The machine's own limit for the CPU route: the same work() in K plain processes at
# once. Each process waits for a common start (argv: start and stop, time.monotonic(),
# which all processes share on Linux), calls work() until the stop time (and at most
# RATE_CALLS_MAX times), and prints its calls and the seconds they took.
RATE_CALLS_MAX = 100_000
STANDALONE_RATE = (
    "import sys\nimport time\n"
    + LOOP_FUNCTION
    + f"""
start, stop = float(sys.argv[1]), float(sys.argv[2])
work()  # warm
while time.monotonic() < start:
    time.sleep(0.001)
calls = 0
while calls < {RATE_CALLS_MAX} and time.monotonic() < stop:
    work()
    calls += 1
print(calls, time.monotonic() - start)
"""
)
CPU_ROUTE = "cpu-bound route"
MACHINE_LIMIT = "machine limit: work() in K plain processes at once"

TRIVIAL_SCRIPT = """
import orthanc

def Ok(output, uri, **request):
    output.AnswerBuffer('ok', 'text/plain')

def Size(output, uri, **request):
    output.AnswerBuffer(str(len(request['body'])), 'text/plain')

orthanc.RegisterRestCallback('/bench/ok', Ok)
orthanc.RegisterRestCallback('/bench/size', Size)
"""

# The imaging route of the "mixed" scenario (numpy, Pillow, pydicom; these cannot load
# in sub-interpreters): a PNG thumbnail of a stored 512x512 16-bit instance, windowed
# and halved with numpy, encoded with Pillow; about 15-25 ms a call here.
THUMBNAIL_SCRIPT = """
import io
import numpy
import orthanc
import pydicom
from PIL import Image

def Thumbnail(output, uri, **request):
    dataset = pydicom.dcmread(io.BytesIO(orthanc.GetDicomForInstance(request['groups'][0])))
    pixels = dataset.pixel_array.astype(numpy.float32)
    center, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    scaled = numpy.clip((pixels - (center - width / 2)) * (255.0 / width), 0.0, 255.0)
    rows, columns = scaled.shape
    small = scaled.reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3))
    png = io.BytesIO()
    Image.fromarray(small.astype(numpy.uint8), mode='L').save(png, format='PNG', optimize=True)
    output.AnswerBuffer(png.getvalue(), 'image/png')

orthanc.RegisterRestCallback('/bench/thumbnail/(.*)', Thumbnail)
"""

# The existing plugin and ours with 1 interpreter run both routes from one script.
MIXED_SCRIPT = CPU_SCRIPT + THUMBNAIL_SCRIPT
MIXED_CONNECTIONS = 2  # each route's, both at once
MIXED_THUMBNAIL = "mixed: thumbnail route (numpy, Pillow)"
MIXED_CPU = "mixed: cpu-bound route, at the same time"
# Issue #14's goal on 2 cores, each route's req/s over the existing plugin's.
MIXED_GOALS = {MIXED_THUMBNAIL: 0.9, MIXED_CPU: 1.5}

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


# A storage area whose read does pure-Python work: create stores each file with a
# pure-Python checksum of it; read recomputes it over the file and refuses a mismatch
# (READ_PASSES passes over the bytes, about 10 ms for a 66 KB file here), as an
# integrity-checking or decrypting storage would.
READ_PASSES = 3
READ_STORAGE_SCRIPT = f"""
import os
import orthanc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'python-storage')
os.makedirs(ROOT, exist_ok=True)

def checksum(data):
    value = 0
    for _ in range({READ_PASSES}):
        for byte in data:
            value = (value * 31 + byte) % 1000000007
    return value

def Create(uuid, contentType, data):
    path = os.path.join(ROOT, uuid)
    with open(path + '.tmp', 'wb') as f:
        f.write(b'%d\\n' % checksum(data) + data)
    os.rename(path + '.tmp', path)

def Read(uuid, contentType):
    with open(os.path.join(ROOT, uuid), 'rb') as f:
        stored, data = f.read().split(b'\\n', 1)
    if int(stored) != checksum(data):
        raise OSError('checksum mismatch in ' + uuid)
    return data

def Remove(uuid, contentType):
    os.remove(os.path.join(ROOT, uuid))

orthanc.RegisterStorageArea(Create, Read, Remove)
"""
# The instances of the one study that the reads scenario stores (256x256, 66 KB each).
READ_INSTANCES = 16
READ_FILE = "storage reads: /instances/{id}/file"
READ_ARCHIVE = f"storage reads: /studies/{{id}}/archive ({READ_INSTANCES} instances)"


def read_options(cores: int) -> dict[str, Any]:
    """Orthanc options of the reads scenario: no cache in front of the storage area
    (every read reaches Python), and Orthanc 1.13's loader threads (older versions ignore
    these options): StorageLoaderThreadsCount reads files, SequentialDicomReaderThreadsCount
    preloads the instances of an archive; both 2 per core, at least 4 (their default)."""
    threads = max(4, 2 * cores)
    return {
        "MaximumStorageCacheSize": 0,
        "DicomParserCacheSize": 0,
        "StorageLoaderThreadsCount": threads,
        "SequentialDicomReaderThreadsCount": threads,
    }


@dataclass(frozen=True)
class Configuration:
    name: str
    plugin: Path
    interpreters: int | str  # ignored by the existing plugin


@dataclass
class Run:
    """One timed run of one configuration, and what the machine did meanwhile."""

    round: int
    value: float | None  # None when the run failed (see error)
    p50_ms: float | None = None
    p99_ms: float | None = None
    wall_s: float = 0.0
    orthanc_cpu_s: float | None = None  # CPU time of the Orthanc under test
    client_cpu_s: float = 0.0  # wrk, the upload threads, or the standalone Python
    other_cpu_s: float = 0.0  # busy CPU time of everything else on the machine
    load_before: float = 0.0  # 1-minute load average
    load_after: float = 0.0
    settle_s: float = 0.0  # time the server took to go idle after the run (not timed)
    error: str | None = None


@dataclass
class Measurement:
    """Every run of one scenario, load level and configuration."""

    scenario: str
    unit: str  # "req/s", "instances/s" or "ms"
    concurrency: int
    configuration: str
    runs: list[Run] = field(default_factory=list)

    def values(self) -> list[float]:
        return [run.value for run in self.runs if run.value is not None]

    def summary(self) -> dict[str, Any]:
        values = self.values()
        p50s = [run.p50_ms for run in self.runs if run.p50_ms is not None]
        p99s = [run.p99_ms for run in self.runs if run.p99_ms is not None]
        cores = [
            run.orthanc_cpu_s / run.wall_s
            for run in self.runs
            if run.orthanc_cpu_s is not None and run.wall_s > 0
        ]
        return {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "good_runs": len(values),
            "failed_runs": len(self.runs) - len(values),
            "p50_ms": statistics.median(p50s) if p50s else None,
            "p99_ms": statistics.median(p99s) if p99s else None,
            "orthanc_cores": statistics.median(cores) if cores else None,
            "other_cores_max": max(
                (run.other_cpu_s / run.wall_s for run in self.runs if run.wall_s > 0),
                default=None,
            ),
            "load_max": max(
                (max(run.load_before, run.load_after) for run in self.runs), default=0.0
            ),
        }


class Results:
    """The measurements of a whole run, by (scenario, concurrency, configuration)."""

    def __init__(self) -> None:
        self.measurements: dict[tuple[str, int, str], Measurement] = {}
        self.notes: list[str] = []

    def add(self, scenario: str, unit: str, concurrency: int, config: str, run: Run) -> None:
        key = (scenario, concurrency, config)
        if key not in self.measurements:
            self.measurements[key] = Measurement(scenario, unit, concurrency, config)
        self.measurements[key].runs.append(run)

    def note(self, message: str) -> None:
        progress(f"NOTE: {message}")
        self.notes.append(message)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rotated[T](configs: list[T], round_: int) -> list[T]:
    """The configurations in the order of this round: rotated by one each round."""
    shift = round_ % len(configs)
    return configs[shift:] + configs[:shift]


# --- Accounting -------------------------------------------------------------------


def _busy_cpu_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_cpu_s() -> float:
    """CPU time of this process (upload threads) and its waited-for children (wrk)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _process_cpu_s(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def settle(process: psutil.Process | None, limit_s: float = 15.0) -> float:
    """Waits (bounded) until the server stops using CPU: wrk ends with requests still in
    flight, and their tail must not run into the next configuration's measurement.
    Returns the seconds waited."""
    began = time.monotonic()
    last = _process_cpu_s(process)
    while last is not None and time.monotonic() - began < limit_s:
        time.sleep(0.1)
        now = _process_cpu_s(process)
        if now is None or now - last < 0.005:
            break
        last = now
    return time.monotonic() - began


def timed_run(
    round_: int, pid: int | None, action: Callable[[], tuple[float, float | None, float | None]]
) -> Run:
    """Runs `action` (which returns value, p50 ms, p99 ms) and accounts for the CPU
    time spent meanwhile; a failure is recorded in the run, not raised."""
    process = psutil.Process(pid) if pid is not None else None
    load_before = os.getloadavg()[0]
    busy, own, orthanc = _busy_cpu_s(), _own_cpu_s(), _process_cpu_s(process)
    began = time.perf_counter()
    value: float | None = None
    p50 = p99 = None
    error = None
    try:
        value, p50, p99 = action()
    except Exception as failure:  # noqa: BLE001 - recorded, and the run goes on
        error = f"{type(failure).__name__}: {failure}"[:2000]
        progress(f"  run failed: {error.splitlines()[0]}")
    wall = time.perf_counter() - began
    orthanc_after = _process_cpu_s(process)
    orthanc_cpu = (
        orthanc_after - orthanc if orthanc is not None and orthanc_after is not None else None
    )
    client_cpu = _own_cpu_s() - own
    other = _busy_cpu_s() - busy - client_cpu - (orthanc_cpu or 0.0)
    return Run(
        round=round_,
        value=value,
        p50_ms=p50,
        p99_ms=p99,
        wall_s=round(wall, 3),
        orthanc_cpu_s=None if orthanc_cpu is None else round(orthanc_cpu, 3),
        client_cpu_s=round(client_cpu, 3),
        other_cpu_s=round(max(0.0, other), 3),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        settle_s=round(settle(process), 2),
        error=error,
    )


def doublings(limit: int) -> list[int]:
    """1, 2, 4, ... up to `limit`, and `limit` itself (6 cores: 1, 2, 4, 6)."""
    levels = [1]
    while levels[-1] * 2 <= limit:
        levels.append(levels[-1] * 2)
    if levels[-1] != limit and limit > 1:
        levels.append(limit)
    return levels


# --- Servers ----------------------------------------------------------------------


def configurations(names: list[str]) -> list[Configuration]:
    """'existing', or 'ours-N' / 'ours-auto' (this plugin with N interpreters)."""
    chosen = []
    for name in names:
        if name == "existing":
            chosen.append(Configuration(name, EXISTING_PLUGIN, 1))
        elif match := re.fullmatch(r"ours-(\d+|auto)", name):
            count = match.group(1)
            chosen.append(
                Configuration(name, plugin_path(), count if count == "auto" else int(count))
            )
        else:
            raise SystemExit(f"unknown configuration {name!r} (existing, ours-N, ours-auto)")
    return chosen


def start(
    config: Configuration, script: str, folder: Path, extra: dict[str, Any] | None = None
) -> OrthancProcess:
    server = make_orthanc(
        folder,
        script,
        plugin=config.plugin,
        interpreters=config.interpreters,
        extra=extra,
        verbose=False,
    )
    server.start()
    return server


def stop(server: OrthancProcess, name: str, results: Results) -> float:
    """Stops a server we started (by its PID); a non-zero exit is recorded, not raised
    (the run goes on). Returns the seconds it took."""
    began = time.perf_counter()
    try:
        code = server.stop()
    except RuntimeError as failure:
        results.note(f"{name} (pid {server.pid}) in {server.folder.name}: {failure}")
        return time.perf_counter() - began
    took = time.perf_counter() - began
    if code != 0:
        tail = "\n".join(server.log().splitlines()[-5:])
        results.note(
            f"{name} (pid {server.pid}) in {server.folder.name} exited with {code} at stop; "
            f"last lines of its log:\n{tail}"
        )
    return took


@contextmanager
def servers_for(
    configs: list[Configuration],
    script: str,
    folder: Path,
    results: Results,
    extra: dict[str, Any] | None = None,
) -> Iterator[dict[str, OrthancProcess]]:
    """One running server per configuration (`extra`: more configuration options), all
    stopped on the way out."""
    running: dict[str, OrthancProcess] = {}
    try:
        for config in configs:
            running[config.name] = start(config, script, folder / config.name, extra)
        yield running
    finally:
        # In parallel: each one takes seconds to stop.
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(lambda item: stop(item[1], item[0], results), running.items()))


# --- Load -------------------------------------------------------------------------


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def wrk_threads(cores: int) -> int:
    """wrk's threads on a machine of `cores` usable cores: one per 4 cores, at least one
    (one thread drives dozens of connections; on 2 cores it must stay light)."""
    return max(1, cores // 4)


# Set by main() from --wrk-threads (default: wrk_threads() of the usable cores).
WRK_THREADS = 1


def run_wrk(
    url: str, connections: int, seconds: float, script: Path | None = None
) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms of one wrk run (loopback only, bounded by -d), with
    WRK_THREADS threads (at most one per connection) and an optional Lua `script`."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only ever sent to 127.0.0.1")
    threads = max(1, min(WRK_THREADS, connections))
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
        + ["--timeout", "30s"]
        + (["-s", str(script)] if script is not None else [])
        + [url],
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


def run_wrk_pair(
    url: str,
    paths: tuple[str, str],
    connections: int,
    seconds: float,
    answers: list[tuple[float, float, float]],
) -> tuple[float, float, float]:
    """Two wrk at once, one per path, `connections` each: appends both results to
    `answers` (in the order of `paths`) and returns the first."""
    with ThreadPoolExecutor(2) as pool:
        loads = [pool.submit(run_wrk, url + path, connections, seconds) for path in paths]
        answers += [load.result() for load in loads]
    return answers[0]


def get(url: str, timeout: float = 120.0) -> bytes:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("requests only ever go to 127.0.0.1")
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return bytes(answer.read())


def post(url: str, data: bytes, deadline: float) -> float:
    """Seconds one POST took; refused once `deadline` (monotonic) has passed."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("requests only ever go to 127.0.0.1")
    if time.monotonic() > deadline:
        raise TimeoutError("the batch ran past its time limit")
    request = urllib.request.Request(url, data=data, method="POST")
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"POST answered {answer.status}")
    return time.perf_counter() - began


# --- Scenarios --------------------------------------------------------------------


def bench_loop(
    configs: list[Configuration],
    cpythons: dict[str, str],
    rounds: int,
    work: Path,
    results: Results,
) -> None:
    """The CPU route's loop, timed inside each plugin (/bench/loop) and standalone on
    each CPython involved; one value is the fastest of LOOP_CALLS calls, in ms."""

    def standalone(executable: str) -> tuple[float, None, None]:
        out = subprocess.run(
            [executable, "-c", STANDALONE_LOOP],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return 1000 * min(json.loads(out)), None, None

    def in_plugin(url: str) -> tuple[float, None, None]:
        return 1000 * min(json.loads(get(url + "/bench/loop"))), None, None

    with servers_for(configs, CPU_SCRIPT, work / "loop", results) as servers:
        for server in servers.values():  # warm-up
            get(server.url + "/bench/loop")
        for executable in cpythons.values():
            standalone(executable)
        for round_ in range(rounds):
            progress(f"loop: round {round_ + 1}/{rounds}")
            for label, executable in cpythons.items():
                run = timed_run(round_, None, partial(standalone, executable))
                results.add("pure-Python loop, standalone", "ms", 1, label, run)
            for config in rotated(configs, round_):
                server = servers[config.name]
                run = timed_run(round_, server.pid, partial(in_plugin, server.url))
                results.add("pure-Python loop, in the plugin", "ms", 1, config.name, run)


def plain_processes(executable: str, count: int, seconds: float) -> tuple[float, None, None]:
    """work() calls per second of `count` plain `executable` processes running it at
    once for `seconds` (the sum of each process's calls / its seconds)."""
    start = time.monotonic() + 0.5 + 0.05 * count  # after every process has started
    stop = start + seconds
    processes = [
        subprocess.Popen(
            [executable, "-c", STANDALONE_RATE, repr(start), repr(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    rate = 0.0
    try:
        for process in processes:
            out, _ = process.communicate(timeout=seconds + 60)
            if process.returncode != 0:
                raise RuntimeError(f"the loop process exited with {process.returncode}")
            calls, took = out.split()
            rate += int(calls) / float(took)
    finally:
        for process in processes:  # only on a failure: ours, by PID
            if process.poll() is None:
                process.kill()
                process.wait()
    return rate, None, None


def bench_http(
    scenarios: list[tuple[str, str, list[int]]],
    script: str,
    configs: list[Configuration],
    seconds: float,
    rounds: int,
    work: Path,
    results: Results,
    limit: tuple[str, list[int]] | None = None,
) -> None:
    """wrk against each (scenario, path, connection counts), configurations interleaved.
    `limit` (a CPython executable and process counts K): in each round, after the
    configurations, the machine's own limit (work() in K plain processes at once)."""
    with servers_for(
        configs, script, work / scenarios[0][1].strip("/").replace("/", "-"), results
    ) as servers:
        for config in configs:  # warm-up, every path of every server
            for _, path, _ in scenarios:
                run_wrk(servers[config.name].url + path, 2, 1.0)
        for round_ in range(rounds):
            for scenario, path, concurrencies in scenarios:
                for connections in concurrencies:
                    progress(
                        f"{scenario}: round {round_ + 1}/{rounds}, {connections} connection(s)"
                    )
                    for config in rotated(configs, round_):
                        server = servers[config.name]
                        load = partial(run_wrk, server.url + path, connections, seconds)
                        run = timed_run(round_, server.pid, load)
                        results.add(scenario, "req/s", connections, config.name, run)
            if limit is not None:
                executable, counts = limit
                for count in counts:
                    progress(f"{MACHINE_LIMIT}: round {round_ + 1}/{rounds}, K = {count}")
                    load = partial(plain_processes, executable, count, seconds)
                    run = timed_run(round_, None, load)
                    results.add(MACHINE_LIMIT, "calls/s", count, "plain CPython", run)


_NOISE = bytes(i & 3 for i in range(256))


def storage_files(count: int, seed: int) -> list[bytes]:
    """`count` new DICOM files (new UIDs) of 256x256 compressible noise (4 grey levels,
    so zlib -9 has work to do)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from dicom_files import make_dicom

    rng = random.Random(seed)
    files = []
    for i in range(count):
        data = make_dicom(f"B{seed}-{i}", rows=256, columns=256)
        files.append(data[:-65536] + rng.randbytes(65536).translate(_NOISE))
    return files


def upload(
    url: str, files: list[bytes], clients: int, time_limit: float
) -> tuple[float, float, float]:
    """instances/s, p50 ms, p99 ms of `clients` threads uploading `files`."""
    deadline = time.monotonic() + time_limit
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(lambda data: post(url, data, deadline), files))
    elapsed = time.perf_counter() - began
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(files) / elapsed, 1000 * latencies[len(latencies) // 2], 1000 * p99


def bench_storage(
    scenario: str,
    script: str,
    configs: list[Configuration],
    clients: list[int],
    files: int,
    rounds: int,
    work: Path,
    results: Results,
) -> None:
    """Instances/s while `c` clients upload new small DICOM files to a Python storage area."""
    seeds = iter(range(1_000_000))
    folder = work / re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
    with servers_for(configs, script, folder, results) as servers:
        for config in configs:  # warm-up
            upload(servers[config.name].url + "/instances", storage_files(4, next(seeds)), 2, 120)
        for round_ in range(rounds):
            for count in clients:
                progress(f"{scenario}: round {round_ + 1}/{rounds}, {count} client(s)")
                for config in rotated(configs, round_):
                    server = servers[config.name]
                    batch = storage_files(files, next(seeds))  # before the clock starts
                    load = partial(upload, server.url + "/instances", batch, count, 300)
                    run = timed_run(round_, server.pid, load)
                    results.add(scenario, "instances/s", count, config.name, run)


def study_files(count: int, seed: int) -> list[bytes]:
    """`count` DICOM files of one new study of one patient, 256x256 noise."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from dicom_files import make_dicom
    from pydicom.uid import generate_uid

    rng = random.Random(seed)
    study = generate_uid()
    files = []
    for _ in range(count):
        data = make_dicom(f"READS-{seed}", study_uid=study, rows=256, columns=256)
        files.append(data[:-65536] + rng.randbytes(65536))
    return files


def store(url: str, data: bytes) -> dict[str, Any]:
    """Orthanc's answer to the upload of one file (loopback only)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("requests only ever go to 127.0.0.1")
    request = urllib.request.Request(url + "/instances", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        stored: dict[str, Any] = json.loads(answer.read())
    return stored


def rotating_paths(paths: list[str], script: Path) -> Path:
    """A wrk Lua script that requests `paths` in turn (each wrk thread from the first)."""
    listed = ", ".join(json.dumps(path) for path in paths)
    script.write_text(
        f"local paths = {{{listed}}}\n"
        "local next_path = 0\n"
        "request = function()\n"
        "  next_path = next_path % #paths + 1\n"
        "  return wrk.format(nil, paths[next_path])\n"
        "end\n"
    )
    return script


def download(url: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms of `clients` threads each GETting `url` again and again
    for `seconds` (and at most 10 000 times): for routes that close the connection after
    each answer (the ZIP archive), which wrk counts as errors. Each answer must be a ZIP."""
    deadline = time.monotonic() + seconds

    def client(_: int) -> list[float]:
        latencies: list[float] = []
        while len(latencies) < 10_000 and time.monotonic() < deadline:
            began = time.perf_counter()
            if not get(url).startswith(b"PK"):
                raise RuntimeError(f"{url} answered something else than a ZIP")
            latencies.append(time.perf_counter() - began)
        return latencies

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(x for done in pool.map(client, range(clients)) for x in done)
    elapsed = time.perf_counter() - began
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, 1000 * latencies[len(latencies) // 2], 1000 * p99


def bench_reads(
    configs: list[Configuration],
    levels: list[int],
    cores: int,
    seconds: float,
    rounds: int,
    work: Path,
    results: Results,
) -> None:
    """wrk reading the instances of one stored study (their files in turn) and the
    study's ZIP archive, through a storage area whose read is Python-bound
    (READ_STORAGE_SCRIPT), with no storage cache and Orthanc 1.13's loader threads set
    (read_options); configurations interleaved."""
    files = study_files(READ_INSTANCES, 22)
    options = read_options(cores)
    with servers_for(configs, READ_STORAGE_SCRIPT, work / "reads", results, options) as servers:
        loads: dict[str, dict[str, Callable[[int, float], tuple[float, float, float]]]] = {}
        for config in configs:
            server = servers[config.name]
            answers = [store(server.url, data) for data in files]
            instances = [answer["ID"] for answer in answers]
            study = answers[0]["ParentStudy"]
            # What the clients read is what was stored: the read path is the one measured.
            if get(f"{server.url}/instances/{instances[-1]}/file") != files[-1]:
                raise RuntimeError(f"{config.name}: a file read back differs from the upload")
            paths = [f"/instances/{instance}/file" for instance in instances]
            lua = rotating_paths(paths, server.folder / "instances.lua")
            archive = f"{server.url}/studies/{study}/archive"
            loads[config.name] = {
                READ_FILE: partial(run_wrk, server.url + paths[0], script=lua),
                # A ZIP answer closes its connection: Python clients, not wrk.
                READ_ARCHIVE: partial(download, archive),
            }
            for load in loads[config.name].values():  # warm-up
                load(2, 1.0)
        for round_ in range(rounds):
            for scenario in (READ_FILE, READ_ARCHIVE):
                for connections in levels:
                    progress(
                        f"{scenario}: round {round_ + 1}/{rounds}, {connections} connection(s)"
                    )
                    for config in rotated(configs, round_):
                        server = servers[config.name]
                        load = partial(loads[config.name][scenario], connections, seconds)
                        run = timed_run(round_, server.pid, load)
                        results.add(scenario, "req/s", connections, config.name, run)
        results.note(
            f"reads: {READ_INSTANCES} instances of 66 KB in one study; each read checks a "
            f"pure-Python checksum ({READ_PASSES} passes over the file); options "
            + ", ".join(f"{k} {v}" for k, v in options.items())
        )


def thumbnail_source() -> bytes:
    """A 512x512 CT-like DICOM file of 12-bit pixels (a ramp plus noise), with a window."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    size = 512
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BENCH-MIXED"
    ds.Modality = "CT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 1024, 1600
    rng = random.Random(14)
    ds.PixelData = array.array(
        "H", ((4 * x + 3 * y) % 2048 + rng.randrange(256) for y in range(size) for x in range(size))
    ).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass(frozen=True)
class MixedSetup:
    """How one configuration of the "mixed" scenario is started."""

    config: Configuration
    extra: dict[str, Any]  # configuration options (PythonVirtualEnv, PythonMainScript)
    environment: dict[str, str]  # of the Orthanc process (PYTHONPATH)
    main_script: str | None  # text of PythonMainScript, None for none


def mixed_setups(configs: list[Configuration], work: Path, results: Results) -> list[MixedSetup]:
    """existing and ours-1 run both routes from one script in one interpreter; each ours-N
    (N >= 2) becomes ours-N+main: the CPU route in N sub-interpreters (PythonScript), the
    thumbnail route in the main interpreter (PythonMainScript). The imaging packages come
    from .venv-imaging (PythonVirtualEnv) and, for the existing plugin, from PYTHONPATH:
    the same venv when both plugins run the same CPython (forky), else a venv of the
    existing plugin's CPython (.venv-imaging-pythonX.Y); without one, existing is left out
    with a note (the table then has no ratios for this scenario)."""
    ours_venv = venvs.imaging_venv(CHECKOUT / ".venv-imaging")
    setups = []
    for config in configs:
        if config.name == "existing":
            existing_python = existing_cpython()
            try:
                if (
                    Path(existing_python).name
                    == f"python{sys.version_info[0]}.{sys.version_info[1]}"
                ):
                    venv = ours_venv
                else:
                    venv = venvs.imaging_venv(
                        CHECKOUT / f".venv-imaging-{Path(existing_python).name}", existing_python
                    )
            except (OSError, subprocess.SubprocessError) as failure:
                results.note(
                    f"mixed: existing: n/a: no numpy, Pillow and pydicom for {existing_python} "
                    f"({type(failure).__name__}: {failure})"
                )
                continue
            path = str(venvs.site_packages(venv))
            setups.append(MixedSetup(config, {}, {"PYTHONPATH": path}, None))
        elif config.interpreters == 1:
            setups.append(MixedSetup(config, {"PythonVirtualEnv": str(ours_venv)}, {}, None))
        else:
            main = Configuration(f"{config.name}+main", config.plugin, config.interpreters)
            extra = {
                "PythonVirtualEnv": str(ours_venv),
                "PythonMainScript": str(work / main.name / "main_script.py"),
            }
            setups.append(MixedSetup(main, extra, {}, THUMBNAIL_SCRIPT))
    return setups


def start_mixed(setup: MixedSetup, folder: Path, dicom: bytes) -> tuple[OrthancProcess, str]:
    """A started server of `setup` holding `dicom`, and the path of its thumbnail."""
    folder.mkdir(parents=True, exist_ok=True)
    if setup.main_script is not None:
        (folder / "main_script.py").write_text(setup.main_script)
        script = CPU_SCRIPT
    else:
        script = MIXED_SCRIPT
    server = make_orthanc(
        folder,
        script,
        plugin=setup.config.plugin,
        interpreters=setup.config.interpreters,
        extra=setup.extra,
        verbose=False,
        environment=setup.environment,
    )
    server.start()
    request = urllib.request.Request(server.url + "/instances", data=dicom, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        instance = json.loads(answer.read())["ID"]
    return server, f"/bench/thumbnail/{instance}"


def bench_mixed(
    configs: list[Configuration],
    connections: int,
    seconds: float,
    rounds: int,
    work: Path,
    results: Results,
) -> None:
    """Two wrk at once against each server, `connections` each: the thumbnail route
    (numpy, Pillow) and the CPU route (pure Python); each route's requests/s."""
    setups = mixed_setups(configs, work / "mixed", results)
    dicom = thumbnail_source()
    servers: dict[str, tuple[OrthancProcess, str]] = {}

    try:
        for setup in setups:
            folder = work / "mixed" / setup.config.name
            servers[setup.config.name] = start_mixed(setup, folder, dicom)
        for server, thumbnail in servers.values():  # warm-up, both routes at once
            get(server.url + thumbnail)
            run_wrk_pair(server.url, (thumbnail, "/bench/cpu"), connections, 1.0, [])
        for round_ in range(rounds):
            progress(f"mixed: round {round_ + 1}/{rounds}, {connections}+{connections} connections")
            for setup in rotated(setups, round_):
                server, thumbnail = servers[setup.config.name]
                paths = (thumbnail, "/bench/cpu")
                answers: list[tuple[float, float, float]] = []
                load = partial(run_wrk_pair, server.url, paths, connections, seconds, answers)
                run = timed_run(round_, server.pid, load)
                results.add(MIXED_THUMBNAIL, "req/s", connections, setup.config.name, run)
                value, p50, p99 = answers[1] if answers else (None, None, None)
                cpu = replace(run, value=value, p50_ms=p50, p99_ms=p99)
                results.add(MIXED_CPU, "req/s", connections, setup.config.name, cpu)
        for setup in setups:  # which interpreter served what, from the plugin's counters
            if setup.config.plugin != EXISTING_PLUGIN:
                server = servers[setup.config.name][0]
                listed = json.loads(get(server.url + "/python/interpreters"))["Interpreters"]
                served = ", ".join(
                    f"{i['Index']}{' (main)' if i['Main'] else ''}: {i['Calls']} calls, "
                    f"{i['BusySeconds']:.1f} s busy"
                    for i in listed
                )
                results.note(f"mixed: {setup.config.name}'s interpreters: {served}")
    finally:
        with ThreadPoolExecutor(max(1, len(servers))) as pool:
            list(pool.map(lambda item: stop(item[1][0], item[0], results), servers.items()))


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


def bench_memory(
    configs: list[Configuration],
    counts: list[int],
    requests_wanted: int,
    posts: int,
    rounds: int,
    work: Path,
    results: Results,
) -> None:
    """Idle RSS, start and stop times (the existing plugin, and this one with 1 to 8
    interpreters, an empty script); RSS growth under trivial requests and 256 KiB POSTs."""
    idle = [c for c in configs if c.name == "existing"]
    idle += [Configuration(f"ours-{n}", plugin_path(), n) for n in counts]
    empty = "import orthanc\n"
    for round_ in range(rounds):
        progress(f"memory: idle RSS, start and stop times, round {round_ + 1}/{rounds}")
        for config in rotated(idle, round_):
            server = make_orthanc(
                work / f"idle-{config.name}-{round_}",
                empty,
                plugin=config.plugin,
                interpreters=config.interpreters,
                verbose=False,
            )
            began = time.perf_counter()
            server.start()
            started = time.perf_counter() - began
            time.sleep(1.0)
            rss = rss_mib(server.pid)
            stopped = stop(server, config.name, results)
            results.add("idle RSS (MiB)", "MiB", 0, config.name, Run(round_, rss))
            results.add("start time (s)", "s", 0, config.name, Run(round_, started))
            results.add("stop time (s)", "s", 0, config.name, Run(round_, stopped))

    body = bytes(256 * 1024)
    for round_ in range(rounds):
        progress(f"memory: RSS growth under load, round {round_ + 1}/{rounds}")
        for config in rotated(configs, round_):
            server = start(config, TRIVIAL_SCRIPT, work / f"growth-{config.name}-{round_}")
            try:
                url = server.url + "/bench/ok"
                wrk_requests(url, requests_wanted // 5, time_limit=60)  # warm-up
                before = rss_mib(server.pid)
                done = wrk_requests(url, requests_wanted, time_limit=120)
                after_requests = rss_mib(server.pid)
                deadline = time.monotonic() + 120
                for _ in range(posts):
                    post(server.url + "/bench/size", body, deadline)
                after_posts = rss_mib(server.pid)
            finally:
                stop(server, config.name, results)
            results.add(
                f"RSS growth over {requests_wanted} trivial requests (MiB)",
                "MiB",
                0,
                config.name,
                Run(
                    round_,
                    after_requests - before,
                    error=None if done >= requests_wanted else f"only {done} requests",
                ),
            )
            results.add(
                f"RSS growth over {posts} POSTs of 256 KiB (MiB)",
                "MiB",
                0,
                config.name,
                Run(round_, after_posts - after_requests),
            )


# --- Environment ------------------------------------------------------------------


# What the build says of itself. CONFIG_ARGS tells pyenv's build options (no
# --enable-optimizations: no PGO), not Debian's (its PGO is in debian/rules).
PYTHON_INFO = """
import json, os, platform, sys, sysconfig
print(json.dumps({
    'version': sys.version.split()[0],
    'executable': os.path.realpath(sys.executable),
    'compiler': platform.python_compiler(),
    'config_args': sysconfig.get_config_var('CONFIG_ARGS'),
}))
"""


def linked_libpython(binary: str) -> str | None:
    """The libpython `binary` loads, per ldd; None when it has it built in."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"(libpython[\d.]+\S*) => (\S+)", out)
    return match.group(2) if match else None


def python_info(executable: str) -> dict[str, Any]:
    out = subprocess.run(
        [executable, "-c", PYTHON_INFO], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    info: dict[str, Any] = json.loads(out)
    info["libpython"] = linked_libpython(info["executable"]) or "built into the executable"
    return info


def os_release() -> dict[str, str]:
    fields = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip('"')
    return fields


def environment_name(release: dict[str, str]) -> str:
    codename = release.get("VERSION_CODENAME", "")
    if release.get("ID") == "debian" and release.get("VERSION_ID"):
        return f"debian{release['VERSION_ID']}"
    return codename or release.get("ID", "unknown")


def existing_cpython() -> str:
    """The standalone interpreter of the libpython the existing plugin links to."""
    library = linked_libpython(str(EXISTING_PLUGIN))
    match = re.search(r"libpython(\d+\.\d+)", library or "")
    if not match:
        raise SystemExit(f"cannot tell which libpython {EXISTING_PLUGIN} uses")
    return f"/usr/bin/python{match.group(1)}"


def environment(quick: bool) -> dict[str, Any]:
    release = os_release()
    orthanc = subprocess.run(
        [find_orthanc(), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.splitlines()[0]
    ours = str(plugin_path())
    return {
        "name": os.environ.get("OPM_ENVIRONMENT") or environment_name(release),
        "quick": quick,
        "os": release.get("PRETTY_NAME", "?"),
        "codename": release.get("VERSION_CODENAME", "?"),
        "orthanc": orthanc,
        "existing_plugin": {
            "path": str(EXISTING_PLUGIN),
            "libpython": linked_libpython(str(EXISTING_PLUGIN)),
            "package_version": dpkg_version("orthanc-python"),
            "python": python_info(existing_cpython()),
        },
        "our_plugin": {
            "path": ours,
            "libpython": linked_libpython(ours),
            "python": python_info(sys.executable),
        },
        "cpus": len(os.sched_getaffinity(0)),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def dpkg_version(package: str) -> str | None:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip() or None


# --- Report -----------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(m: Measurement | None) -> str:
    if m is None:
        return ""
    s = m.summary()
    if s["median"] is None:
        return f"failed ({s['failed_runs']})"
    text = _number(s["median"])
    if s["good_runs"] > 1:
        text += f" ({_number(s['min'])}-{_number(s['max'])})"
    if s["failed_runs"]:
        text += f", {s['failed_runs']} failed"
    if s["other_cores_max"] is not None and s["other_cores_max"] > NOISY_CORES:
        text += " †"
    return text


def paired_ratios(ours: Measurement, base: Measurement) -> list[float]:
    """ours / base for each round both ran in (interleaved runs of the same round)."""
    base_by_round = {run.round: run.value for run in base.runs if run.value}
    return [
        run.value / base_by_round[run.round]
        for run in ours.runs
        if run.value is not None and base_by_round.get(run.round)
    ]


def _ratio_cell(ours: Measurement | None, base: Measurement | None) -> str:
    if ours is None or base is None:
        return ""
    ratios = paired_ratios(ours, base)
    if not ratios:
        return "-"
    text = f"{statistics.median(ratios):.2f}x"
    if len(ratios) > 1:
        text += f" ({min(ratios):.2f}-{max(ratios):.2f})"
    return text


def ladder(results: Results, configs: list[str]) -> dict[str, Any] | None:
    """The CPU route's scaling ladder: for each configuration and connection level, the
    median req/s and the median speed-up over the baseline (paired by round); the
    machine's limit (work() in K plain processes) and its speed-up, K = cores over
    K = 1 (paired by round). None when the CPU route did not run."""
    measured = [m for m in results.measurements.values() if m.scenario == CPU_ROUTE]
    if not measured:
        return None
    levels = sorted({m.concurrency for m in measured})
    rows = []
    for config in (c for c in configs if any(m.configuration == c for m in measured)):
        req_s: dict[int, float | None] = {}
        speedup: dict[int, float | None] = {}
        for level in levels:
            ours = results.measurements.get((CPU_ROUTE, level, config))
            base = results.measurements.get((CPU_ROUTE, level, configs[0]))
            req_s[level] = ours.summary()["median"] if ours else None
            ratios = paired_ratios(ours, base) if ours and base else []
            speedup[level] = statistics.median(ratios) if ratios else None
        rows.append({"configuration": config, "req_s": req_s, "speedup": speedup})
    limit = {
        m.concurrency: m.summary()["median"]
        for m in results.measurements.values()
        if m.scenario == MACHINE_LIMIT
    }
    limit_speedup = None
    if len(limit) > 1:
        one = results.measurements[(MACHINE_LIMIT, 1, "plain CPython")]
        top = results.measurements[(MACHINE_LIMIT, max(limit), "plain CPython")]
        ratios = paired_ratios(top, one)
        limit_speedup = statistics.median(ratios) if ratios else None
    return {
        "connections": levels,
        "rows": rows,
        "machine_limit": limit,
        "machine_limit_speedup": limit_speedup,
    }


def _ladder_table(summary: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    if summary is None:
        return []
    levels = summary["connections"]
    python = meta["machine_limit_python"]
    limit = summary["machine_limit"]
    lines = [
        "",
        "The CPU route's scaling ladder: req/s at each connection level (wrk, "
        f"{meta['wrk_threads']} thread(s)), and the speed-up over the existing plugin "
        "(paired by round, median). Machine limit: `work()` in K plain "
        f"CPython {python['version']} processes at once ({python['executable']}), calls/s, "
        "in the column of K connections; its speed-up is K processes over 1, what the "
        "machine can give.",
        "",
        "| configuration | " + " | ".join(f"{c} conn." for c in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for row in summary["rows"]:
        cells = []
        for level in levels:
            value, ratio = row["req_s"].get(level), row["speedup"].get(level)
            text = _number(value)
            if ratio is not None and row is not summary["rows"][0]:
                text += f" ({ratio:.2f}x)"
            cells.append(text)
        lines.append(f"| {row['configuration']} | " + " | ".join(cells) + " |")
    if limit:
        cells = []
        for level in levels:
            if level not in limit:
                cells.append("")
            elif level == 1 or summary["machine_limit_speedup"] is None:
                cells.append(f"K={level}: {_number(limit[level])}")
            else:
                cells.append(
                    f"K={level}: {_number(limit[level])} ({summary['machine_limit_speedup']:.2f}x)"
                )
        lines.append("| machine limit (calls/s) | " + " | ".join(cells) + " |")
    return lines


def _mixed_goal(results: Results, configs: list[str]) -> list[str]:
    """The "mixed" rows of each ours-N+main against MIXED_GOALS (median of the paired
    ratios)."""
    lines = []
    for config in (c for c in configs[1:] if c.endswith("+main")):
        parts = []
        for row, goal in MIXED_GOALS.items():
            ours = results.measurements.get((row, MIXED_CONNECTIONS, config))
            base = results.measurements.get((row, MIXED_CONNECTIONS, configs[0]))
            ratios = paired_ratios(ours, base) if ours and base else []
            if ratios:
                ratio = statistics.median(ratios)
                verdict = "met" if ratio >= goal else "NOT met"
                parts.append(f"{row.split(': ')[1]} {ratio:.2f}x (goal >= {goal}x: {verdict})")
        if parts:
            lines.append(f"- {config}: " + "; ".join(parts))
    if not lines:
        return []
    return ["", "Mixed scenario against its goal (issue #14, on 2 cores):", "", *lines]


def markdown(
    results: Results, env: dict[str, Any], configs: list[str], meta: dict[str, Any]
) -> str:
    lines = []
    if env["quick"]:
        lines += [
            "> **QUICK RUN (--quick): 1 repetition, short runs. For development only,",
            "> not for reporting.**",
            "",
        ]
    ours_py = env["our_plugin"]["python"]
    existing_py = env["existing_plugin"]["python"]
    lines += [
        f"Environment **{env['name']}**: {env['os']}, {env['orthanc']}, {env['cpus']} CPUs "
        f"({env['processor']}), {env['date']}.",
        f"Existing plugin: {env['existing_plugin']['package_version']} on CPython "
        f"{existing_py['version']} ({env['existing_plugin']['libpython']}). "
        f"This plugin: CPython {ours_py['version']} ({env['our_plugin']['libpython']}).",
        f"{meta['repetitions']} repetition(s), configurations interleaved in each round; "
        f"wrk runs of {meta['seconds']} s, storage batches of {meta['files']} files. "
        "Cells: median (min-max) over the repetitions. Ratios: this plugin / existing, "
        "paired by round, median (min-max); above 1 is better for req/s and "
        "instances/s, worse for ms, MiB and s. †: during at least one run of that cell, "
        f"other processes used more than {NOISY_CORES} of a core on average (noisy).",
        "",
    ]
    # A scenario may add configurations of its own (ours-2+main of "mixed"); a column
    # that no scenario measured is left out (ours-2 when only "mixed" ran), the baseline
    # never.
    measured = [
        m.configuration
        for m in results.measurements.values()
        if m.scenario not in ("pure-Python loop, standalone", MACHINE_LIMIT)
    ]
    configs = [c for c in dict.fromkeys([*configs, *measured]) if c == configs[0] or c in measured]
    base_name = configs[0]
    others = configs[1:]
    header = ["scenario", "clients", "unit", *configs, *[f"{o}/{base_name}" for o in others]]
    lines += ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    rows = dict.fromkeys((m.scenario, m.concurrency, m.unit) for m in results.measurements.values())
    for scenario, concurrency, unit in rows:
        if scenario in ("pure-Python loop, standalone", MACHINE_LIMIT):
            continue  # tables of their own below: their columns are not configurations
        by_config = {c: results.measurements.get((scenario, concurrency, c)) for c in configs}
        cells = [scenario, str(concurrency) if concurrency else "", unit]
        cells += [_cell(by_config[c]) for c in configs]
        cells += [_ratio_cell(by_config[o], by_config[base_name]) for o in others]
        lines.append("| " + " | ".join(cells) + " |")

    lines += _ladder_table(ladder(results, configs), meta)
    lines += _mixed_goal(results, configs)
    standalone = [
        m for m in results.measurements.values() if m.scenario == "pure-Python loop, standalone"
    ]
    if standalone:
        lines += [
            "",
            f"The CPU route's loop ({LOOP_FUNCTION.count(chr(10)) - 1} lines, `work()` in "
            f"perf/bench.py), fastest of {LOOP_CALLS} calls, ms, timed standalone on each "
            "CPython (the executable; Debian's is statically linked, the plugins load "
            "the shared libpython: compare with the in-plugin row above):",
            "",
            "| CPython | executable | libpython | ms | vs the first |",
            "|---|---|---|---:|---:|",
        ]
        for m in standalone:
            info = meta["cpythons"][m.configuration]
            lines.append(
                f"| {m.configuration} | {info['executable']} | {info['libpython']} | {_cell(m)} | "
                f"{_ratio_cell(m, standalone[0]) if m is not standalone[0] else ''} |"
            )

    lines += [
        "",
        "Noise during the runs: the most CPU used by other processes during one run of a "
        "row (cores, on average over the run), the highest 1-minute load average seen, "
        "and the CPU cores the Orthanc under test used (median):",
        "",
        "| scenario | clients | configuration | p50 ms | p99 ms | Orthanc cores | other cores "
        "| load max |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for m in results.measurements.values():
        if m.unit not in ("req/s", "instances/s", "ms", "calls/s"):
            continue
        s = m.summary()
        lines.append(
            f"| {m.scenario} | {m.concurrency} | {m.configuration} | {_number(s['p50_ms'])} | "
            f"{_number(s['p99_ms'])} | {_number(s['orthanc_cores'])} | "
            f"{_number(s['other_cores_max'])} | {s['load_max']:.2f} |"
        )
    if results.notes:
        lines += ["", "Notes:", ""] + [f"- {note}".replace("\n", "\n  ") for note in results.notes]
    return "\n".join(lines) + "\n"


def plot(folder: Path) -> None:
    plotter = os.environ.get("OPM_PLOT_PYTHON")
    if not plotter:
        return
    # matplotlib brings numpy and Pillow, which must stay out of the plugin's
    # environment (they cannot load in sub-interpreters): plot from another one.
    done = subprocess.run(
        [plotter, str(Path(__file__).with_name("plot.py")), str(folder / "results.json")],
        timeout=300,
    )
    if done.returncode != 0:
        progress(f"plotting failed ({done.returncode}); the results are written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 repetition, short runs: not for reporting"
    )
    cores = len(os.sched_getaffinity(0))
    parser.add_argument(
        "--interpreters",
        default=",".join(map(str, doublings(cores))),
        help="the interpreter counts N of this plugin, each run as ours-N next to the "
        f"existing plugin (default 1, 2, 4, ... up to the usable cores: {cores} here)",
    )
    parser.add_argument(
        "--configurations",
        help="instead of --interpreters: existing first, then ours-N or ours-auto",
    )
    parser.add_argument(
        "--connections",
        help="the connection levels of the CPU route and of the storage reads (default 1, 2, "
        f"4, ... up to twice the usable cores: {2 * cores} here)",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=wrk_threads(cores),
        help=f"wrk's threads (default one per 4 cores, at least 1: {wrk_threads(cores)} here)",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--repetitions", type=int, help="rounds (default 3; 1 with --quick)")
    args = parser.parse_args()
    global WRK_THREADS
    WRK_THREADS = max(1, args.wrk_threads)
    levels = (
        [int(c) for c in args.connections.split(",")] if args.connections else doublings(2 * cores)
    )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    if not EXISTING_PLUGIN.exists():
        raise SystemExit(f"the existing plugin is needed: {EXISTING_PLUGIN} (orthanc-python)")
    scenarios = args.scenarios.split(",")
    if unknown := set(scenarios) - set(SCENARIOS):
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    names = (
        args.configurations.split(",")
        if args.configurations
        else ["existing", *(f"ours-{n}" for n in args.interpreters.split(","))]
    )
    configs = configurations(names)
    if configs[0].name != "existing":
        raise SystemExit("the first configuration is the baseline: existing")
    quick = args.quick
    rounds = args.repetitions or (1 if quick else 3)
    if rounds < 1 or (rounds < 3 and not quick):
        raise SystemExit("at least 3 repetitions (or --quick)")
    seconds = 1.0 if quick else 4.0
    files = 12 if quick else 48
    env = environment(quick)
    cpythons: dict[str, str] = {}
    for label, info in (
        (
            f"existing plugin's ({env['existing_plugin']['python']['version']})",
            env["existing_plugin"]["python"],
        ),
        (f"this plugin's ({env['our_plugin']['python']['version']})", env["our_plugin"]["python"]),
    ):
        same = [k for k, v in cpythons.items() if v == info["executable"]]
        if same:  # one CPython for both (forky): measured once
            cpythons[f"{same[0]} = {label}"] = cpythons.pop(same[0])
        else:
            cpythons[label] = info["executable"]
    meta: dict[str, Any] = {
        "argv": sys.argv[1:],
        "repetitions": rounds,
        "seconds": seconds,
        "files": files,
        "configurations": [asdict(c) | {"plugin": str(c.plugin)} for c in configs],
        "connections": levels,
        "wrk_threads": WRK_THREADS,
        "machine_limit_processes": sorted({1, cores}),
        "machine_limit_python": python_info(sys.executable),
        "cpythons": {label: python_info(executable) for label, executable in cpythons.items()},
    }
    folder = RESULTS / (env["name"] + ("-quick" if quick else ""))
    progress(f"{env['name']}: {env['orthanc']}; results to {folder}")
    started = time.monotonic()
    results = Results()
    steps: dict[str, list[Callable[[Path], None]]] = {
        "loop": [partial(bench_loop, configs, cpythons, rounds, results=results)],
        "cpu": [
            partial(
                bench_http,
                [(CPU_ROUTE, "/bench/cpu", levels)],
                CPU_SCRIPT,
                configs,
                seconds,
                rounds,
                results=results,
                limit=(sys.executable, sorted({1, cores})),
            )
        ],
        "trivial": [
            partial(
                bench_http,
                [
                    ("trivial route", "/bench/ok", [1, 8, 32]),
                    ("built-in /system", "/system", [1, 8, 32]),
                ],
                TRIVIAL_SCRIPT,
                configs,
                seconds,
                rounds,
                results=results,
            )
        ],
        "storage": [
            partial(
                bench_storage, scenario, script, configs, [1, 2, 4], files, rounds, results=results
            )  # fmt: skip
            for scenario, script in (
                ("storage area (zlib 9 + SHA-256)", STORAGE_SCRIPT),
                ("storage area (pure-Python checksum)", PYTHON_STORAGE_SCRIPT),
            )
        ],
        "reads": [partial(bench_reads, configs, levels, cores, seconds, rounds, results=results)],
        "mixed": [
            partial(bench_mixed, configs, MIXED_CONNECTIONS, seconds, rounds, results=results)
        ],
        "memory": [
            partial(
                bench_memory,
                configs,
                [1, 2, 4, 8],
                20_000 if quick else 100_000,
                100 if quick else 400,
                rounds,
                results=results,
            )
        ],
    }
    aborted = []
    with tempfile.TemporaryDirectory(prefix="opm-bench-") as temporary:
        for name in scenarios:
            for step in steps[name]:
                try:
                    step(Path(temporary))
                except Exception as failure:  # noqa: BLE001 - the other scenarios still run
                    aborted.append(name)
                    message = f"{type(failure).__name__}: {failure}"
                    results.note(f"scenario {name} aborted: {message[:3000]}")
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    env["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(folder, ignore_errors=True)  # no plots left from an earlier run
    folder.mkdir(parents=True)
    report = {
        "environment": env,
        "run": meta,
        "notes": results.notes,
        "ladder": ladder(results, [c.name for c in configs]),
        "measurements": [
            {
                "scenario": m.scenario,
                "unit": m.unit,
                "concurrency": m.concurrency,
                "configuration": m.configuration,
                **m.summary(),
                "runs": [asdict(run) for run in m.runs],
            }
            for m in results.measurements.values()
        ],
    }
    (folder / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(results, env, [c.name for c in configs], meta)
    (folder / "results.md").write_text(table)
    plot(folder)
    print(table)
    progress(f"done in {meta['elapsed_s']} s; results in {folder}")
    return 1 if aborted else 0


if __name__ == "__main__":
    sys.exit(main())
