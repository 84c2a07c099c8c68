"""Hardening: saturation, hostile input, faults, restarts and leaks; every loop is
bounded in count and time and talks only to 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.process import wrk_requests

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import NESTED, SCP_CONFIG, dcmtk, raw_request, upload, wait_for_log
from .orthanc_server import OrthancServer, make_server, running

pytestmark = pytest.mark.dicom


def test_nested_calls_at_saturation_do_not_deadlock(orthanc: StartOrthanc) -> None:
    server = orthanc(NESTED, interpreters=2)

    def call(_: int) -> int:
        return requests.get(server.url + "/outer", timeout=60).status_code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(call, range(600), timeout=300))
    assert codes == [200] * 600


ECHO = """
import hashlib
import json
import orthanc

def Echo(output, uri, **request):
    body = request.get('body', b'')
    answer = {
        'uri': uri.encode('utf-8', 'surrogateescape').hex(),
        'groups': [g.encode('utf-8', 'surrogateescape').hex() for g in request['groups']],
        'headers': {k: v.encode('utf-8', 'surrogateescape').hex()
                    for k, v in request['headers'].items()},
        'get': request.get('get', {}),
        'length': len(body),
        'sha256': hashlib.sha256(body).hexdigest(),
    }
    output.AnswerBuffer(json.dumps(answer), 'application/json')

orthanc.RegisterRestCallback('/echo(.*)', Echo)
"""


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with running(make_server(tmp_path_factory.mktemp("echo"), ECHO, interpreters=2)) as server:
        yield server


def answer_json(raw: bytes) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return dict(json.loads(body))


def http_get(server: OrthancServer, target: bytes, headers: bytes = b"") -> bytes:
    return raw_request(
        server,
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + headers
        + b"Connection: close\r\n\r\n",
    )


def test_invalid_utf8_in_header_values_reaches_python_losslessly(
    echo_server: OrthancServer,
) -> None:
    answer = answer_json(http_get(echo_server, b"/echo/h", b"X-Bytes: caf\xe9\xff\r\n"))
    headers = answer["headers"]
    assert isinstance(headers, dict)
    # Python sees str(..., "utf-8", "surrogateescape"): encoding back gives the bytes.
    assert bytes.fromhex(headers["x-bytes"]) == b"caf\xe9\xff"


def test_percent_encoded_bytes_in_the_uri_reach_python_decoded(
    echo_server: OrthancServer,
) -> None:
    answer = answer_json(http_get(echo_server, b"/echo/%ffx%C3%A9"))
    assert bytes.fromhex(str(answer["uri"])) == b"/echo/\xffx\xc3\xa9"
    # The SDK hands the URI over as a C string: it ends at a decoded NUL.
    answer = answer_json(http_get(echo_server, b"/echo/%ff%00x"))
    assert bytes.fromhex(str(answer["uri"])) == b"/echo/\xff"


def test_raw_invalid_utf8_in_the_path_is_refused_by_orthanc(echo_server: OrthancServer) -> None:
    assert http_get(echo_server, b"/echo/\xff\xfe-raw").startswith(b"HTTP/1.0 400")
    assert echo_server.get("/echo/still-alive").status_code == 200


def test_long_path_and_odd_bodies(echo_server: OrthancServer) -> None:
    long_path = "/echo/" + "a" * 4000
    response = echo_server.get(long_path)
    assert response.status_code == 200
    assert bytes.fromhex(response.json()["uri"]) == long_path.encode()
    bodies = [b"", bytes(range(256)) * 16, bytes(8 * 1024 * 1024)]
    for body in bodies:
        answer = echo_server.post("/echo/body", data=body).json()
        assert answer["length"] == len(body)
        assert answer["sha256"] == hashlib.sha256(body).hexdigest()
    assert echo_server.get("/echo/still-alive").status_code == 200


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=4096),
    header=header_values,
    args=st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
        # Unreserved characters only: Orthanc 1.10 passes %-escapes in GET values on as
        # they are (it does not decode them), so only these round-trip unchanged.
        st.text(alphabet="abcXYZ0123456789-._~", max_size=20),
        max_size=4,
    ),
)
def test_request_marshalling_property(
    echo_server: OrthancServer, body: bytes, header: str, args: dict[str, str]
) -> None:
    posted = echo_server.post("/echo/p", data=body, headers={"X-Value": header}).json()
    assert posted["length"] == len(body)
    assert posted["sha256"] == hashlib.sha256(body).hexdigest()
    assert bytes.fromhex(posted["headers"]["x-value"]).decode() == header
    got = echo_server.get("/echo/g", params=args).json()
    assert got["get"] == args


FAULTS = """
import orthanc

kept = []

def OnStored(dicom, instanceId):
    kept.append(dicom)
    raise RuntimeError('stored callback failed')

def OnFind(answers, query, issuerAet, calledAet):
    raise RuntimeError('find callback failed')

def UseLater(output, uri, **request):
    try:
        kept[-1].GetInstanceSimplifiedJson()
        output.AnswerBuffer('no error', 'text/plain')
    except orthanc.OrthancException as error:
        output.AnswerBuffer('raised: %s' % error.args[1], 'text/plain')

orthanc.RegisterOnStoredInstanceCallback(OnStored)
orthanc.RegisterFindCallback(OnFind)
orthanc.RegisterRestCallback('/use-later', UseLater)
"""


def test_faults_in_callbacks_are_reported_and_the_server_keeps_serving(
    orthanc: StartOrthanc,
) -> None:
    server = orthanc(FAULTS, extra=SCP_CONFIG)
    upload(server, make_dicom("FAULTS"))
    assert wait_for_log(server, "RuntimeError: stored callback failed")
    # A DicomInstance kept after its callback returned raises instead of crashing.
    assert (
        server.get("/use-later").text
        == "raised: this object belongs to a callback that has returned"
    )
    result = dcmtk("findscu", server, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=")
    output = result.stdout + result.stderr
    assert "Association Accepted" in output, output
    assert "Received Final Find Response" in output, output
    assert "Pending" not in output
    assert "Received Final Find Response (Success)" not in output  # a failure status
    assert "RuntimeError: find callback failed" in server.log()
    assert server.get("/system").status_code == 200


RESTARTS = """
import threading
import orthanc

TIMER = None

def Tick():
    global TIMER
    TIMER = threading.Timer(0.1, Tick)
    TIMER.start()

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        Tick()
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED and TIMER is not None:
        TIMER.cancel()

def Hello(output, uri, **request):
    output.AnswerBuffer('hello %d' % orthanc.GetInterpreterIndex(), 'text/plain')

orthanc.RegisterOnChangeCallback(OnChange)
orthanc.RegisterRestCallback('/hello', Hello)
"""


def test_fifty_start_stop_cycles_with_two_interpreters(orthanc: StartOrthanc) -> None:
    # Without Orthanc's DICOM server, which nothing here uses: it takes 1 s of each
    # stop (3.5 s against 2.5 s, measured), Orthanc's time rather than the plugin's.
    server = orthanc(RESTARTS, interpreters=2, extra={"DicomServerEnabled": False})
    offset = 0  # the log is appended to by each start: look at this cycle's part only
    for cycle in range(50):
        assert server.get("/hello").text.startswith("hello "), f"cycle {cycle}"
        assert server.stop() == 0, f"cycle {cycle}:\n{server.log()[-3000:]}"
        log = server.log()
        this_cycle, offset = log[offset:], len(log)
        assert this_cycle.count("runs in 2 sub-interpreters") == 1, f"cycle {cycle}"
        assert this_cycle.count("Orthanc has stopped") == 1, f"cycle {cycle}"
        assert "Fatal Python error" not in this_cycle
        assert "still run after" not in this_cycle
        if cycle < 49:
            server.start()


def test_module_that_cannot_load_in_a_sub_interpreter_is_named(orthanc: StartOrthanc) -> None:
    # The script then runs in the main interpreter alone (src/interpreter_pool.cpp).
    script = (
        "import orthanc\nimport _testsinglephase\n"
        "print('loaded in %d of %d' % (orthanc.GetInterpreterIndex(), "
        "orthanc.GetInterpreterCount()))\n"
    )
    server = orthanc(script, interpreters=2)
    log = server.log()
    assert "imports _testsinglephase, which cannot load in a sub-interpreter" in log
    assert "loaded in 0 of 1" in log
    assert "Fatal Python error" not in log


def anonymous_rss(server: OrthancServer) -> int:
    """Resident memory that is not file-backed: the heap, not code pages first run late."""
    info = psutil.Process(server.pid).memory_info()
    return int(info.rss - info.shared)


def test_memory_stays_flat_under_trivial_requests_and_large_posts(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    script = """
import orthanc

def Ok(output, uri, **request):
    output.AnswerBuffer('ok', 'text/plain')

def Size(output, uri, **request):
    output.AnswerBuffer(str(len(request['body'])), 'text/plain')

orthanc.RegisterRestCallback('/ok', Ok)
orthanc.RegisterRestCallback('/size', Size)
"""
    # As many HTTP threads as wrk's connections, so that the warm-up gives each of
    # them its Python thread states: with Orthanc's 50, a thread first used after
    # the warm-up adds its states (tens of KB, kept for the thread's life).
    extra = {"HttpVerbose": False, "HttpThreadsCount": 4}
    server = orthanc(script, interpreters=interpreters, extra=extra)
    server.verbose = False
    url = server.url + "/ok"
    wrk_requests(url, 20_000)  # warm-up: caches, arenas, thread states
    before = anonymous_rss(server)
    done = wrk_requests(url, 100_000)
    grown = anonymous_rss(server) - before
    assert done >= 100_000  # answered with 200: errors are not counted
    # Measured: 0 to 8 KB over 100 000 requests (1 and 2 interpreters, CPython
    # 3.13 and 3.14); a leak of 3 bytes per request would show.
    assert grown < 256 * 1024, f"RSS grew by {grown} bytes over {done} requests"

    body = bytes(256 * 1024)
    for _ in range(40):  # warm-up
        assert server.post("/size", data=body).text == str(len(body))
    before = anonymous_rss(server)
    for _ in range(400):
        assert server.post("/size", data=body).text == str(len(body))
    grown = anonymous_rss(server) - before
    # Measured without leaks: 0 bytes; 4 leaked bodies out of 400 would show.
    assert grown < 1024 * 1024, f"RSS grew by {grown} bytes over 400 POSTs of 256 KiB"


RESET = (
    RESTARTS
    + """
def Started(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        orthanc.LogWarning('started event in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(Started)
"""
)


def test_tools_reset_brings_the_plugin_back(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(RESET, interpreters=interpreters)
    assert server.get("/hello").status_code == 200
    assert server.post("/tools/reset", data=b"").status_code == 200
    deadline = time.monotonic() + 60
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = requests.get(server.url + "/hello", timeout=5)
            if answer.status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    assert answer is not None and answer.text.startswith("hello ")
    assert len(wait_for_log(server, "started event in 0")) >= 1
    deadline = time.monotonic() + 30
    while len(wait_for_log(server, "started event in 0")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(wait_for_log(server, "started event in 0")) == 2  # OnChange works again
