"""Callback families other than REST (src/on_change.cpp, src/instance_events.cpp,
src/dicom_scp.cpp), exercised by real clients: HTTP uploads, DCMTK and pynetdicom."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import SCP_CONFIG, dcmtk, findscu, move_study, storescu, upload, wait_for_log
from .orthanc_server import OrthancServer

pytestmark = pytest.mark.dicom

ON_CHANGE = """
import orthanc

def OnChange(changeType, resourceType, resourceId):
    index = orthanc.GetInterpreterIndex()
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        # A REST call from the callback: must not deadlock.
        system = orthanc.RestApiGet('/system')
        orthanc.LogWarning('change NEW_INSTANCE %s in %d, system %d bytes'
                           % (resourceId, index, len(system)))
    elif changeType == orthanc.ChangeType.ORTHANC_STARTED:
        orthanc.LogWarning('change ORTHANC_STARTED in %d' % index)
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        orthanc.LogWarning('change ORTHANC_STOPPED in %d' % index)
    elif changeType == orthanc.ChangeType.NEW_STUDY:
        orthanc.LogWarning('change NEW_STUDY type %d in %d' % (resourceType, index))

def Second(changeType, resourceType, resourceId):
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        orthanc.LogWarning('second callback saw %s' % resourceId)

orthanc.RegisterOnChangeCallback(OnChange)
orthanc.RegisterOnChangeCallback(Second)
"""


@pytest.mark.smoke
def test_on_change_in_order_in_one_interpreter(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(ON_CHANGE, interpreters=interpreters)
    assert wait_for_log(server, "change ORTHANC_STARTED in 0")
    ids = [upload(server, make_dicom(f"P{i}"))["ID"] for i in range(3)]
    seen = wait_for_log(server, "second callback saw " + ids[-1])
    assert seen
    log = server.log()
    changes = [m.group(1) for m in re.finditer(r"change NEW_INSTANCE (\S+) in 0", log)]
    assert changes == ids  # every change, in order, in interpreter 0
    assert "NEW_INSTANCE" not in "".join(re.findall(r"change NEW_INSTANCE \S+ in [1-9]", log))
    assert re.search(r"change NEW_STUDY type 1 in 0", log)  # ResourceType.STUDY == 1
    # The second registration is called too, after the first.
    assert log.index(f"change NEW_INSTANCE {ids[0]}") < log.index(f"second callback saw {ids[0]}")
    assert server.stop() == 0
    # ORTHANC_STOPPED where ORTHANC_STARTED went: the others run no thread to stop.
    assert re.findall(r"change ORTHANC_STOPPED in \d", server.log()) == [
        "change ORTHANC_STOPPED in 0"
    ]


SCHEDULER = """
import threading
import orthanc

TIMER = None

def Hello():
    global TIMER
    orthanc.LogWarning('tick in %d' % orthanc.GetInterpreterIndex())
    TIMER = threading.Timer(0.2, Hello)
    TIMER.start()

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        Hello()
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        if TIMER is not None:
            TIMER.cancel()
        orthanc.LogWarning('timer cancelled in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
"""


@pytest.mark.parametrize("interpreters", [1, 4])
def test_scheduler_pattern_stops_cleanly(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(SCHEDULER, interpreters=interpreters)
    assert wait_for_log(server, "tick in 0")
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 15
    log = server.log()
    assert "still run after" not in log
    assert re.findall(r"timer cancelled in \d", log) == ["timer cancelled in 0"]


INSTANCES = """
import io
import json
import orthanc
import pydicom

def OnStored(dicom, instanceId):
    tags = json.loads(dicom.GetInstanceSimplifiedJson())
    orthanc.LogWarning('stored %s patient=%s aet=%s origin=%d size=%d in %d' % (
        instanceId, tags['PatientID'], dicom.GetInstanceRemoteAet(),
        dicom.GetInstanceOrigin(), len(dicom.GetInstanceData()),
        orthanc.GetInterpreterIndex()))

def OnReceived(data, origin):
    ds = pydicom.dcmread(io.BytesIO(data))
    if ds.PatientID == 'DISCARD':
        return orthanc.ReceivedInstanceAction.DISCARD, None
    if ds.PatientID == 'MODIFY':
        ds.PatientName = 'MODIFIED^BY^PYTHON'
        out = io.BytesIO()
        ds.save_as(out)
        return orthanc.ReceivedInstanceAction.MODIFY, out.getvalue()
    if ds.PatientID == 'RAISE':
        raise RuntimeError('cannot decide')
    return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None

def OnCStore(dicom):
    tags = json.loads(dicom.GetInstanceSimplifiedJson())
    if tags['PatientID'] == 'REJECT':
        return 0xA700  # Refused: out of resources
    return 0

orthanc.RegisterOnStoredInstanceCallback(OnStored)
orthanc.RegisterReceivedInstanceCallback(OnReceived)
orthanc.RegisterIncomingCStoreInstanceFilter(OnCStore)
"""


def patient_names(server: OrthancServer) -> dict[str, str]:
    names = {}
    for patient in server.get("/patients", params={"expand": ""}).json():
        tags = patient["MainDicomTags"]
        names[tags["PatientID"]] = tags.get("PatientName", "")
    return names


def test_instance_callbacks_with_rest_uploads(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(INSTANCES, interpreters=interpreters)
    kept = upload(server, make_dicom("KEEP", "KEEP^ME"))
    lines = wait_for_log(server, f"stored {kept['ID']} ")
    assert len(lines) == 1
    assert "patient=KEEP aet= origin=" in lines[0]
    upload(server, make_dicom("MODIFY", "ORIGINAL^NAME"))
    for patient in ("DISCARD", "RAISE"):
        # Orthanc 1.10 answers 200 with "FilteredOut" and stores nothing.
        assert upload(server, make_dicom(patient))["Status"] == "FilteredOut"
    names = patient_names(server)
    assert names == {"KEEP": "KEEP^ME", "MODIFY": "MODIFIED^BY^PYTHON"}
    log = server.log()
    assert "RuntimeError: cannot decide" in log
    assert "exception in the ReceivedInstance callback" in log


@pytest.mark.smoke
def test_instance_callbacks_with_storescu(
    orthanc: StartOrthanc, interpreters: int, tmp_path: Path
) -> None:
    server = orthanc(INSTANCES, interpreters=interpreters)
    accepted = storescu(server, tmp_path, make_dicom("CSTORE-OK"))
    assert accepted.returncode == 0, accepted.stderr
    lines = wait_for_log(server, "patient=CSTORE-OK aet=STORESCU")
    assert len(lines) == 1
    assert "origin=2" in lines[0]  # InstanceOrigin.DICOM_PROTOCOL
    rejected = storescu(server, tmp_path, make_dicom("REJECT"))
    output = rejected.stdout + rejected.stderr
    assert rejected.returncode != 0
    assert "0xa700" in output.lower() or "Refused: OutOfResources" in output, output
    assert set(patient_names(server)) == {"CSTORE-OK"}


HTTP_FILTER = """
import orthanc

def Filter(uri, **request):
    if uri.startswith('/raise'):
        raise ValueError('filter failed')
    if uri.startswith('/not-bool'):
        return 'yes'
    if request['headers'].get('x-token') == 'secret':
        return True
    orthanc.LogWarning('filter: method=%s ip=%s get=%s' % (
        request['method'], request['ip'], sorted(request['get'].items())))
    return uri.startswith('/system')

orthanc.RegisterIncomingHttpRequestFilter(Filter)
"""


def test_http_request_filter_fails_closed(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(HTTP_FILTER, interpreters=interpreters)
    assert server.get("/system").status_code == 200
    assert server.get("/patients", params={"a": "1"}).status_code == 403
    assert server.get("/patients", headers={"X-Token": "secret"}).status_code == 200
    assert server.get("/raise").status_code == 403
    assert server.get("/not-bool").status_code == 403
    log = server.log()
    assert "filter: method=1 ip=127.0.0.1 get=[('a', '1')]" in log
    assert "ValueError: filter failed" in log
    assert "returned 'yes' instead of True or False" in log


SCP = """
import json
import orthanc

def OnFind(answers, query, issuerAet, calledAet):
    tags = {query.GetFindQueryTagName(i): query.GetFindQueryValue(i)
            for i in range(query.GetFindQuerySize())}
    orthanc.LogWarning('C-FIND from %s to %s: %s' % (issuerAet, calledAet,
                                                     json.dumps(tags, sort_keys=True)))
    answer = {'PatientName': 'PY-' + tags.get('PatientName', ''),
              'StudyDescription': 'group %04x' % query.GetFindQueryTagGroup(0),
              'QueryRetrieveLevel': tags.get('QueryRetrieveLevel', '')}
    dicom = orthanc.CreateDicom(json.dumps(answer), None, orthanc.CreateDicomFlags.NONE)
    answers.FindAddAnswer(dicom)

def OnWorklist(answers, query, issuerAet, calledAet):
    for modality in ['MR', 'CT']:
        content = {'PatientName': 'WORKLIST^' + modality,
                   'ScheduledProcedureStepSequence': [{'Modality': modality}]}
        dicom = orthanc.CreateDicom(json.dumps(content), None, orthanc.CreateDicomFlags.NONE)
        if query.WorklistIsMatch(dicom):
            answers.WorklistAddAnswer(query, dicom)

def OnMove(**request):
    orthanc.LogWarning('C-MOVE ' + json.dumps(request, sort_keys=True))

orthanc.RegisterFindCallback(OnFind)
orthanc.RegisterWorklistCallback(OnWorklist)
orthanc.RegisterMoveCallback(OnMove)
"""
# Orthanc refuses C-FIND and C-MOVE from modalities it does not know, unless told.


def test_findscu_gets_the_python_answers(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(SCP, interpreters=interpreters, extra=SCP_CONFIG)
    output = findscu(
        server, "-S", "-aet", "FINDSCU", "-aec", "ORTHANC",
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=TEST", "-k", "StudyDescription=",
    )  # fmt: skip
    assert "PY-TEST" in output
    # The first tag of the query as Orthanc hands it over: (0008,0052) QueryRetrieveLevel.
    assert "[group 0008]" in output
    assert "Find Response: 1 (Pending)" in output
    assert "C-FIND from FINDSCU to ORTHANC" in server.log()


def test_findscu_worklist_gets_matching_python_answers(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(SCP, interpreters=interpreters, extra=SCP_CONFIG)
    output = findscu(
        server, "-W", "-k", "ScheduledProcedureStepSequence[0].Modality=MR", "-k", "PatientName="
    )
    assert "WORKLIST^MR" in output
    assert "WORKLIST^CT" not in output


def test_movescu_reaches_the_python_move_callback(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(SCP, interpreters=interpreters, extra=SCP_CONFIG)
    result = move_study(server, "1.2.3.4")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received Final Move Response (Success)" in output
    message_id = re.search(r"Sending Move Request \(MsgID (\d+)\)", output)
    assert message_id is not None, output
    lines = wait_for_log(server, "C-MOVE {")
    assert len(lines) == 1
    import json

    request = json.loads(lines[0].split("C-MOVE ", 1)[1])
    assert request == {
        "AccessionNumber": "",
        "Level": "STUDY",
        "OriginatorAET": "MOVESCU",
        "OriginatorID": int(message_id.group(1)),  # the C-MOVE request's message ID
        "PatientID": "",
        "SOPInstanceUID": "",
        "SeriesInstanceUID": "",
        "SourceAET": "ORTHANC",
        "StudyInstanceUID": "1.2.3.4",
        "TargetAET": "TARGET",
    }


DICOM_FILTER = """
import json
import orthanc

def Filter(dicom):
    patient = json.loads(dicom.GetInstanceSimplifiedJson())['PatientID']
    if patient == 'NOT-BOOL':
        return 1
    return patient != 'UNWANTED'

orthanc.RegisterIncomingDicomInstanceFilter(Filter)
"""


def test_incoming_dicom_instance_filter(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(DICOM_FILTER, interpreters=interpreters)
    assert upload(server, make_dicom("WANTED"))["Status"] == "Success"
    assert upload(server, make_dicom("UNWANTED"))["Status"] == "FilteredOut"
    failed = server.post("/instances", data=make_dicom("NOT-BOOL"))  # an error: refused
    assert failed.status_code != 200 or failed.json()["Status"] != "Success"
    assert set(patient_names(server)) == {"WANTED"}
    assert "must return True or False, not 1" in server.log()


ON_CHANGE_ERRORS = """
import time
import orthanc

def First(changeType, level, resource):
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        time.sleep(0.2)  # a backlog builds up
        raise ValueError('first callback failed on ' + resource)

def Second(changeType, level, resource):
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        orthanc.LogWarning('second callback saw ' + resource)
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        orthanc.LogWarning('second callback saw ORTHANC_STOPPED')

orthanc.RegisterOnChangeCallback(First)
orthanc.RegisterOnChangeCallback(Second)
"""


def test_on_change_exceptions_and_the_drain_before_stop(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(ON_CHANGE_ERRORS, interpreters=interpreters)
    ids = [upload(server, make_dicom(f"DRAIN-{i}"))["ID"] for i in range(8)]
    assert server.stop() == 0  # right away: most changes are still queued
    lines = server.log().splitlines()
    seen = [
        line.split("second callback saw ")[1] for line in lines if "second callback saw " in line
    ]
    # Each exception is reported, the next callback still runs, nothing is lost.
    assert seen == [*ids, "ORTHANC_STOPPED"]  # once: no other interpreter runs a thread
    for instance in ids:
        assert f"ValueError: first callback failed on {instance}" in lines
    assert "changes not delivered" not in server.log()


SCP_ERRORS = """
import orthanc

def OnCStore(dicom):
    raise ValueError('C-STORE filter failed')

def OnWorklist(answers, query, issuerAet, calledAet):
    raise ValueError('worklist callback failed')

def OnMove(**request):
    raise ValueError('move callback failed')

orthanc.RegisterIncomingCStoreInstanceFilter(OnCStore)
orthanc.RegisterWorklistCallback(OnWorklist)
orthanc.RegisterMoveCallback(OnMove)
"""

MOVE2_ERRORS = """
import orthanc

def Create(**request):
    return request['StudyInstanceUID']

def Size(driver):
    return 1

def Apply(driver):
    raise ValueError('applyMove failed for ' + driver)

def Free(driver):
    orthanc.LogWarning('freeMove called for ' + driver)

orthanc.RegisterMoveCallback2(Create, Size, Apply, Free)
"""


def test_exceptions_in_scp_callbacks_are_dimse_failures(
    orthanc: StartOrthanc, interpreters: int, tmp_path: Path
) -> None:
    server = orthanc(SCP_ERRORS, interpreters=interpreters, extra=SCP_CONFIG)
    stored = storescu(server, tmp_path, make_dicom("FILTER-RAISES"))
    assert stored.returncode != 0
    assert "Received Store Response (Success)" not in stored.stdout + stored.stderr
    assert server.get("/patients").json() == []
    worklist = dcmtk("findscu", server, "-W", "-k", "PatientName=")
    output = worklist.stdout + worklist.stderr
    assert "Association Accepted" in output and "Received Final Find Response" in output
    assert "Received Final Find Response (Success)" not in output
    moved = move_study(server, "1.2.3.4")
    output = moved.stdout + moved.stderr
    assert "Association Accepted" in output and "Received Final Move Response" in output
    assert "Received Final Move Response (Success)" not in output
    log = server.log()
    for message in ("C-STORE filter failed", "worklist callback failed", "move callback failed"):
        assert f"ValueError: {message}" in log
    assert server.get("/system").status_code == 200

    server2 = orthanc(MOVE2_ERRORS, interpreters=interpreters, extra=SCP_CONFIG)
    moved = move_study(server2, "5.6.7.8")
    output = moved.stdout + moved.stderr
    assert "Received Final Move Response" in output
    assert "Received Final Move Response (Success)" not in output
    assert "ValueError: applyMove failed for 5.6.7.8" in server2.log()
    assert wait_for_log(server2, "freeMove called for 5.6.7.8")


SEVERAL_FILTERS = """
import json
import orthanc

def HttpA(uri, **request):
    return 'deny-a' not in uri

def HttpB(uri, **request):
    return 'deny-b' not in uri

def PatientOf(dicom):
    return json.loads(dicom.GetInstanceSimplifiedJson())['PatientID']

def DicomA(dicom):
    return PatientOf(dicom) != 'DENY-A'

def DicomB(dicom):
    return PatientOf(dicom) != 'DENY-B'

def CStoreA(dicom):
    return 0xA700 if PatientOf(dicom) == 'REFUSE-A' else 0

def CStoreB(dicom):
    return 0xA700 if PatientOf(dicom) == 'REFUSE-B' else 0

def Stored(dicom, instanceId):
    orthanc.LogWarning('first stored callback: ' + PatientOf(dicom))

def Stored2(dicom, instanceId):
    orthanc.LogWarning('second stored callback: ' + PatientOf(dicom))

orthanc.RegisterIncomingHttpRequestFilter(HttpA)
orthanc.RegisterIncomingHttpRequestFilter(HttpB)
orthanc.RegisterIncomingDicomInstanceFilter(DicomA)
orthanc.RegisterIncomingDicomInstanceFilter(DicomB)
orthanc.RegisterIncomingCStoreInstanceFilter(CStoreA)
orthanc.RegisterIncomingCStoreInstanceFilter(CStoreB)
orthanc.RegisterOnStoredInstanceCallback(Stored)
orthanc.RegisterOnStoredInstanceCallback(Stored2)
"""


def test_several_registrations_filters_allow_only_when_all_allow(
    orthanc: StartOrthanc, interpreters: int, tmp_path: Path
) -> None:
    server = orthanc(SEVERAL_FILTERS, interpreters=interpreters)
    assert server.get("/system").status_code == 200
    assert server.get("/system", params={"x": "deny-a"}).status_code == 200  # not in the URI
    assert server.get("/deny-a").status_code == 403
    assert server.get("/deny-b").status_code == 403
    assert upload(server, make_dicom("ALLOWED"))["Status"] == "Success"
    for patient in ("DENY-A", "DENY-B"):
        assert upload(server, make_dicom(patient))["Status"] == "FilteredOut"
    for patient in ("REFUSE-A", "REFUSE-B"):
        assert storescu(server, tmp_path, make_dicom(patient)).returncode != 0
    assert storescu(server, tmp_path, make_dicom("CSTORE-ALLOWED")).returncode == 0
    assert set(patient_names(server)) == {"ALLOWED", "CSTORE-ALLOWED"}
    for which in ("first", "second"):
        assert len(wait_for_log(server, f"{which} stored callback: CSTORE-ALLOWED")) == 1
        assert len(wait_for_log(server, f"{which} stored callback: ALLOWED")) == 1
