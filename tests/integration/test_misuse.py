"""Script mistakes (src/handles.h, the generated bindings): each one raises in Python
and Orthanc keeps serving, with 1 and 2 interpreters."""

from __future__ import annotations

import ast
import hashlib
import json
import time
import tomllib
from pathlib import Path

import pytest

import orthanc_python_multi

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import SCP_CONFIG, dcmtk, raw_request, wait_for_log

pytestmark = pytest.mark.dicom

ROOT = Path(__file__).resolve().parents[2]

WORKLIST_NONE_QUERY = """
import json
import orthanc

def OnWorklist(answers, query, issuerAet, calledAet):
    dicom = orthanc.CreateDicom(json.dumps({'PatientName': 'WORKLIST^NONE'}), None,
                                orthanc.CreateDicomFlags.NONE)
    try:
        answers.WorklistAddAnswer(None, dicom)
    except TypeError as error:
        orthanc.LogWarning('refused: TypeError')
    answers.WorklistAddAnswer(query, dicom)

orthanc.RegisterWorklistCallback(OnWorklist)
"""


def findscu_worklist(server: object) -> str:
    result = dcmtk("findscu", server, "-W", "-k", "PatientName=")  # type: ignore[arg-type]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_worklist_add_answer_with_none_query_raises(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(WORKLIST_NONE_QUERY, interpreters=interpreters, extra=SCP_CONFIG)
    for _ in range(2):  # Orthanc keeps serving after the mistake
        output = findscu_worklist(server)
        assert "WORKLIST^NONE" in output
    assert len(wait_for_log(server, "refused: TypeError")) == 2
    assert server.get("/system").status_code == 200


def handle_parameters() -> list[tuple[str, str, list[list[str]]]]:
    """(class or "", function, [[parameter, annotation], ...]) for every function of the
    installed stub that takes an instance of an SDK class, except self."""
    stub = Path(orthanc_python_multi.__file__).parents[1] / "orthanc-stubs" / "__init__.pyi"
    tree = ast.parse(stub.read_text())
    classes = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any(isinstance(n, ast.FunctionDef) for n in node.body)
    }
    found = []
    scopes: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    scopes += [(name, node.body) for name, node in classes.items()]
    for owner, body in scopes:
        for fn in body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            params = [
                [a.arg, ast.unparse(a.annotation) if a.annotation else ""]
                for a in fn.args.args
                if a.arg != "self"
            ]
            if any(p[1].split(" | ")[0] in classes for p in params):
                found.append((owner, fn.name, params))
    return found


def nullable_parameters() -> set[str]:
    manifest = tomllib.loads((ROOT / "generator" / "manifest.toml").read_text())
    names = manifest.get("nullable_params", {}).get("params", [])
    return {name.removeprefix("OrthancPlugin") for name in names}


# Calls every function with None for each handle parameter the SDK does not
# document as nullable, on a live object where the function is a method.
EVERY_HANDLE_PARAMETER = """
import json
import orthanc

CALLS = json.loads(%r)
DUMMY = {'str': '', 'int': 0, 'float': 0.0, 'Buffer | str': b'', 'Buffer': b'',
         'dict[str, str]': {}}

def OnWorklist(answers, query, issuerAet, calledAet):
    live = {'WorklistAnswers': answers, 'WorklistQuery': query}
    results = {}
    for owner, name, params, none_param in CALLS:
        args = []
        for param, annotation in params:
            if param == none_param:
                args.append(None)
            elif annotation.split(' | ')[0] in live:
                args.append(live[annotation.split(' | ')[0]])
            else:
                args.append(DUMMY[annotation])
        target = getattr(live[owner], name) if owner else getattr(orthanc, name)
        try:
            target(*args)
            results[owner + '.' + name] = 'no exception'
        except Exception as error:
            results[owner + '.' + name] = type(error).__name__
    orthanc.LogWarning('NONE-RESULTS ' + json.dumps(results, sort_keys=True))

orthanc.RegisterWorklistCallback(OnWorklist)
"""


def test_every_handle_parameter_refuses_none(orthanc: StartOrthanc, interpreters: int) -> None:
    nullable = nullable_parameters()
    assert nullable == {"CreateDicom.pixelData", "CreateDicom2.pixelData"}
    calls = []
    for owner, name, params in handle_parameters():
        for param, annotation in params:
            base = annotation.split(" | ")[0]
            if base[:1].isupper() and base not in ("Buffer",) and f"{name}.{param}" not in nullable:
                calls.append([owner, name, params, param])
    # Only worklist objects can be had alive in one callback; a new SDK function on
    # another class must be added to `live` above.
    assert calls, "no handle parameter found in the stub"
    assert {owner for owner, *_ in calls} <= {"", "WorklistAnswers", "WorklistQuery"}
    server = orthanc(
        EVERY_HANDLE_PARAMETER % json.dumps(calls), interpreters=interpreters, extra=SCP_CONFIG
    )
    findscu_worklist(server)
    line = wait_for_log(server, "NONE-RESULTS ")
    assert line, server.log()
    results = json.loads(line[0].split("NONE-RESULTS ", 1)[1])
    assert results == {f"{owner}.{name}": "TypeError" for owner, name, _, _ in calls}
    assert server.get("/system").status_code == 200


# The callback hands its DicomInstance to a thread and returns while the thread
# still reads it: each read must give the right bytes or raise, never crash.
BORROWED_IN_A_THREAD = """
import hashlib
import json
import threading
import orthanc

def Reader(dicom, started):
    copies, error = set(), ''
    for i in range(400):
        try:
            copies.add(hashlib.sha256(dicom.GetInstanceData()).hexdigest())
        except orthanc.OrthancException as exception:
            error = exception.args[1]
            break
        if i == 2:
            started.set()
    started.set()
    orthanc.LogWarning('READER ' + json.dumps({'copies': sorted(copies), 'error': error}))

def OnStored(dicom, instanceId):
    started = threading.Event()
    threading.Thread(target=Reader, args=(dicom, started)).start()
    started.wait(10)

orthanc.RegisterOnStoredInstanceCallback(OnStored)
"""


def test_borrowed_instance_used_by_a_thread_after_the_callback(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(BORROWED_IN_A_THREAD, interpreters=interpreters)
    files = [make_dicom(f"THREAD-{i}", rows=1024, columns=1024) for i in range(12)]
    for data in files:
        assert server.post("/instances", data=data).status_code == 200
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while len(lines) < len(files) and time.monotonic() < deadline:
        lines = wait_for_log(server, "READER ")
        time.sleep(0.2)
    reports = [json.loads(line.split("READER ", 1)[1]) for line in lines]
    hashes = {hashlib.sha256(data).hexdigest() for data in files}
    assert len(reports) == len(files)
    for report in reports:
        copies = report["copies"]
        assert isinstance(copies, list) and len(copies) <= 1 and set(copies) <= hashes
        assert report["error"] == "this object belongs to a callback that has returned"
    assert server.get("/system").status_code == 200


# Buffers above 4 GiB: an anonymous mapping, never touched, so it costs no memory.
HUGE_BUFFERS = """
import mmap
import orthanc

HUGE = 2**32 + 16

def Transcode(dicom, allowedSyntaxes, allowNewSopInstanceUid):
    return mmap.mmap(-1, HUGE)

def Post(output, uri, **request):
    try:
        orthanc.RestApiPost('/instances', mmap.mmap(-1, HUGE))
        answer = 'no exception'
    except Exception as error:
        answer = '%s: %s' % (type(error).__name__, error)
    output.AnswerBuffer(answer, 'text/plain')

orthanc.RegisterTranscoderCallback(Transcode)
orthanc.RegisterRestCallback('/post-huge', Post)
"""


def test_buffers_above_4_gib_are_refused(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(HUGE_BUFFERS, interpreters=interpreters)
    assert server.get("/post-huge").text == (
        "ValueError: a buffer of 4294967312 bytes is too large for Orthanc here "
        "(at most 4294967295 bytes)"
    )
    instance = server.post("/instances", data=make_dicom("HUGE")).json()["ID"]
    # The Python transcoder fails; Orthanc then transcodes with its own.
    response = server.post(
        f"/instances/{instance}/modify",
        data=json.dumps({"Transcode": "1.2.840.10008.1.2", "Force": True}),
    )
    assert response.status_code == 200
    assert wait_for_log(server, "transcoder callback: a buffer of 4294967312 bytes is too large")
    assert server.get("/system").status_code == 200


# Bytes that are not UTF-8 reach Python as lone surrogates ("surrogateescape").
NOT_UTF8 = """
import orthanc

def Filter(uri, **request):
    print('filter sees', request['headers'].get('x-name'))
    return True

def Bad(output, uri, **request):
    raise ValueError('cannot serve ' + request['headers']['x-name'])

orthanc.RegisterIncomingHttpRequestFilter(Filter)
orthanc.RegisterRestCallback('/bad(.*)', Bad)
"""


def test_text_that_is_not_utf8_is_printed_and_reported(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(NOT_UTF8, interpreters=interpreters)
    answer = raw_request(server, b"GET /bad HTTP/1.0\r\nX-Name: caf\xe9\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 500") or answer.startswith(b"HTTP/1.1 500"), answer[:80]
    lines = server.log().splitlines()
    assert "filter sees caf\\udce9" in lines  # print() output, escaped
    assert "ValueError: cannot serve caf\\udce9" in lines  # the traceback's last line
    assert server.get("/system").status_code == 200
