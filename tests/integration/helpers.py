"""What several test modules use: waiting for log lines, uploads, DCMTK
clients, raw HTTP, the installed SDK version."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

from .conftest import StartOrthanc
from .orthanc_server import OrthancServer


def wait_for_log(server: OrthancServer, pattern: str, timeout: float = 30) -> list[str]:
    """The lines of the log matching `pattern`, waiting until there is at least one."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.log().splitlines() if re.search(pattern, line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def upload(server: OrthancServer, dicom: bytes) -> dict[str, str]:
    response = server.post("/instances", data=dicom)
    assert response.status_code == 200, response.text
    return dict(response.json())


def dcmtk(tool: str, server: OrthancServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a DCMTK client (findscu, movescu...) verbosely against the server's DICOM port."""
    return subprocess.run(
        [tool, "-v", *args, "127.0.0.1", str(server.dicom_port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def findscu(server: OrthancServer, *args: str) -> str:
    """Runs findscu against the server; it must end with a successful final response.
    Returns what it printed."""
    result = dcmtk("findscu", server, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received Final Find Response (Success)" in output
    return output


def storescu(
    server: OrthancServer, folder: Path, *files: bytes
) -> subprocess.CompletedProcess[str]:
    paths = []
    for i, data in enumerate(files):
        path = folder / f"file{i}.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    return subprocess.run(
        [
            "storescu",
            "-v",
            "-aet",
            "STORESCU",
            "-aec",
            "ORTHANC",
            "127.0.0.1",
            str(server.dicom_port),
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def move_study(server: OrthancServer, study_uid: str) -> subprocess.CompletedProcess[str]:
    """movescu: a study-level C-MOVE from MOVESCU to the (unknown) modality TARGET."""
    return dcmtk(
        "movescu",
        server,
        "-S",
        "-aet",
        "MOVESCU",
        "-aec",
        "ORTHANC",
        "-aem",
        "TARGET",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid}",
    )


SCP_CONFIG = {
    "DicomAlwaysAllowFind": True,
    "DicomAlwaysAllowFindWorklist": True,
    "DicomAlwaysAllowMove": True,
}


def raw_request(server: OrthancServer, request: bytes) -> bytes:
    """Sends bytes as they are (no client-side encoding) and returns the raw answer."""
    port = int(server.config["HttpPort"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def installed_sdk() -> tuple[int, ...]:
    """The version of the installed OrthancCPlugin.h (what the plugin was built with)."""
    header = Path("/usr/include/orthanc/OrthancCPlugin.h").read_text(errors="replace")
    return tuple(
        int(re.search(rf"#define\s+ORTHANC_PLUGINS_MINIMAL_{part}_NUMBER\s+(\d+)", header).group(1))  # type: ignore[union-attr]
        for part in ("MAJOR", "MINOR", "REVISION")
    )


# A route that calls another Python route through the REST API (nested calls).
NESTED = """
import json
import time
import orthanc

def Leaf(output, uri, **request):
    time.sleep(0.05)
    output.AnswerBuffer(json.dumps({'leaf': orthanc.GetInterpreterIndex()}), 'application/json')

def Middle(output, uri, **request):
    inner = json.loads(orthanc.RestApiGetAfterPlugins('/leaf'))
    inner['middle'] = orthanc.GetInterpreterIndex()
    output.AnswerBuffer(json.dumps(inner), 'application/json')

def Outer(output, uri, **request):
    inner = json.loads(orthanc.RestApiGetAfterPlugins('/middle'))
    inner['outer'] = orthanc.GetInterpreterIndex()
    output.AnswerBuffer(json.dumps(inner), 'application/json')

def Post(output, uri, **request):
    output.AnswerBuffer(orthanc.RestApiPostAfterPlugins('/echo', request['body']), 'text/plain')

def Echo(output, uri, **request):
    output.AnswerBuffer(request['body'], 'application/octet-stream')

orthanc.RegisterRestCallback('/leaf', Leaf)
orthanc.RegisterRestCallback('/middle', Middle)
orthanc.RegisterRestCallback('/outer', Outer)
orthanc.RegisterRestCallback('/post', Post)
orthanc.RegisterRestCallback('/echo', Echo)
"""


def check_needs_newer_orthanc(
    orthanc: StartOrthanc, interpreters: int, statement: str, version: str
) -> None:
    """On a plugin built with an older SDK, `statement` (a call of orthanc.X) raises
    an AttributeError that names the function and the Orthanc version that has it."""
    name = statement.split("(", 1)[0]
    server = orthanc(
        f"import orthanc\ntry:\n    {statement}\nexcept AttributeError as error:\n"
        "    orthanc.LogWarning('error: %s' % error)\n",
        interpreters=interpreters,
    )
    assert f"error: {name} needs Orthanc {version} or newer" in server.log()
