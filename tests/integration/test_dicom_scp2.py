"""The SCP callbacks with the DICOM connection (SDK 1.12.10: RegisterFindCallback2,
RegisterWorklistCallback2, RegisterMoveCallback3), driven by DCMTK clients.

On a plugin built with an older SDK (Debian 12's 1.10.1) the registrations must be
absent and name the Orthanc version that has them.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import StartOrthanc
from .helpers import SCP_CONFIG, findscu, installed_sdk, move_study, wait_for_log

pytestmark = pytest.mark.dicom

HAS_CONNECTION = installed_sdk() >= (1, 12, 10)

SCP2 = """
import json
import orthanc

kept = []

def Describe(connection):
    return '%s@%s -> %s' % (connection.GetConnectionRemoteAet(),
                            connection.GetConnectionRemoteIp(),
                            connection.GetConnectionCalledAet())

def OnFind(answers, query, connection):
    orthanc.LogWarning('C-FIND2 ' + Describe(connection))
    answer = {'PatientName': 'PY2-' + query.GetFindQueryValue(1),
              'QueryRetrieveLevel': 'STUDY'}
    answers.FindAddAnswer(orthanc.CreateDicom(json.dumps(answer), None,
                                              orthanc.CreateDicomFlags.NONE))

def OnWorklist(answers, query, connection):
    orthanc.LogWarning('WORKLIST2 ' + Describe(connection))
    content = {'PatientName': 'WORKLIST2^MR',
               'ScheduledProcedureStepSequence': [{'Modality': 'MR'}]}
    dicom = orthanc.CreateDicom(json.dumps(content), None, orthanc.CreateDicomFlags.NONE)
    if query.WorklistIsMatch(dicom):
        answers.WorklistAddAnswer(query, dicom)

def Create(connection, **request):
    kept.append(connection)  # borrowed: valid during this call only
    orthanc.LogWarning('C-MOVE3 %s %s' % (Describe(connection), json.dumps(request, sort_keys=True)))
    return {'study': request['StudyInstanceUID']}

def Size(driver):
    return 1

def Apply(driver):
    try:
        kept[0].GetConnectionRemoteAet()
    except Exception as error:
        orthanc.LogWarning('late connection: %s' % type(error).__name__)

def Free(driver):
    orthanc.LogWarning('C-MOVE3 freed %s' % driver['study'])

orthanc.RegisterFindCallback2(OnFind)
orthanc.RegisterWorklistCallback2(OnWorklist)
orthanc.RegisterMoveCallback3(Create, Size, Apply, Free)
"""


def test_scp_callbacks_with_the_dicom_connection(orthanc: StartOrthanc, interpreters: int) -> None:
    if not HAS_CONNECTION:
        server = orthanc(
            "import orthanc\n"
            "try:\n"
            "    orthanc.RegisterFindCallback2(print)\n"
            "except AttributeError as error:\n"
            "    orthanc.LogWarning('error: %s' % error)\n",
            interpreters=interpreters,
        )
        assert "error: orthanc.RegisterFindCallback2 needs Orthanc 1.12.10 or newer" in server.log()
        return

    server = orthanc(SCP2, interpreters=interpreters, extra=SCP_CONFIG)
    output = findscu(
        server, "-S", "-aet", "FINDSCU", "-aec", "ORTHANC",
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=TEST",
    )  # fmt: skip
    assert "PY2-TEST" in output
    assert "C-FIND2 FINDSCU@127.0.0.1 -> ORTHANC" in server.log()

    output = findscu(
        server, "-W", "-aet", "WLSCU", "-aec", "ORTHANC",
        "-k", "ScheduledProcedureStepSequence[0].Modality=MR", "-k", "PatientName=",
    )  # fmt: skip
    assert "WORKLIST2^MR" in output
    assert "WORKLIST2 WLSCU@127.0.0.1 -> ORTHANC" in server.log()

    move_study(server, "1.2.3.4")
    lines = wait_for_log(server, r"C-MOVE3 MOVESCU@")
    assert len(lines) == 1, server.log()
    match = re.search(r"C-MOVE3 (\S+) -> (\S+) (\{.*\})$", lines[0])
    assert match, lines[0]
    assert match.group(1, 2) == ("MOVESCU@127.0.0.1", "ORTHANC")
    payload = json.loads(match.group(3))
    assert payload == {
        "AccessionNumber": "",
        "Level": "STUDY",
        "OriginatorID": payload["OriginatorID"],
        "PatientID": "",
        "SOPInstanceUID": "",
        "SeriesInstanceUID": "",
        "StudyInstanceUID": "1.2.3.4",
        "TargetAET": "TARGET",
    }
    assert wait_for_log(server, "C-MOVE3 freed 1.2.3.4")
    # The connection kept by the script is no longer usable after its callback.
    assert wait_for_log(server, "late connection: "), server.log()
