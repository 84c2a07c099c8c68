# The pure-Python half of the worked example of docs/imaging.md: this script is
# "PythonScript", so with "PythonInterpreters": N >= 2 it runs in N
# sub-interpreters, each with its own GIL. pydicom loads there (numpy and Pillow,
# installed alongside, look absent: it reads tags without them).
#   curl http://127.0.0.1:8042/example/tags/<instance id>
import io
import json

import pydicom

import orthanc


def Tags(output, uri, **request):
    instance = request["groups"][0]
    dataset = pydicom.dcmread(
        io.BytesIO(orthanc.GetDicomForInstance(instance)), stop_before_pixels=True
    )
    answer = {
        "PatientName": str(dataset.get("PatientName", "")),
        "Modality": dataset.get("Modality", ""),
        "Rows": dataset.get("Rows"),
        "Columns": dataset.get("Columns"),
        "interpreter": orthanc.GetInterpreterIndex(),
    }
    output.AnswerBuffer(json.dumps(answer), "application/json")


orthanc.RegisterRestCallback("/example/tags/(.*)", Tags)
