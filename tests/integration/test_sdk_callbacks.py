"""Hand-written SDK bindings with callbacks or C-only arguments (src/sdk_extras.cpp,
src/image_codecs.cpp, src/jobs.cpp): DICOMweb, metrics, decoders, transcoders, and
restoring Python jobs after a restart."""

from __future__ import annotations

import io
import json
import struct
import time

import pydicom

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import upload, wait_for_log

DICOMWEB = """
import json
import orthanc

def DicomWeb(output, uri, **request):
    dicom = request['body']
    instance = orthanc.CreateDicomInstance(dicom)
    answer = {'json': json.loads(orthanc.EncodeDicomWebJson(dicom)),
              'xml': orthanc.EncodeDicomWebXml(dicom),
              'instance': json.loads(instance.GetInstanceDicomWebJson()),
              'instance_xml': instance.GetInstanceDicomWebXml()}
    output.AnswerBuffer(json.dumps(answer), 'application/json')

def Refresh():
    orthanc.SetMetricsValue('python_refreshed_in', orthanc.GetInterpreterIndex(),
                            orthanc.MetricsType.DEFAULT)

def Fail(output, uri, **request):
    raise RuntimeError('counted as an error')

orthanc.RegisterRestCallback('/dicomweb', DicomWeb)
orthanc.RegisterRestCallback('/fail', Fail)
orthanc.RegisterRefreshMetricsCallback(Refresh)
"""


def test_dicomweb_encoding_and_metrics_refresh(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(DICOMWEB, interpreters=interpreters)
    answer = server.post("/dicomweb", data=make_dicom("WEB-1", "WEB^PATIENT")).json()
    for document in (answer["json"], answer["instance"]):
        assert document["00100020"] == {"vr": "LO", "Value": ["WEB-1"]}
        assert document["00100010"]["Value"] == [{"Alphabetic": "WEB^PATIENT"}]
        assert "InlineBinary" in document["7FE00010"]  # binary values inline
    for xml in (answer["xml"], answer["instance_xml"]):
        assert "<NativeDicomModel" in xml and "WEB-1" in xml
    metrics = server.get("/tools/metrics-prometheus").text
    assert "python_refreshed_in 0" in metrics


def test_interpreter_statistics_route_and_metrics(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(DICOMWEB, interpreters=interpreters)
    for _ in range(4):
        assert server.get("/fail").status_code == 500
    stats = server.get("/python/interpreters").json()
    assert stats["MainInterpreter"] is (interpreters == 1)
    rows = stats["Interpreters"]
    assert [row["Index"] for row in rows] == list(range(interpreters))
    assert sum(row["Calls"] for row in rows) == 4
    assert sum(row["Errors"] for row in rows) == 4
    assert all(row["InFlight"] == 0 and row["BusySeconds"] >= 0 for row in rows)
    metrics = server.get("/tools/metrics-prometheus").text
    assert f"orthanc_python_interpreters {interpreters}" in metrics
    calls = [
        line
        for line in metrics.splitlines()
        if line.startswith("orthanc_python_interpreter_") and "_calls " in line
    ]
    assert len(calls) == interpreters


CODECS = """
import io
import orthanc
import pydicom
from pydicom.uid import ImplicitVRLittleEndian

def Decode(dicom, frameIndex):
    if b'DECODE-ME' not in dicom:
        return None  # Orthanc decodes the others itself
    return orthanc.CreateImageFromBuffer(orthanc.PixelFormat.GRAYSCALE8, 2, 2, 2,
                                         b'\\x00\\xff\\xff\\x00')

def Transcode(dicom, allowedSyntaxes, allowNewSopInstanceUid):
    orthanc.LogWarning('transcoder asked for %s' % allowedSyntaxes)
    if ImplicitVRLittleEndian not in allowedSyntaxes:
        return None
    ds = pydicom.dcmread(io.BytesIO(dicom))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.PatientName = 'TRANSCODED^IN^PYTHON'
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()

orthanc.RegisterDecodeImageCallback(Decode)
orthanc.RegisterTranscoderCallback(Transcode)
"""


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_python_decoder_and_transcoder(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(CODECS, interpreters=interpreters)
    mine = upload(server, make_dicom("DECODE-ME"))["ID"]
    other = upload(server, make_dicom("ORTHANC-DECODES"))["ID"]
    assert png_size(server.get(f"/instances/{mine}/preview").content) == (2, 2)
    assert png_size(server.get(f"/instances/{other}/preview").content) == (4, 4)

    response = server.post(
        f"/instances/{other}/modify",
        data=json.dumps({"Transcode": "1.2.840.10008.1.2", "Force": True}),
    )
    assert response.status_code == 200, response.text
    transcoded = pydicom.dcmread(io.BytesIO(response.content))
    assert transcoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert str(transcoded.PatientName) == "TRANSCODED^IN^PYTHON"
    assert wait_for_log(server, r"transcoder asked for \['1.2.840.10008.1.2'\]")


JOBS = """
import json
import time
import orthanc

class CountingJob:
    def __init__(self, done, steps):
        self.done, self.steps = done, steps

    def Step(self):
        time.sleep(0.05)
        self.done += 1
        if self.done >= self.steps:
            return orthanc.JobStepStatus.SUCCESS
        return orthanc.JobStepStatus.CONTINUE

    def GetProgress(self):
        return self.done / self.steps

    def GetContent(self):
        return {'done': self.done}

    def GetSerialized(self):
        return {'done': self.done, 'steps': self.steps}

def Unserialize(jobType, serialized):
    if jobType != 'PythonCounting':
        return None
    state = json.loads(serialized)
    orthanc.LogWarning('unserialized a job at step %d' % state['done'])
    return orthanc.CreateJob(CountingJob(state['done'], state['steps']), 'PythonCounting')

def Submit(output, uri, **request):
    job = orthanc.CreateJob(CountingJob(0, 100000), 'PythonCounting')
    output.AnswerBuffer(json.dumps({'id': job.SubmitJob(0)}), 'application/json')

orthanc.RegisterJobsUnserializer(Unserialize)
orthanc.RegisterRestCallback('/python-job', Submit)
"""


def test_python_job_is_restored_after_a_restart(orthanc: StartOrthanc) -> None:
    server = orthanc(JOBS, interpreters=2)
    job_id = server.get("/python-job").json()["id"]
    deadline = time.monotonic() + 30
    while server.get(f"/jobs/{job_id}").json()["Content"].get("done", 0) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.stop() == 0
    server.start()
    lines = wait_for_log(server, "unserialized a job at step")
    assert len(lines) == 1
    saved = int(lines[0].rsplit(" ", 1)[1])
    assert saved >= 5
    job = server.get(f"/jobs/{job_id}").json()
    assert job["Type"] == "PythonCounting"
    deadline = time.monotonic() + 30
    while job["Content"].get("done", 0) <= saved and time.monotonic() < deadline:
        time.sleep(0.1)
        job = server.get(f"/jobs/{job_id}").json()
    assert job["Content"]["done"] > saved  # it runs again from where it was
