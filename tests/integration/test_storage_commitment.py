"""Storage commitment SCP in Python (src/dicom_scp.cpp), driven by Orthanc's own SCU:
the server asks itself, over DICOM on loopback, to commit instances."""

from __future__ import annotations

import time

import pytest

from .conftest import StartOrthanc

pytestmark = pytest.mark.dicom

COMMITMENT = """
import orthanc

def Factory(jobId, transactionUid, sopClassUids, sopInstanceUids, remoteAet, calledAet):
    orthanc.LogWarning('commitment %s from %s to %s for %d instances in %d' % (
        transactionUid, remoteAet, calledAet, len(sopInstanceUids),
        orthanc.GetInterpreterIndex()))
    return {'creator': orthanc.GetInterpreterIndex()}

def Lookup(sopClassUid, sopInstanceUid, data):
    assert data['creator'] == orthanc.GetInterpreterIndex()
    if sopInstanceUid.endswith('.666'):
        return orthanc.StorageCommitmentFailureReason.NO_SUCH_OBJECT_INSTANCE
    return orthanc.StorageCommitmentFailureReason.SUCCESS

orthanc.RegisterStorageCommitmentScpCallback(Factory, Lookup)
"""


def test_storage_commitment_answers_come_from_python(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(COMMITMENT, interpreters=interpreters, start=False)
    # The server is its own remote modality (same AET, loopback, its DICOM port).
    server.config["DicomModalities"] = {"self": ["ORTHANC", "127.0.0.1", server.dicom_port]}
    server.start()
    instances = [
        {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "SOPInstanceUID": uid}
        for uid in ("1.2.3.1", "1.2.3.666")
    ]
    response = server.post(
        "/modalities/self/storage-commitment", json={"DicomInstances": instances}
    )
    assert response.status_code == 200, response.text
    path = response.json()["Path"]
    deadline = time.monotonic() + 30
    report = server.get(path).json()
    while report["Status"] == "Pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        report = server.get(path).json()
    assert report["Status"] == "Failure"  # one instance is missing
    assert report["Success"] == [instances[0]]
    (failure,) = report["Failures"]
    assert failure["SOPInstanceUID"] == "1.2.3.666"
    assert failure["FailureReason"] == 0x0112  # NoSuchObjectInstance
    assert "for 2 instances in" in server.log()
