"""Scale-out: two Orthanc processes share a PostgreSQL index (Debian postgresql and
orthanc-postgresql, started here on loopback) and one storage folder, each with this
plugin and 2 interpreters."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import free_ports

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import upload

# Debian's newest installed PostgreSQL (15 on Debian 12, 18 on forky).
POSTGRES_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=None
)
INDEX_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"


def as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture
def postgres() -> Iterator[int]:
    """A PostgreSQL server on 127.0.0.1 with an empty "orthanc" database; its port."""
    folder = Path(tempfile.mkdtemp(prefix="opm-postgres-"))
    os.chmod(folder, 0o755)
    data = folder / "data"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    (port,) = free_ports(1)
    subprocess.run(
        as_postgres(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (folder / "postgres.log").open("wb")
    server = subprocess.Popen(
        as_postgres(
            str(POSTGRES_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(data),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while (
            subprocess.run(
                [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            ).returncode
            != 0
        ):
            assert server.poll() is None, (folder / "postgres.log").read_text()
            assert time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.2)
        subprocess.run(
            [
                str(POSTGRES_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "orthanc",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield port
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown of the server we started
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


NAMES = """
import json
import orthanc

def Names(output, uri, **request):
    patients = json.loads(orthanc.RestApiGet('/patients?expand'))
    names = sorted(p['MainDicomTags']['PatientName'] for p in patients)
    output.AnswerBuffer(json.dumps({'names': names,
                                    'interpreter': orthanc.GetInterpreterIndex()}),
                        'application/json')

orthanc.RegisterRestCallback('/python/patient-names', Names)
"""


def test_two_orthancs_share_a_postgresql_index_and_a_storage_folder(
    orthanc: StartOrthanc, postgres: int, tmp_path: Path
) -> None:
    storage = tmp_path / "shared-storage"
    shared = {
        "StorageDirectory": str(storage),
        "PostgreSQL": {
            "EnableIndex": True,
            "EnableStorage": False,
            "Host": "127.0.0.1",
            "Port": postgres,
            "Database": "orthanc",
            "Username": "postgres",
            "Password": "",
            "EnableSsl": False,
            "Lock": False,
        },
    }
    servers = []
    for _ in range(2):
        server = orthanc(NAMES, interpreters=2, start=False)
        server.config.update(shared)
        server.config["Plugins"] = [*server.config["Plugins"], INDEX_PLUGIN]
        server.start()
        servers.append(server)
    first, second = servers

    dicom = make_dicom("SHARED", "SHARED^PATIENT")
    instance = upload(first, dicom)["ID"]
    assert second.get("/python/patient-names").json()["names"] == ["SHARED^PATIENT"]
    assert second.get(f"/instances/{instance}/file").content == dicom
    upload(second, make_dicom("OTHER", "OTHER^PATIENT"))
    answers = [first.get("/python/patient-names").json() for _ in range(4)]
    assert all(a["names"] == ["OTHER^PATIENT", "SHARED^PATIENT"] for a in answers)
    assert {a["interpreter"] for a in answers} == {0, 1}
