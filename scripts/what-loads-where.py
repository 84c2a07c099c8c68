#!/usr/bin/env python3
"""What loads where: tries common packages in the main interpreter and in an own-GIL
isolated sub-interpreter configured as the plugin configures its own, and writes a
Markdown table.

Run it with the CPython under test, from a virtual environment that holds the
packages (not the plugin's; any throwaway one will do):

    python3 -m venv /tmp/probe && /tmp/probe/bin/pip install requests numpy ...
    /tmp/probe/bin/python scripts/what-loads-where.py                  # table on stdout
    /tmp/probe/bin/python scripts/what-loads-where.py --update docs/what-loads-where.md

Each probe runs in a fresh process, with a time limit, three times: in the main
interpreter; in a sub-interpreter with the plugin's import guard (src/bootstrap.py),
which is what a PythonScript sees; and in a sub-interpreter without it. A probe
"degrades" when its import succeeds although an extension module inside refused the
sub-interpreter and the package caught that ImportError (requests without
charset_normalizer). A package that is not installed (no wheel for this CPython)
gets a row that says so.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import platform
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

BOOTSTRAP = Path(__file__).resolve().parents[1] / "src" / "bootstrap.py"


@dataclass(frozen=True)
class Probe:
    label: str  # as pip names it
    distributions: tuple[str, ...]  # whose versions the table shows
    code: str  # runs with the package; may set `detail` (a short text for the notes)


PROBES = [
    Probe(
        "standard library (what examples/ import, ssl, sqlite3...)",
        (),
        "import io, json, os, zlib, datetime, hashlib, ssl, sqlite3, decimal, csv, "
        "xml.etree.ElementTree, urllib.request, asyncio, concurrent.futures\n"
        "hashlib.sha256(b'x'); zlib.compress(b'x'); datetime.datetime.now().isoformat()",
    ),
    Probe(
        "requests",
        ("requests", "charset-normalizer"),
        "import requests\nrequests.Request('GET', 'http://127.0.0.1/').prepare()\n"
        "detail = 'charset detection: ' + "
        "(requests.compat.chardet.__name__ if requests.compat.chardet else 'none')",
    ),
    Probe(
        "charset-normalizer",
        ("charset-normalizer",),
        "import charset_normalizer\ncharset_normalizer.from_bytes(b'hello').best()",
    ),
    Probe(
        "psycopg[binary]",
        ("psycopg", "psycopg-binary"),
        "import psycopg\ndetail = 'driver: ' + psycopg.pq.__impl__",
    ),
    Probe(
        "cryptography",
        ("cryptography",),
        "from cryptography.fernet import Fernet\nFernet(Fernet.generate_key()).encrypt(b'x')",
    ),
    Probe(
        "PyJWT",
        ("PyJWT",),
        "import jwt\njwt.encode({'a': 1}, 'a secret of at least 32 bytes......', "
        "algorithm='HS256')\n"
        "detail = 'RSA/EC algorithms: ' + ('yes' if jwt.algorithms.has_crypto else 'no')",
    ),
    Probe("orjson", ("orjson",), "import orjson\norjson.dumps({'a': 1})"),
    Probe(
        "pydantic",
        ("pydantic", "pydantic-core"),
        "import pydantic\nclass Item(pydantic.BaseModel):\n    n: int\nItem(n=1)",
    ),
    Probe("lxml", ("lxml",), "from lxml import etree\netree.fromstring(b'<a/>')"),
    Probe("numpy", ("numpy",), "import numpy\nnumpy.arange(4).sum()"),
    Probe("Pillow", ("pillow",), "from PIL import Image\nImage.new('L', (4, 4))"),
    Probe("scipy", ("scipy",), "import scipy.ndimage"),
    Probe("opencv-python-headless", ("opencv-python-headless",), "import cv2"),
    Probe("SimpleITK", ("SimpleITK",), "import SimpleITK\nSimpleITK.Image(4, 4, 1)"),
    Probe("python-gdcm", ("python-gdcm",), "import gdcm\ngdcm.Reader()"),
    Probe(
        "zstandard",
        ("zstandard",),
        "import zstandard\nzstandard.ZstdCompressor().compress(b'x')\n"
        "detail = 'backend: ' + zstandard.backend",
    ),
    Probe("lz4", ("lz4",), "import lz4.frame\nlz4.frame.compress(b'x')"),
    Probe("boto3", ("boto3", "botocore"), "import boto3\nboto3.client('s3', region_name='x')"),
    Probe("httpx", ("httpx",), "import httpx\nhttpx.Client().close()"),
    Probe("redis", ("redis",), "import redis\nredis.Redis(host='127.0.0.1')"),
    Probe(
        "pydicom",
        ("pydicom",),
        "import pydicom\nfrom pydicom.dataset import Dataset\nDataset().PatientName = 'A^B'",
    ),
    Probe("pynetdicom", ("pynetdicom",), "import pynetdicom\npynetdicom.AE()"),
    Probe(
        "dicomweb-client",
        ("dicomweb-client",),
        "from dicomweb_client.api import DICOMwebClient\nDICOMwebClient('http://127.0.0.1/')",
    ),
    Probe(
        "PyYAML",
        ("PyYAML",),
        "import yaml\nyaml.safe_load('a: 1')\n"
        "detail = 'libyaml: ' + ('yes' if yaml.__with_libyaml__ else 'no')",
    ),
    Probe(
        "SQLAlchemy",
        ("SQLAlchemy",),
        "import sqlalchemy\nengine = sqlalchemy.create_engine('sqlite://')\n"
        "with engine.connect() as connection:\n"
        "    connection.execute(sqlalchemy.text('select 1')).scalar()\n"
        "from sqlalchemy.util._has_cython import HAS_CYEXTENSION\n"
        "detail = 'Cython extensions: ' + ('yes' if HAS_CYEXTENSION else 'no')",
    ),
    Probe(
        "Jinja2",
        ("Jinja2", "MarkupSafe"),
        "import jinja2\njinja2.Template('{{ x }}').render(x='<b>')",
    ),
    Probe(
        "msgpack",
        ("msgpack",),
        "import msgpack\nmsgpack.packb({'a': 1})\ndetail = 'packer: ' + msgpack.Packer.__module__",
    ),
    Probe("aiohttp", ("aiohttp",), "import aiohttp\naiohttp.ClientTimeout(total=1)"),
    Probe("psutil", ("psutil",), "import psutil\npsutil.Process().memory_info()"),
    Probe("paho-mqtt", ("paho-mqtt",), "import paho.mqtt.client as mqtt\nmqtt.Client()"),
]

# Runs in the probed interpreter: records each extension module whose loading raised
# an ImportError that names sub-interpreters (CPython's refusal of single-phase
# modules, PyO3's own), runs the probe, prints one JSON line.
_INNER = r"""
import importlib.machinery, json, sys, traceback, types
_refused = []
_create = importlib.machinery.ExtensionFileLoader.create_module
def _recording(self, spec):
    try:
        return _create(self, spec)
    except ImportError as error:
        if 'subinterpreter' in str(error):
            _refused.append(spec.name)
        raise
importlib.machinery.ExtensionFileLoader.create_module = _recording
if GUARD:
    sys.modules.setdefault('orthanc', types.ModuleType('orthanc'))
    boot = types.ModuleType('_orthanc_python_multi')
    sys.modules['_orthanc_python_multi'] = boot
    exec(compile(BOOTSTRAP_SOURCE, 'bootstrap.py', 'exec'), boot.__dict__)
    boot.install_import_guard()
namespace = {}
result = {'ok': True, 'error': '', 'detail': ''}
try:
    exec(compile(CODE, 'probe', 'exec'), namespace)
    result['detail'] = str(namespace.get('detail', ''))
except BaseException as error:
    result['ok'] = False
    text = traceback.format_exception_only(error)[-1]
    lines = [line.strip() for line in text.replace(':', ':\n', 1).splitlines() if line.strip()]
    result['error'] = ' '.join(lines[:2])  # "Type:" and the first line of the message
result['refused'] = sorted(set(_refused))
result['from_source'] = sorted(boot.import_guard().from_source) if GUARD else []
print('@@result@@' + json.dumps(result), flush=True)
"""

# Starts an isolated own-GIL sub-interpreter as the plugin does (src/interpreter_pool.cpp:
# use_main_obmalloc=0, check_multi_interp_extensions=1, own GIL, threads and daemon
# threads allowed, fork and exec refused) and runs _INNER in it.
_IN_SUB_INTERPRETER = r"""
import _interpreters
config = _interpreters.new_config('isolated', allow_daemon_threads=True)
interpreter = _interpreters.create(config)
failure = _interpreters.exec(interpreter, INNER)
if failure is not None:
    print('@@result@@' + __import__('json').dumps(
        {'ok': False, 'error': f'{failure.type.__name__}: {failure.msg}', 'detail': '',
         'refused': []}), flush=True)
"""


def inner_code(code: str, guard: bool) -> str:
    prelude = f"CODE = {code!r}\nGUARD = {guard!r}\nBOOTSTRAP_SOURCE = {BOOTSTRAP.read_text()!r}\n"
    return prelude + _INNER


def run(probe: Probe, mode: str, timeout: float) -> dict[str, object]:
    """Runs `probe` in a fresh process: mode is main, sub (with the guard) or bare-sub."""
    inner = inner_code(probe.code, guard=mode == "sub")
    source = inner if mode == "main" else f"INNER = {inner!r}\n" + _IN_SUB_INTERPRETER
    try:
        done = subprocess.run(
            [sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"no answer in {timeout:g} s", "detail": "", "refused": []}
    for line in done.stdout.splitlines():
        if line.startswith("@@result@@"):
            result: dict[str, object] = json.loads(line.removeprefix("@@result@@"))
            return result
    last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return {"ok": False, "error": f"crashed ({last})", "detail": "", "refused": []}


def versions(probe: Probe) -> str | None:
    """'2.32.3 (charset-normalizer 3.4.1)'; None when the first one is not installed."""
    if not probe.distributions:
        return platform.python_version()
    found = []
    for name in probe.distributions:
        try:
            found.append(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            found.append(None)
    if found[0] is None:
        return None
    extra = [f"{n} {v}" for n, v in zip(probe.distributions[1:], found[1:], strict=True) if v]
    return found[0] + (f" ({', '.join(extra)})" if extra else "")


def cell(text: str, limit: int = 160) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def yes_no(result: dict[str, object]) -> str:
    return "yes" if result["ok"] else "**no**"


def row(probe: Probe, timeout: float, no_wheel: list[str]) -> str:
    version = versions(probe)
    if version is None:
        why = "no wheel for this CPython" if probe.label in no_wheel else "not installed"
        return f"| {probe.label} | {why} | | | | | |"
    main = run(probe, "main", timeout)
    sub = run(probe, "sub", timeout)
    bare = run(probe, "bare-sub", timeout)
    first = sub if not sub["ok"] else main if not main["ok"] else None
    error = cell(str(first["error"])) if first else ""
    refused = sorted(map(str, sub["refused"]))  # type: ignore[call-overload]
    from_source = sorted(map(str, sub.get("from_source", [])))  # type: ignore[call-overload]
    caught = [name for name in refused if name not in from_source]
    degraded = ", ".join(caught) if sub["ok"] else ""
    notes = [str(sub["detail"] or "")]
    if sub["ok"] and from_source:
        notes.append("ran from their Python source: " + ", ".join(from_source))
    if not sub["ok"] and any(name not in str(sub["error"]) for name in refused):
        notes.append("refused: " + ", ".join(refused))
    if sub["ok"] and main["detail"] != sub["detail"]:
        notes.append(f"main interpreter: {main['detail']}")
    if bare["ok"] != sub["ok"]:
        without = "loads" if bare["ok"] else cell(str(bare["error"]), 120)
        notes.append(f"without the plugin's import guard: {without}")
    note = "; ".join(n for n in notes if n)
    return (
        f"| {probe.label} | {version} | {yes_no(main)} | {yes_no(sub)} | {error} | {degraded} "
        f"| {cell(note, 400)} |"
    )


def section(timeout: float, only: list[str] | None, no_wheel: list[str]) -> str:
    version = platform.python_version()
    build = sysconfig.get_config_var("CONFIG_ARGS") or ""
    kind = "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL"
    lines = [
        f"## CPython {version}",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{sys.executable}`, a virtual "
        f"environment of `{sys.base_prefix}` "
        f"({platform.python_implementation()} {version}, {sys.platform}, "
        f"{platform.machine()}; {kind} build"
        f"{', configured with ' + cell(build, 200) if build else ''}).",
        "",
        "| package | version | main interpreter | sub-interpreter | first line of the error "
        "| degraded | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for probe in PROBES:
        if only and probe.label not in only:
            continue
        print(f"probing {probe.label}...", file=sys.stderr, flush=True)
        lines.append(row(probe, timeout, no_wheel))
    return "\n".join(lines) + "\n"


def update(path: Path, text: str) -> None:
    """Replaces this CPython's section of `path` (between its markers), or appends it."""
    minor = ".".join(platform.python_version_tuple()[:2])
    begin, end = f"<!-- begin CPython {minor} -->", f"<!-- end CPython {minor} -->"
    block = f"{begin}\n{text}{end}"
    document = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        document = pattern.sub(lambda _: block, document)
    else:
        document = document.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per probe")
    parser.add_argument("--update", type=Path, help="the Markdown file to write this section in")
    parser.add_argument("--only", nargs="+", help="probe these packages only (as labelled)")
    parser.add_argument(
        "--no-wheel",
        nargs="+",
        default=[],
        help="packages that pip found no wheel for (said so in their rows)",
    )
    arguments = parser.parse_args()
    if sys.version_info < (3, 13):
        sys.exit("needs CPython 3.13 or later (PEP 684 sub-interpreters, _interpreters)")
    text = section(arguments.timeout, arguments.only, arguments.no_wheel)
    if arguments.update:
        update(arguments.update, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
