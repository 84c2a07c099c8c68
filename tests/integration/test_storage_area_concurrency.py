"""RegisterStorageArea (src/storage_area.cpp) read and written by many clients at once,
with Orthanc 1.13's storage loader threads: nothing is lost and nothing corrupted, before
and after a restart."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from pydicom.uid import generate_uid

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .orthanc_server import OrthancServer

# The bytes go through Python both ways: stored reversed, reversed back by Read.
STORAGE = """
import os
import orthanc

ROOT = {root!r}

def Create(uuid, contentType, data):
    path = os.path.join(ROOT, uuid)
    with open(path + '.tmp', 'wb') as f:
        f.write(data[::-1])
    os.rename(path + '.tmp', path)

def Read(uuid, contentType):
    with open(os.path.join(ROOT, uuid), 'rb') as f:
        return f.read()[::-1]

def Remove(uuid, contentType):
    os.remove(os.path.join(ROOT, uuid))

orthanc.RegisterStorageArea(Create, Read, Remove)
"""

# No cache in front of the storage area, so every read reaches Read; the loader threads
# of Orthanc >= 1.13 read files (and preload an archive's instances) concurrently.
# Older versions ignore the options they do not know.
OPTIONS = {
    "MaximumStorageCacheSize": 0,
    "DicomParserCacheSize": 0,
    "StorageLoaderThreadsCount": 4,
    "SequentialDicomReaderThreadsCount": 4,
}

SEEDED = 6  # instances of one study, stored before the concurrent phase
WRITERS, WRITTEN = 2, 6  # clients uploading while others read, and their uploads each
READERS, PASSES = 2, 3  # clients reading the seeded instances, and their passes
TIME_LIMIT_S = 60.0


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(server: OrthancServer, data: bytes) -> dict[str, str]:
    # One request each, no shared session: requests.Session is not thread-safe.
    answer = requests.post(server.url + "/instances", data=data, timeout=60)
    assert answer.status_code == 200, answer.text
    stored: dict[str, str] = answer.json()
    return stored


def read_file(server: OrthancServer, instance: str) -> bytes:
    answer = requests.get(f"{server.url}/instances/{instance}/file", timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.content


def archive_digests(server: OrthancServer, study: str) -> list[str]:
    """The checksums of the DICOM files in the study's ZIP archive, sorted."""
    answer = requests.get(f"{server.url}/studies/{study}/archive", timeout=60)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        return sorted(
            digest(archive.read(name)) for name in archive.namelist() if not name.endswith("/")
        )


def test_concurrent_reads_and_writes_in_two_interpreters_lose_and_corrupt_nothing(
    orthanc: StartOrthanc, tmp_path: Path
) -> None:
    # Two interpreters only: with one, the main interpreter serves the same calls one
    # at a time (test_storage_area.py runs a storage area with one), and each run costs
    # a restart.
    root = tmp_path / "python-storage"
    root.mkdir()
    server = orthanc(STORAGE.format(root=str(root)), interpreters=2, extra=OPTIONS)
    deadline = time.monotonic() + TIME_LIMIT_S

    seeded: dict[str, str] = {}  # instance ID -> checksum of what the client uploaded
    seed_study = ""
    study_uid = generate_uid()
    for _ in range(SEEDED):
        data = make_dicom("SEED", study_uid=study_uid, rows=32, columns=32)
        answer = upload(server, data)
        seeded[answer["ID"]] = digest(data)
        seed_study = answer["ParentStudy"]

    def writer(index: int) -> dict[str, str]:
        """Uploads new instances, each read back at once."""
        written = {}
        for k in range(WRITTEN):
            assert time.monotonic() < deadline, "the writers ran past their time limit"
            data = make_dicom(f"WRITER-{index}-{k}", rows=32, columns=32)
            instance = upload(server, data)["ID"]
            assert digest(read_file(server, instance)) == digest(data)
            written[instance] = digest(data)
        return written

    def reader(_: int) -> int:
        """Reads every seeded instance, PASSES times; returns the reads."""
        reads = 0
        for _ in range(PASSES):
            for instance, expected in seeded.items():
                assert time.monotonic() < deadline, "the readers ran past their time limit"
                assert digest(read_file(server, instance)) == expected, instance
                reads += 1
        return reads

    with ThreadPoolExecutor(WRITERS + READERS + 1) as pool:
        writers = [pool.submit(writer, i) for i in range(WRITERS)]
        readers = [pool.submit(reader, i) for i in range(READERS)]
        archive = pool.submit(archive_digests, server, seed_study)
        assert archive.result() == sorted(seeded.values())
        assert sum(future.result() for future in readers) == READERS * PASSES * SEEDED
        uploaded = dict(seeded)
        for future in writers:
            uploaded.update(future.result())

    assert len(uploaded) == SEEDED + WRITERS * WRITTEN
    assert sorted(server.get("/instances").json()) == sorted(uploaded)
    assert not list(root.glob("*.tmp"))
    listed = server.get("/python/interpreters").json()["Interpreters"]
    assert [entry["Index"] for entry in listed] == [0, 1]
    assert all(entry["Calls"] > 0 for entry in listed), listed  # both served the clients

    assert server.stop() == 0
    server.start()
    assert sorted(server.get("/instances").json()) == sorted(uploaded)
    for instance, expected in uploaded.items():
        assert digest(read_file(server, instance)) == expected, instance
    assert archive_digests(server, seed_study) == sorted(seeded.values())
