"""Python-defined jobs (src/jobs.cpp): visible in /jobs, run to completion, cancellable."""

from __future__ import annotations

import time

from .conftest import StartOrthanc
from .orthanc_server import OrthancServer

JOBS = """
import json
import time
import orthanc

class CountingJob:
    def __init__(self, steps, delay):
        self.done = 0
        self.steps = steps
        self.delay = delay
        self.creator = orthanc.GetInterpreterIndex()

    def Step(self):
        assert orthanc.GetInterpreterIndex() == self.creator  # pinned
        time.sleep(self.delay)
        self.done += 1
        if self.done >= self.steps:
            return orthanc.JobStepStatus.SUCCESS
        return orthanc.JobStepStatus.CONTINUE

    def GetProgress(self):
        return self.done / self.steps

    def GetContent(self):
        return {'done': self.done, 'creator': self.creator,
                'runner': orthanc.GetInterpreterIndex()}

    def Stop(self, reason):
        orthanc.LogWarning('job stopped, reason %d, after %d steps' % (reason, self.done))

def Submit(output, uri, **request):
    steps, delay = int(request['get']['steps']), float(request['get']['delay'])
    job = orthanc.CreateJob(CountingJob(steps, delay), 'PythonCounting')
    job_id = job.SubmitJob(0)
    try:
        job.SubmitJob(0)
        again = 'no exception'
    except orthanc.OrthancException as error:
        again = error.args[1]  # a submitted job belongs to Orthanc
    output.AnswerBuffer(json.dumps({'id': job_id, 'again': again}), 'application/json')

class FlakyJob:
    # Step 2 fails on the first run; Reset() (a resubmission) makes it succeed.
    def __init__(self):
        self.done = 0
        self.runs = 1

    def Step(self):
        self.done += 1
        if self.done == 2 and self.runs == 1:
            raise ValueError('step failed on run %d' % self.runs)
        if self.done >= 3:
            return orthanc.JobStepStatus.SUCCESS
        return orthanc.JobStepStatus.CONTINUE

    def GetContent(self):
        return {'done': self.done, 'runs': self.runs}

    def Reset(self):
        self.done = 0
        self.runs += 1
        orthanc.LogWarning('flaky job reset for run %d' % self.runs)

def SubmitFlaky(output, uri, **request):
    job_id = orthanc.CreateJob(FlakyJob(), 'PythonFlaky').SubmitJob(0)
    output.AnswerBuffer(json.dumps({'id': job_id}), 'application/json')

orthanc.RegisterRestCallback('/python-job', Submit)
orthanc.RegisterRestCallback('/flaky-job', SubmitFlaky)
"""


def wait_job(server: OrthancServer, job_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.get(f"/jobs/{job_id}").json()
        if job["State"] in states:
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['State']}")


def test_python_job_runs_to_completion_with_progress(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(JOBS, interpreters=interpreters)
    submitted = server.get("/python-job", params={"steps": "20", "delay": "0.05"}).json()
    job_id = submitted["id"]
    assert submitted["again"] == "this object belongs to a callback that has returned"
    assert job_id in server.get("/jobs").json()
    running = wait_job(server, job_id, {"Running", "Success"})
    assert running["Type"] == "PythonCounting"
    progresses = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = server.get(f"/jobs/{job_id}").json()
        progresses.add(job["Progress"])
        if job["State"] == "Success":
            break
        time.sleep(0.05)
    assert job["State"] == "Success"
    assert job["Progress"] == 100
    assert any(0 < p < 100 for p in progresses)  # intermediate progress was visible
    content = job["Content"]
    assert content["done"] == 20
    assert content["creator"] == content["runner"]


def test_python_job_can_be_cancelled(orthanc: StartOrthanc) -> None:
    server = orthanc(JOBS, interpreters=2)
    job_id = server.get("/python-job", params={"steps": "1000", "delay": "0.05"}).json()["id"]
    wait_job(server, job_id, {"Running"})
    assert server.post(f"/jobs/{job_id}/cancel", data=b"").status_code == 200
    job = wait_job(server, job_id, {"Failure"})
    assert job["Content"]["done"] < 1000
    log = server.log()
    assert "job stopped, reason 4" in log  # JobStopReason.CANCELED


def test_failing_step_fails_the_job_and_resubmit_resets_it(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(JOBS, interpreters=interpreters)
    job_id = server.get("/flaky-job").json()["id"]
    failed = wait_job(server, job_id, {"Failure", "Success"})
    assert failed["State"] == "Failure"
    assert failed["Content"] == {"done": 2, "runs": 1}
    assert "ValueError: step failed on run 1" in server.log()
    assert server.post(f"/jobs/{job_id}/resubmit", data=b"").status_code == 200
    succeeded = wait_job(server, job_id, {"Success"})
    assert succeeded["Content"] == {"done": 3, "runs": 2}
    assert "flaky job reset for run 2" in server.log()
