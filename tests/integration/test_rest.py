"""REST routes (src/rest.cpp): call convention, dispatch, errors, nested calls."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import StartOrthanc
from .helpers import NESTED

# The existing plugin's first sample, unchanged.
SAMPLE = """
import orthanc

def OnRest(output, uri, **request):
    print(request)
    print('Accessing uri: %s' % uri)
    output.AnswerBuffer('ok\\n', 'text/plain')

orthanc.RegisterRestCallback('/(to)(t)o', OnRest)
orthanc.RegisterRestCallback('/tata', OnRest)
"""

INSPECT = """
import json
import orthanc

def Inspect(output, uri, **request):
    answer = {
        'uri': uri,
        'keys': sorted(request),
        'types': {key: type(value).__name__ for key, value in request.items()},
        'method': request['method'],
        'groups': list(request['groups']),
        'headers': request['headers'],
        'get': request.get('get'),
        'body': request['body'].decode('latin-1') if 'body' in request else None,
    }
    output.AnswerBuffer(json.dumps(answer), 'application/json')

orthanc.RegisterRestCallback('/inspect/(.*)/(.*)', Inspect)
"""


@pytest.mark.smoke
def test_existing_plugin_sample_answers_ok(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(SAMPLE, interpreters=interpreters)
    for path in ("/toto", "/tata", "/toto"):
        response = server.get(path)
        assert response.status_code == 200
        assert response.text == "ok\n"
        assert response.headers["content-type"] == "text/plain"
    assert server.get("/titi").status_code == 404
    assert "Accessing uri: /toto" in server.log()


def test_get_request_keyword_arguments(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(INSPECT, interpreters=interpreters)
    response = server.get("/inspect/abc/d", params={"x": "1", "y": "two"}, headers={"X-Test": "v"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["uri"] == "/inspect/abc/d"
    assert answer["keys"] == ["get", "groups", "headers", "method"]
    assert answer["types"] == {"method": "str", "groups": "tuple", "headers": "dict", "get": "dict"}
    assert answer["method"] == "GET"
    assert answer["groups"] == ["abc", "d"]
    assert answer["headers"]["x-test"] == "v"  # lower-case names
    assert answer["get"] == {"x": "1", "y": "two"}


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_body_reaches_python_as_bytes(orthanc: StartOrthanc, method: str) -> None:
    server = orthanc(INSPECT, interpreters=2)
    body = bytes(range(256))
    response = server.session.request(method, server.url + "/inspect/a/b", data=body, timeout=60)
    assert response.status_code == 200
    answer = response.json()
    assert answer["method"] == method
    assert answer["types"]["body"] == "bytes"
    assert "get" not in answer["keys"]
    assert answer["body"].encode("latin-1") == body


def test_delete_has_neither_get_nor_body(orthanc: StartOrthanc) -> None:
    server = orthanc(INSPECT, interpreters=2)
    response = server.session.delete(server.url + "/inspect/a/b", timeout=60)
    assert response.status_code == 200
    assert response.json()["keys"] == ["groups", "headers", "method"]


CPU_BOUND = """
import json
import time
import orthanc

def Busy(output, uri, **request):
    started = time.time()
    total = 0
    for i in range(int(request['get'].get('n', '3000000'))):
        total += i
    answer = {'interpreter': orthanc.GetInterpreterIndex(), 'start': started, 'end': time.time()}
    output.AnswerBuffer(json.dumps(answer), 'application/json')

orthanc.RegisterRestCallback('/busy', Busy)
"""


def test_two_cpu_bound_requests_run_in_two_interpreters_at_once(orthanc: StartOrthanc) -> None:
    server = orthanc(CPU_BOUND, interpreters=2)
    server.get("/busy", params={"n": "1000"})  # both interpreters and paths warm
    barrier = threading.Barrier(2)

    def call() -> dict[str, float]:
        barrier.wait()
        response = server.get("/busy")
        assert response.status_code == 200
        return response.json()

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: call(), range(2))
    assert {first["interpreter"], second["interpreter"]} == {0, 1}
    # Each started before the other ended: they ran at overlapping times.
    assert first["start"] < second["end"]
    assert second["start"] < first["end"]


INTERPRETERS = """
import json
import orthanc

orthanc.LogWarning('loaded in interpreter %d of %d'
                   % (orthanc.GetInterpreterIndex(), orthanc.GetInterpreterCount()))

def Where(output, uri, **request):
    output.AnswerBuffer(json.dumps([orthanc.GetInterpreterIndex(),
                                    orthanc.GetInterpreterCount()]), 'application/json')

orthanc.RegisterRestCallback('/where', Where)
"""


@pytest.mark.parametrize("interpreters", [1, 3])
def test_script_runs_once_per_interpreter(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(INTERPRETERS, interpreters=interpreters)
    log = server.log()
    for index in range(interpreters):
        assert f"loaded in interpreter {index} of {interpreters}" in log
    assert f"loaded in interpreter {interpreters} of" not in log
    seen = set()
    for _ in range(4 * interpreters):
        index, count = server.get("/where").json()
        assert count == interpreters
        seen.add(index)
    assert seen <= set(range(interpreters))
    # Sequential requests find every interpreter idle: ties go round-robin.
    assert seen == set(range(interpreters))


FAILING = """
import orthanc

class Custom(Exception):
    pass

def Boom(output, uri, **request):
    raise Custom('boom from ' + uri)

def NoAnswer(output, uri, **request):
    pass

def Missing(output, uri, **request):
    orthanc.RestApiGet('/instances/does-not-exist')

def Ok(output, uri, **request):
    output.AnswerBuffer('fine', 'text/plain')

orthanc.RegisterRestCallback('/boom', Boom)
orthanc.RegisterRestCallback('/no-answer', NoAnswer)
orthanc.RegisterRestCallback('/missing', Missing)
orthanc.RegisterRestCallback('/ok', Ok)
"""


def test_exception_gives_500_with_traceback_and_server_keeps_serving(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(FAILING, interpreters=interpreters)
    for _ in range(3):
        assert server.get("/boom").status_code == 500
        assert server.get("/ok").text == "fine"
    log = server.log()
    assert "Traceback (most recent call last):" in log
    assert "Custom: boom from /boom" in log
    assert "in Boom" in log


def test_callback_that_does_not_answer_gets_500(orthanc: StartOrthanc) -> None:
    server = orthanc(FAILING, interpreters=2)
    assert server.get("/no-answer").status_code == 500
    assert "returned without answering" in server.log()
    assert server.get("/ok").text == "fine"


def test_uncaught_orthanc_exception_keeps_its_http_status(orthanc: StartOrthanc) -> None:
    server = orthanc(FAILING, interpreters=2)
    response = server.get("/missing")
    assert response.status_code == 404  # UnknownResource, raised by RestApiGet
    assert "OrthancException" in server.log()


EXCEPTION_ARGS = """
import json
import orthanc

def Args(output, uri, **request):
    try:
        orthanc.RestApiGet('/instances/does-not-exist')
    except orthanc.OrthancException as error:
        output.AnswerBuffer(json.dumps([list(error.args), type(error).__module__,
                                        isinstance(error, Exception)]), 'application/json')

orthanc.RegisterRestCallback('/args', Args)
"""


def test_orthanc_exception_args_are_code_and_description(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(EXCEPTION_ARGS, interpreters=interpreters)
    for _ in range(interpreters):
        args, module, is_exception = server.get("/args").json()
        assert args == [17, "Unknown resource"]
        assert module == "orthanc"
        assert is_exception


@pytest.mark.smoke
def test_nested_python_routes_answer(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(NESTED, interpreters=interpreters)
    answer = server.get("/outer").json()
    assert set(answer) == {"leaf", "middle", "outer"}
    assert server.post("/post", data=b"payload").content == b"payload"


def test_nested_calls_do_not_deadlock_when_every_interpreter_is_busy(
    orthanc: StartOrthanc,
) -> None:
    server = orthanc(NESTED, interpreters=2)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: server.get("/outer", timeout=30), range(40)))
    assert [r.status_code for r in responses] == [200] * 40


BORROWED = """
import orthanc

kept = []

def Keep(output, uri, **request):
    kept.append(output)
    output.AnswerBuffer('kept', 'text/plain')

def Reuse(output, uri, **request):
    try:
        kept[-1].AnswerBuffer('late', 'text/plain')
        output.AnswerBuffer('no error', 'text/plain')
    except orthanc.OrthancException as error:
        output.AnswerBuffer('raised: %s' % error.args[1], 'text/plain')

orthanc.RegisterRestCallback('/keep', Keep)
orthanc.RegisterRestCallback('/reuse', Reuse)
"""


def test_rest_output_used_after_its_callback_raises(orthanc: StartOrthanc) -> None:
    server = orthanc(BORROWED)
    assert server.get("/keep").text == "kept"
    answer = server.get("/reuse").text
    assert answer.startswith("raised: ")
    assert "has returned" in answer


OUTPUT_METHODS = """
import orthanc

def Status(output, uri, **request):
    output.SendHttpStatusCode(int(request['groups'][0]))

def NotAllowed(output, uri, **request):
    output.SendMethodNotAllowed('GET,PUT')

def Header(output, uri, **request):
    output.SetHttpHeader('X-From-Python', 'yes')
    output.AnswerBuffer(b'\\x00\\x01binary', 'application/octet-stream')

orthanc.RegisterRestCallback('/status/([0-9]+)', Status)
orthanc.RegisterRestCallback('/not-allowed', NotAllowed)
orthanc.RegisterRestCallback('/header', Header)
"""


def test_rest_output_methods(orthanc: StartOrthanc) -> None:
    server = orthanc(OUTPUT_METHODS, interpreters=2)
    assert server.get("/status/204").status_code == 204
    assert server.get("/status/409").status_code == 409
    response = server.get("/not-allowed")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET,PUT"
    response = server.get("/header")
    assert response.headers["x-from-python"] == "yes"
    assert response.content == b"\x00\x01binary"


LOGGING = """
import logging
import sys
import orthanc

logging.getLogger('myplugin').info('logging info')
logging.getLogger('myplugin').warning('logging warning')
logging.getLogger('myplugin').error('logging error')

print('printed at import')
sys.stderr.write('to stderr\\n')
orthanc.LogInfo('info line')
orthanc.LogWarning('warning line')
orthanc.LogError('error line')
"""


def test_hello_world_prints_at_the_default_log_level(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    # The Orthanc Book's first example; the existing plugin prints to standard output.
    server = orthanc("print('Hello world!')\n", interpreters=interpreters, verbose=False)
    assert server.log().splitlines().count("Hello world!") == interpreters


def test_print_stderr_and_log_functions_reach_the_orthanc_log(orthanc: StartOrthanc) -> None:
    server = orthanc(LOGGING, interpreters=2)
    lines = server.log().splitlines()

    def level_of(text: str) -> set[str]:
        return {line[0] for line in lines if line.endswith(text)}

    assert lines.count("printed at import") == 2  # standard output, once per interpreter
    assert level_of("info line") == {"I"}
    assert level_of("warning line") == {"W"}
    assert level_of("to stderr") == {"E"}
    assert level_of("error line") == {"E"}
    assert level_of("myplugin: logging info") == {"I"}
    assert level_of("myplugin: logging warning") == {"W"}
    assert level_of("myplugin: logging error") == {"E"}
    assert sum(line.endswith("warning line") for line in lines) == 2


LATE_LOGGING = """
import orthanc

def Route(output, uri, **request):
    from logging import getLogger  # imported by the script's callback only
    getLogger('late').warning('late warning from %d', orthanc.GetInterpreterIndex())
    getLogger('late').info('late info')
    output.AnswerBuffer('logged', 'text/plain')

orthanc.RegisterRestCallback('/late-logging', Route)
"""


def test_logging_imported_first_by_a_callback_reaches_the_orthanc_log(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    # From Orthanc's HTTP threads, and with `logging` imported by a callback only.
    server = orthanc(LATE_LOGGING, interpreters=interpreters)
    answers = {server.get("/late-logging").text for _ in range(2 * interpreters)}
    assert answers == {"logged"}
    lines = server.log().splitlines()
    warnings = [line for line in lines if "late: late warning from" in line]
    assert warnings and {line[0] for line in warnings} == {"W"}
    assert {line[0] for line in lines if line.endswith("late: late info")} == {"I"}


def test_routes_cannot_be_registered_after_start(orthanc: StartOrthanc) -> None:
    script = """
    import orthanc

    def Late(output, uri, **request):
        try:
            orthanc.RegisterRestCallback('/late', Late)
            output.AnswerBuffer('registered', 'text/plain')
        except orthanc.OrthancException as error:
            output.AnswerBuffer(error.args[1], 'text/plain')

    orthanc.RegisterRestCallback('/register', Late)
    """
    server = orthanc(script, interpreters=2)
    assert "can only be called while the script loads" in server.get("/register").text
    assert server.get("/late").status_code == 404


def test_json_answers_round_trip(orthanc: StartOrthanc) -> None:
    server = orthanc(INSPECT, interpreters=2)
    payload = json.dumps({"k": "é"}).encode()
    answer = server.post("/inspect/x/y", data=payload).json()
    assert answer["body"].encode("latin-1") == payload


OWN_GIL = """
import json
import time
import orthanc

def Hold(output, uri, **request):
    # sum() over a range runs in C and holds this interpreter's GIL throughout.
    started = time.monotonic()
    open('holding', 'w').close()  # in Orthanc's working folder
    total = sum(range(int(request['get']['n'])))
    answer = {'interpreter': orthanc.GetInterpreterIndex(), 'start': started,
              'end': time.monotonic()}
    output.AnswerBuffer(json.dumps(answer), 'application/json')

def Ping(output, uri, **request):
    answer = {'interpreter': orthanc.GetInterpreterIndex(), 'at': time.monotonic()}
    output.AnswerBuffer(json.dumps(answer), 'application/json')

orthanc.RegisterRestCallback('/hold', Hold)
orthanc.RegisterRestCallback('/ping', Ping)
"""


def test_each_interpreter_has_its_own_gil(orthanc: StartOrthanc) -> None:
    # While one interpreter holds its GIL in a long C call, the other runs Python:
    # impossible under one shared GIL, whatever the number of free cores.
    server = orthanc(OWN_GIL, interpreters=2)
    marker = server.folder / "holding"
    with ThreadPoolExecutor(1) as pool:
        hold = pool.submit(
            requests.get,
            server.url + "/hold",
            params={"n": "200000000"},
            timeout=120,
        )
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists()
        pings = [server.get("/ping").json() for _ in range(3)]
        held = hold.result().json()
    assert {p["interpreter"] for p in pings} == {1 - held["interpreter"]}
    assert held["start"] < pings[0]["at"] and pings[-1]["at"] < held["end"], (held, pings)


LOAD = """
import json
import time
import orthanc

def Slow(output, uri, **request):
    time.sleep(3)
    output.AnswerBuffer(str(orthanc.GetInterpreterIndex()), 'text/plain')

def Fast(output, uri, **request):
    output.AnswerBuffer(str(orthanc.GetInterpreterIndex()), 'text/plain')

orthanc.RegisterRestCallback('/slow', Slow)
orthanc.RegisterRestCallback('/fast', Fast)
"""


def test_dispatch_picks_the_least_loaded_interpreter(orthanc: StartOrthanc) -> None:
    server = orthanc(LOAD, interpreters=2)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.get, server.url + "/slow", timeout=60)
        deadline = time.monotonic() + 10
        busy = None
        while busy is None and time.monotonic() < deadline:
            stats = server.get("/python/interpreters").json()
            loaded = [s["Index"] for s in stats["Interpreters"] if s["InFlight"] == 1]
            busy = loaded[0] if loaded else None
        assert busy is not None
        # Round-robin would send every other one to the busy interpreter.
        fast = [server.get("/fast").text for _ in range(10)]
        assert slow.result().text == str(busy)
    assert fast == [str(1 - busy)] * 10
