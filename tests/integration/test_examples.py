"""The scripts in examples/ do what their comments say, with 1 and 2 interpreters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import upload, wait_for_log

pytestmark = pytest.mark.dicom

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_sample_script(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(example("sample.py"), interpreters=interpreters)
    assert server.get("/toto").text == "ok\n"
    assert server.get("/tata").text == "ok\n"
    where = server.get("/python/where").json()
    assert where["interpreters"] == interpreters
    assert 0 <= where["interpreter"] < interpreters
    assert server.log().count(f"Sample script loaded in {interpreters} interpreter(s)") == 1


def test_authorization_example(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(
        example("authorization.py"), interpreters=interpreters, extra={"ExampleTokens": ["t0k3n"]}
    )
    assert server.get("/system").status_code == 200
    assert server.get("/patients").status_code == 403
    assert server.get("/patients", headers={"token": "wrong"}).status_code == 403
    assert server.get("/patients", headers={"token": "t0k3n"}).status_code == 200
    assert "denied /patients from 127.0.0.1" in server.log()


def test_autorouting_example(orthanc: StartOrthanc, interpreters: int) -> None:
    target = orthanc("import orthanc\n")
    source = orthanc(
        example("autorouting.py"),
        interpreters=interpreters,
        extra={
            "StableAge": 1,
            "ExampleRouteTo": "target",
            "DicomModalities": {"target": ["ORTHANC", "127.0.0.1", target.dicom_port]},
        },
    )
    study = upload(source, make_dicom("ROUTED"))["ParentStudy"]
    assert wait_for_log(source, f"routing study {study} to target")
    deadline = time.monotonic() + 30
    while not target.get("/studies").json() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.get("/studies").json() == [study]  # the same study ID on both


def test_report_example(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(example("report.py"), interpreters=interpreters)
    study = None
    for _ in range(3):
        study = upload(server, make_dicom("REPORT", study_uid="1.2.3.4.5"))["ParentStudy"]
    report = server.get(f"/example/report/{study}").json()
    assert report["instances"] == 3
    assert sum(report["histogram"]) == 3 * 16  # 3 images of 4x4 pixels
    assert report["histogram"][0] == 3 * 16  # pixel values 0..15


def test_storage_backend_example(orthanc: StartOrthanc, interpreters: int, tmp_path: Path) -> None:
    folder = tmp_path / "example-storage"
    server = orthanc(
        example("storage_backend.py"),
        interpreters=interpreters,
        extra={"ExampleStorageFolder": str(folder)},
    )
    dicom = make_dicom("BACKEND")
    instance = upload(server, dicom)["ID"]
    assert any(path.is_file() for path in folder.rglob("*"))
    assert server.stop() == 0
    server.start()
    assert server.get(f"/instances/{instance}/file").content == dicom
    assert server.session.delete(f"{server.url}/instances/{instance}", timeout=60).ok
    assert not any(path.is_file() for path in folder.rglob("*"))
