"""Callback families of SDK 1.12.8+ (src/storage_area.cpp's RegisterStorageArea3,
src/audit_log.cpp), with 1 and 2 interpreters.

On a plugin built with an older SDK (Debian 12's 1.10.1) the registrations must be
absent and name the Orthanc version that has them.
"""

from __future__ import annotations

import re

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import check_needs_newer_orthanc, installed_sdk, wait_for_log

STORAGE3 = """
import os
import orthanc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'files')
os.makedirs(ROOT, exist_ok=True)

def Create(uuid, contentType, compressionType, data, dicomInstance):
    path = os.path.join(ROOT, uuid)
    with open(path, 'wb') as f:
        f.write(data)
    kind = 'instance' if dicomInstance is not None else 'no instance'
    orthanc.LogWarning('create %s %d %s' % (uuid, contentType, kind))
    return 0, ('path=' + path).encode()

def ReadRange(uuid, contentType, start, size, customData):
    path = customData.decode()[len('path='):]
    orthanc.LogWarning('read %s custom=%s' % (uuid, customData.decode()))
    with open(path, 'rb') as f:
        f.seek(start)
        return 0, f.read(size)

def Remove(uuid, contentType, customData):
    os.remove(customData.decode()[len('path='):])
    orthanc.LogWarning('remove %s' % uuid)
    return 0

orthanc.RegisterStorageArea3(Create, ReadRange, Remove)
"""


def test_storage_area3_keeps_custom_data(orthanc: StartOrthanc, interpreters: int) -> None:
    if installed_sdk() < (1, 12, 8):
        check_needs_newer_orthanc(
            orthanc, interpreters, "orthanc.RegisterStorageArea3(print, print, print)", "1.12.8"
        )
        return

    # No storage cache: every read of the file reaches readRange.
    server = orthanc(STORAGE3, interpreters=interpreters, extra={"MaximumStorageCacheSize": 0})
    dicom = make_dicom("STORAGE3")
    uploaded = server.post("/instances", data=dicom)
    assert uploaded.status_code == 200, uploaded.text
    instance = uploaded.json()["ID"]
    files = server.folder / "files"
    stored = {p.name: p.read_bytes() for p in files.iterdir()}
    assert dicom in stored.values()  # the DICOM file, uncompressed
    assert re.search(r"create \S+ 1 instance", server.log())

    answer = server.get(f"/instances/{instance}/file")
    assert answer.status_code == 200
    assert answer.content == dicom
    assert re.search(rf"read \S+ custom=path={re.escape(str(files))}/\S+", server.log())

    assert server.session.delete(f"{server.url}/instances/{instance}", timeout=60).ok
    assert wait_for_log(server, r"remove \S+")
    assert dicom not in {p.read_bytes() for p in files.iterdir()}


AUDIT = """
import orthanc

def Handler(sourcePlugin, userId, resourceType, resourceId, action, logData):
    orthanc.LogWarning('audit: %s %s %d %s %s %r' % (sourcePlugin, userId, resourceType,
                                                     resourceId, action, logData))

def Emit(output, uri, **request):
    orthanc.EmitAuditLog('python', 'alice', orthanc.ResourceType.STUDY, 'study-1', 'viewed',
                         b'\\x00details')
    output.AnswerBuffer('ok', 'text/plain')

orthanc.RegisterAuditLogHandler(Handler)
orthanc.RegisterRestCallback('/emit', Emit)
"""


def test_audit_logs_reach_the_python_handler(orthanc: StartOrthanc, interpreters: int) -> None:
    if installed_sdk() < (1, 12, 9):
        check_needs_newer_orthanc(
            orthanc, interpreters, "orthanc.RegisterAuditLogHandler(print)", "1.12.9"
        )
        return

    server = orthanc(AUDIT, interpreters=interpreters)
    assert server.get("/emit").text == "ok"
    study = 1  # ResourceType.STUDY
    lines = wait_for_log(server, "audit: ")
    assert lines == [lines[0]] and lines[0].endswith(
        f"audit: python alice {study} study-1 viewed b'\\x00details'"
    ), server.log()


STREAM = """
import orthanc

def Stream(output, uri, **request):
    output.StartStreamAnswer('text/plain')
    for i in range(3):
        output.SendStreamChunk(('chunk %d;' % i).encode())

orthanc.RegisterRestCallback('/stream', Stream)
"""


def test_streamed_answers(orthanc: StartOrthanc, interpreters: int) -> None:
    if installed_sdk() < (1, 12, 6):
        server = orthanc(
            "import orthanc\n"
            "def Stream(output, uri, **request):\n"
            "    try:\n"
            "        output.StartStreamAnswer('text/plain')\n"
            "    except AttributeError as error:\n"
            "        output.AnswerBuffer(str(error), 'text/plain')\n"
            "orthanc.RegisterRestCallback('/stream', Stream)\n",
            interpreters=interpreters,
        )
        answer = server.get("/stream").text
        assert answer.startswith("orthanc.RestOutput.StartStreamAnswer needs Orthanc 1.12.6")
        return

    server = orthanc(STREAM, interpreters=interpreters)
    answer = server.get("/stream")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == "chunk 0;chunk 1;chunk 2;"
