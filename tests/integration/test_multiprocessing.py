"""multiprocessing as users write it: a pool made by the plugin script, mapping a
function defined in the script, with every start method (issue 21, item 2).

spawn and forkserver (CPython 3.14's default) start plain Python processes that
import the script again to find the function: their `import orthanc` gets the
module of generator/emit_child.py. fork (3.13's default) copies the Orthanc
process: the script must run in the main interpreter for that.
"""

from __future__ import annotations

import multiprocessing

import pytest

from .conftest import StartOrthanc

# The Orthanc Book's shape: a pool at module level, a route that maps a function of
# the script over it, the pool ended at ORTHANC_STOPPED.
POOL_IN_SCRIPT = """
import json
import multiprocessing
import orthanc

def Compute(value):
    return sum(i * i for i in range(value))

POOL = CONTEXT.Pool(2)

def Route(output, uri, **request):
    answer = POOL.map(Compute, [10, 100, 1000])
    output.AnswerBuffer(json.dumps([orthanc.GetInterpreterIndex(), answer]), 'application/json')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/compute', Route)
orthanc.RegisterOnChangeCallback(OnChange)
orthanc.LogWarning('the script has loaded')
"""

EXPECTED = [sum(i * i for i in range(n)) for n in (10, 100, 1000)]

METHODS = ["default", "fork", "spawn", "forkserver"]


def pool_script(method: str, body: str = POOL_IN_SCRIPT) -> str:
    context = (
        "multiprocessing" if method == "default" else f"multiprocessing.get_context({method!r})"
    )
    return body.replace("CONTEXT", context)


def forks(method: str) -> bool:
    return (method if method != "default" else multiprocessing.get_start_method()) == "fork"


@pytest.mark.parametrize("method", METHODS)
def test_pool_of_a_function_defined_in_the_script_answers(
    orthanc: StartOrthanc, method: str, interpreters: int
) -> None:
    server = orthanc(pool_script(method), interpreters=interpreters)
    answers = [server.get("/compute") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4, server.log()
    assert {tuple(a.json()[1]) for a in answers} == {tuple(EXPECTED)}
    log = server.log()
    if forks(method):
        # Sub-interpreters refuse os.fork: with 2, the script runs in the main one.
        assert {a.json()[0] for a in answers} == {0}
        if interpreters == 2:
            assert "uses fork (subprocess, multiprocessing)" in log
            assert "runs in the main interpreter alone" in log
    else:
        assert {a.json()[0] for a in answers} <= set(range(interpreters))
        assert "runs in the main interpreter alone" not in log
        # The children ran the script's module level: its LogWarning went to stderr.
        assert "W multiprocessing child " in log
        assert ": the script has loaded" in log


# A script that reads Orthanc's configuration at module level: in a child process
# that import raises, so no child can run the pool's function.
CHILD_CANNOT_IMPORT = """
import json
import multiprocessing
import orthanc

CONFIGURATION = json.loads(orthanc.GetConfiguration())

def Compute(value):
    return value * 2

POOL = CONTEXT.Pool(2)

def Route(output, uri, **request):
    output.AnswerBuffer(str(POOL.map(Compute, [1, 2, 3])), 'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/compute', Route)
orthanc.RegisterOnChangeCallback(OnChange)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_child_that_cannot_import_the_script_fails_the_request(
    orthanc: StartOrthanc, method: str, interpreters: int
) -> None:
    server = orthanc(pool_script(method, CHILD_CANNOT_IMPORT), interpreters=interpreters)
    for _ in range(2):  # the pool still answers after a failure
        answer = server.get("/compute", timeout=30)
        assert answer.status_code == 500
    log = server.log()
    assert "ScriptImportError: plugin_script.Compute cannot run in multiprocessing child" in log
    assert "the child could not get it by importing plugin_script" in log
    assert "orthanc.GetConfiguration() runs only inside Orthanc" in log


# Functions the children cannot find by name: one the script defines only inside
# Orthanc, and a lambda (which pickle refuses in the Orthanc process, as in plain Python).
NOT_FOUND_IN_CHILD = """
import multiprocessing
import orthanc

if orthanc.GetInterpreterIndex() >= 0:
    def Compute(value):
        return value * 2

POOL = CONTEXT.Pool(1)

def Route(output, uri, **request):
    function = Compute if request['get'].get('which') == 'defined' else (lambda value: value)
    output.AnswerBuffer(str(POOL.map(function, [1, 2, 3])), 'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/compute', Route)
orthanc.RegisterOnChangeCallback(OnChange)
"""


def test_functions_that_children_cannot_find_fail_the_request(orthanc: StartOrthanc) -> None:
    server = orthanc(pool_script("spawn", NOT_FOUND_IN_CHILD))
    assert server.get("/compute?which=defined", timeout=30).status_code == 500
    assert "AttributeError: module 'plugin_script' has no attribute 'Compute'" in server.log()
    assert server.get("/compute?which=lambda", timeout=30).status_code == 500
    # 3.13: "Can't get local object 'Route.<locals>.<lambda>'"; 3.14: "Can't pickle ...".
    assert any(
        "local object" in line and "Route.<locals>.<lambda>" in line
        for line in server.log().splitlines()
    )


# The pool's function calls the SDK: in a child process it gets the clear error.
CHILD_CALLS_THE_SDK = """
import multiprocessing
import orthanc

def Fetch(uri):
    return orthanc.RestApiGet(uri)

POOL = CONTEXT.Pool(1)

def Route(output, uri, **request):
    try:
        output.AnswerBuffer(POOL.apply(Fetch, ('/system',)), 'application/json')
    except RuntimeError as error:
        output.AnswerBuffer('%s: %s' % (type(error).__name__, error), 'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/fetch', Route)
orthanc.RegisterOnChangeCallback(OnChange)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_sdk_call_in_a_child_raises_a_clear_error(
    orthanc: StartOrthanc, method: str, interpreters: int
) -> None:
    server = orthanc(pool_script(method, CHILD_CALLS_THE_SDK), interpreters=interpreters)
    answer = server.get("/fetch", timeout=30)
    assert answer.status_code == 200
    assert answer.text.startswith("OutsideOrthancError: orthanc.RestApiGet() runs only inside ")
    assert "not in a multiprocessing child process" in answer.text


# A fork pool made in a callback: the script loaded without forking, so it runs in
# the sub-interpreters, which cannot fork.
FORK_POOL_IN_CALLBACK = """
import multiprocessing
import orthanc

def Compute(value):
    return value * 2

def Route(output, uri, **request):
    with multiprocessing.get_context('fork').Pool(1) as pool:
        output.AnswerBuffer(str(pool.map(Compute, [1, 2])), 'text/plain')

orthanc.RegisterRestCallback('/compute', Route)
"""


def test_fork_pool_made_in_a_sub_interpreter_callback_fails_the_request(
    orthanc: StartOrthanc,
) -> None:
    server = orthanc(FORK_POOL_IN_CALLBACK, interpreters=2)
    answer = server.get("/compute", timeout=30)
    assert answer.status_code == 500
    assert "RuntimeError: fork not supported for isolated subinterpreters" in server.log()
