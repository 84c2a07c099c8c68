"""RegisterChunkedRestCallback (src/rest.cpp), RegisterHttpAuthentication
(src/http_auth.cpp, SDK 1.12.9) and AdoptDicomInstance (src/storage_area.cpp,
SDK 1.12.8), with 1 and 2 interpreters.

On a plugin built with an older SDK the last two must be absent and name the
Orthanc version that has them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import check_needs_newer_orthanc, installed_sdk, wait_for_log

CHUNKED = """
import hashlib
import json
import orthanc

class Reader:
    def __init__(self, uri, method):
        self.created_in = orthanc.GetInterpreterIndex()
        self.seen_in = {self.created_in}
        self.hash = hashlib.sha256()
        self.chunks = 0
        self.size = 0
        self.method = method

    def AddChunk(self, data):
        self.seen_in.add(orthanc.GetInterpreterIndex())
        self.hash.update(data)
        self.chunks += 1
        self.size += len(data)

    def Execute(self, output):
        self.seen_in.add(orthanc.GetInterpreterIndex())
        output.AnswerBuffer(json.dumps({
            'method': self.method, 'sha256': self.hash.hexdigest(), 'size': self.size,
            'chunks': self.chunks, 'interpreters': sorted(self.seen_in)}), 'application/json')

def Create(uri, **request):
    return Reader(uri, request['method'])

def Get(output, uri, **request):
    output.AnswerBuffer('get %s %s' % (request['groups'][0], orthanc.GetInterpreterIndex()),
                       'text/plain')

def NoReader(uri, **request):
    return None

class Failing(Reader):
    def AddChunk(self, data):
        raise ValueError('refused chunk')

orthanc.RegisterChunkedRestCallback('/upload/(.*)', Get, Create, None, Create)
orthanc.RegisterChunkedRestCallback('/no-reader', None, NoReader, None, None)
orthanc.RegisterChunkedRestCallback('/failing', None, lambda uri, **r: Failing(uri, 'POST'),
                                    None, None)
orthanc.RegisterRestCallback('/plain', lambda output, uri, **r: output.AnswerBuffer('plain',
                                                                                    'text/plain'))
for args in [('/plain', None, Create, None, None), ('/upload/(.*)', None, Create, None, None),
             ('/none', None, None, None, None), ('/bad', 'not callable', None, None, None)]:
    try:
        orthanc.RegisterChunkedRestCallback(*args)
    except (orthanc.OrthancException, ValueError, TypeError) as error:
        orthanc.LogWarning('refused %s: %s' % (args[0], error))
"""


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_rest_callback(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(CHUNKED, interpreters=interpreters)
    log = server.log()
    # Misuse is refused at registration, the script goes on.
    assert "refused /plain: " in log
    assert "refused /upload/(.*): " in log and "other HTTP methods" in log
    assert "refused /none: RegisterChunkedRestCallback needs at least one handler" in log
    assert "refused /bad: RegisterChunkedRestCallback: getHandler must be callable" in log

    body = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256(body).hexdigest()

    # A body sent with Transfer-Encoding: chunked, and one with a Content-Length.
    chunked = server.post("/upload/a", data=_pieces(body, 64 * 1024))
    assert chunked.status_code == 200, chunked.text
    plain = server.session.put(f"{server.url}/upload/b", data=body, timeout=60)
    assert plain.status_code == 200, plain.text
    for answer, method in ((chunked, "POST"), (plain, "PUT")):
        result = answer.json()
        assert result["method"] == method
        assert (result["sha256"], result["size"]) == (expected, len(body))
        assert result["chunks"] >= 1
        # AddChunk and Execute ran in the interpreter that created the reader.
        assert len(result["interpreters"]) == 1

    assert server.get("/upload/x").text.startswith("get x ")
    assert server.session.delete(f"{server.url}/upload/x", timeout=60).status_code == 405
    assert server.get("/no-reader").status_code == 405

    # Parallel uploads: each reader stays in its interpreter; all interpreters serve.
    def upload(i: int) -> dict[str, object]:
        data = body[: 1000 * (i + 1)]
        answer = requests.post(f"{server.url}/upload/{i}", data=_pieces(data, 777), timeout=60)
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        assert result["sha256"] == hashlib.sha256(data).hexdigest()
        return result

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload, range(32)))
    assert all(len(r["interpreters"]) == 1 for r in results)  # type: ignore[arg-type]
    used = {r["interpreters"][0] for r in results}  # type: ignore[index]
    assert used == set(range(interpreters))

    # A reader that is not one, or that raises: an error answer, the traceback in
    # the log, and the server keeps serving.
    assert server.post("/no-reader", data=b"x").status_code == 500
    assert "the reader must be an object with AddChunk(data) and Execute(output)" in server.log()
    assert server.post("/failing", data=b"x").status_code == 500
    assert wait_for_log(server, "ValueError: refused chunk")
    assert server.get("/plain").text == "plain"
    assert server.post("/upload/again", data=b"abc").json()["size"] == 3


AUTHENTICATION = """
import orthanc

def Authenticate(uri, ip, headers, get):
    if uri == '/system' or uri.startswith('/public'):
        return orthanc.HttpAuthenticationStatus.GRANTED
    if uri.startswith('/app'):
        return orthanc.HttpAuthenticationStatus.REDIRECT, '/login.html'
    token = headers.get('token')
    if token == 'crash':
        raise RuntimeError('authentication backend down')
    if token == 'malformed':
        return 'yes'
    if token == 'boolean':
        return False  # a filter's habit: must not read as GRANTED (0)
    if token == 'mallory':
        return orthanc.HttpAuthenticationStatus.FORBIDDEN
    if token is not None:
        return orthanc.HttpAuthenticationStatus.GRANTED, ('user=' + token + '@' + ip)
    return orthanc.HttpAuthenticationStatus.UNAUTHORIZED

def WhoAmI(output, uri, **request):
    payload = request.get('authenticationPayload')
    output.AnswerBuffer(repr(payload) + ' in %d' % orthanc.GetInterpreterIndex(), 'text/plain')

orthanc.RegisterHttpAuthentication(Authenticate)
orthanc.RegisterRestCallback('/(public|private)/whoami', WhoAmI)
try:
    orthanc.RegisterHttpAuthentication(Authenticate)
except orthanc.OrthancException as error:
    orthanc.LogWarning('second registration: %s' % error)
"""


def test_http_authentication(orthanc: StartOrthanc, interpreters: int) -> None:
    if installed_sdk() < (1, 12, 9):
        check_needs_newer_orthanc(
            orthanc, interpreters, "orthanc.RegisterHttpAuthentication(print)", "1.12.9"
        )
        return

    # Orthanc's own authentication is on and knows no user: only Python decides.
    server = orthanc(
        AUTHENTICATION,
        interpreters=interpreters,
        extra={"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}},
    )
    assert "second registration: " in server.log()

    assert server.get("/public/whoami").text.startswith("None in ")
    seen = set()
    for _ in range(8):
        answer = server.get("/private/whoami", headers={"token": "bob"})
        assert answer.status_code == 200
        payload, _, index = answer.text.partition(" in ")
        assert payload == "b'user=bob@127.0.0.1'"
        seen.add(int(index))
    assert seen == set(range(interpreters))

    assert server.get("/private/whoami").status_code == 401
    assert server.get("/private/whoami", auth=("alice", "secret")).status_code == 401
    assert server.get("/private/whoami", headers={"token": "mallory"}).status_code == 403
    redirect = server.get("/app/index.html", allow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["Location"].endswith("/login.html")

    # A callback that raises or answers nonsense denies the request (fail closed),
    # with the reason in the log; the server keeps serving.
    for token, reason in (
        ("crash", "RuntimeError: authentication backend down"),
        ("malformed", "returned 'yes' instead of an HttpAuthenticationStatus"),
        ("boolean", "returned False instead of an HttpAuthenticationStatus"),
    ):
        denied = server.get("/private/whoami", headers={"token": token})
        assert denied.status_code not in (200, 307), denied.text
        assert "payload" not in denied.text
        assert wait_for_log(server, reason), server.log()
    assert server.get("/private/whoami", headers={"token": "carol"}).status_code == 200


ADOPT = """
import json
import os
import orthanc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'files')
os.makedirs(ROOT, exist_ok=True)

def Create(uuid, contentType, compressionType, data, dicomInstance):
    path = os.path.join(ROOT, uuid)
    with open(path, 'wb') as f:
        f.write(data)
    orthanc.LogWarning('create %s' % uuid)
    return 0, ('own:' + path).encode()

def ReadRange(uuid, contentType, start, size, customData):
    kind, path = customData.decode().split(':', 1)
    orthanc.LogWarning('read %s %s' % (kind, path))
    with open(path, 'rb') as f:
        f.seek(start)
        return 0, f.read(size)

def Remove(uuid, contentType, customData):
    kind, path = customData.decode().split(':', 1)
    if kind == 'own':
        os.remove(path)
    orthanc.LogWarning('remove %s %s' % (kind, path))
    return 0

def Adopt(output, uri, **request):
    path = request['body'].decode()
    with open(path, 'rb') as f:
        dicom = f.read()
    instance, attachment, status = orthanc.AdoptDicomInstance(dicom, ('adopted:' + path).encode())
    output.AnswerBuffer(json.dumps([instance, attachment, status]), 'application/json')

orthanc.RegisterStorageArea3(Create, ReadRange, Remove)
orthanc.RegisterRestCallback('/adopt', Adopt)
"""


def test_adopt_dicom_instance(orthanc: StartOrthanc, interpreters: int, tmp_path: Path) -> None:
    if installed_sdk() < (1, 12, 8):
        check_needs_newer_orthanc(
            orthanc, interpreters, "orthanc.AdoptDicomInstance(b'', b'')", "1.12.8"
        )
        return

    server = orthanc(ADOPT, interpreters=interpreters, extra={"MaximumStorageCacheSize": 0})
    outside = tmp_path / "outside.dcm"
    dicom = make_dicom("ADOPTED")
    outside.write_bytes(dicom)

    answer = server.post("/adopt", data=str(outside).encode())
    assert answer.status_code == 200, answer.text
    instance, attachment, status = json.loads(answer.text)
    assert status == 0  # StoreStatus.SUCCESS
    assert server.get(f"/instances/{instance}").json()["ID"] == instance
    assert "create " not in server.log()  # Orthanc did not store a copy
    attachments = server.get(f"/instances/{instance}/attachments/dicom/info").json()
    assert attachments["Uuid"] == attachment

    # Read back through the storage area's readRange, with the custom data.
    assert server.get(f"/instances/{instance}/file").content == dicom
    assert wait_for_log(server, f"read adopted {outside}")

    # Adopting the same file again: already stored, the same instance.
    again = json.loads(server.post("/adopt", data=str(outside).encode()).text)
    assert again[0] == instance and again[2] == 1  # StoreStatus.ALREADY_STORED

    # Deleting it calls remove with the custom data; the adopted file stays.
    assert server.session.delete(f"{server.url}/instances/{instance}", timeout=60).ok
    assert wait_for_log(server, f"remove adopted {outside}")
    assert outside.read_bytes() == dicom
