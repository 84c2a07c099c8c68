"""A multiprocessing pool in the plugin script, side by side with the same route without one.

One Orthanc (this plugin, 1 interpreter: the Orthanc Book's setting) runs a script
with two routes over the same pure-Python function, defined in the script:
`/bench/serial` runs it ITEMS times in the interpreter, `/bench/pool` maps it over
a `multiprocessing` pool of 2 made at module level (`multiprocessing.Pool(2)`, the
start method of the CPython, or `--method`). One client sends requests one after
the other, alternating the routes for ROUNDS rounds of SECONDS each; the rate is
function calls per second, median of the rounds. Goal on 2 cores: the pool route
at >= 1.7x the serial one. Results: perf/results/<environment>/pool-<method>.json and a
line on standard output, with the 1-minute load average before and after.

    .venv/bin/python perf/pool.py [--method spawn|forkserver|fork] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from orthanc_python_multi import plugin_path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))
from perf.bench import RESULTS, environment_name, os_release  # noqa: E402
from tests.support.process import make_orthanc  # noqa: E402

ITEMS = 8  # function calls per request

SCRIPT = """
import multiprocessing
import orthanc

def work(seed):
    total = seed
    for i in range(600000):
        total += i * i % 7
    return total

POOL = CONTEXT.Pool(2)

def Serial(output, uri, **request):
    output.AnswerBuffer(str(sum(work(i) for i in range(ITEMS))), 'text/plain')

def Pooled(output, uri, **request):
    output.AnswerBuffer(str(sum(POOL.map(work, range(ITEMS)))), 'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/bench/serial', Serial)
orthanc.RegisterRestCallback('/bench/pool', Pooled)
orthanc.RegisterOnChangeCallback(OnChange)
"""


def calls_per_second(url: str, seconds: float) -> float:
    """Requests one after the other for about `seconds`; function calls per second."""
    done = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds or done == 0:
        with urllib.request.urlopen(url, timeout=120) as answer:
            answer.read()
        done += 1
    return done * ITEMS / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=["spawn", "forkserver", "fork"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    method = args.method or multiprocessing.get_start_method()
    context = f"multiprocessing.get_context({method!r})" if args.method else "multiprocessing"
    script = SCRIPT.replace("CONTEXT", context).replace("ITEMS", str(ITEMS))
    load_before = os.getloadavg()[0]
    rates: dict[str, list[float]] = {"serial": [], "pool": []}
    with tempfile.TemporaryDirectory(prefix="opm-pool-") as work:
        server = make_orthanc(Path(work), script, plugin=plugin_path(), verbose=False)
        server.start()
        try:
            for route in rates:  # warm-up: the pool's children import the script
                calls_per_second(f"{server.url}/bench/{route}", 1.0)
            for round_ in range(args.rounds):
                for route in rates if round_ % 2 == 0 else reversed(list(rates)):
                    rates[route].append(
                        calls_per_second(f"{server.url}/bench/{route}", args.seconds)
                    )
        finally:
            code = server.stop()
    load_after = os.getloadavg()[0]
    serial, pool = (statistics.median(rates[r]) for r in ("serial", "pool"))
    result = {
        "method": method,
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "items_per_request": ITEMS,
        "calls_per_s": rates,
        "serial_calls_per_s": serial,
        "pool_calls_per_s": pool,
        "ratio": pool / serial,
        "goal": 1.7,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "orthanc_exit_code": code,
    }
    folder = RESULTS / environment_name(os_release())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"pool-{method}.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8"
    )
    print(
        f"pool ({method}, 2 processes): {pool:.1f} calls/s; serial: {serial:.1f} calls/s; "
        f"{pool / serial:.2f}x (goal >= 1.7x); load average {load_before:.2f} before, "
        f"{load_after:.2f} after; Orthanc exit code {code}"
    )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
