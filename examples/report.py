# A CPU-heavy report in pure Python: statistics over the pixel data of every
# instance of a study. With PythonInterpreters >= 2, several reports run on
# several cores at once.
#   curl http://127.0.0.1:8042/example/report/<study id>
import json

import orthanc


def Report(output, uri, **request):
    study = request["groups"][0]
    instances = json.loads(orthanc.RestApiGet("/studies/%s/instances" % study))
    histogram = [0] * 16
    for instance in instances:
        image = orthanc.DecodeDicomImage(orthanc.GetDicomForInstance(instance["ID"]), 0)
        for value in image.GetImageBuffer():  # deliberately pure Python
            histogram[value >> 4] += 1
    answer = {
        "study": study,
        "instances": len(instances),
        "histogram": histogram,
        "interpreter": orthanc.GetInterpreterIndex(),
    }
    output.AnswerBuffer(json.dumps(answer), "application/json")


orthanc.RegisterRestCallback("/example/report/(.*)", Report)
