# A sample plugin script: the routes of the existing plugin's first example,
# plus one that shows which interpreter served it.
#   curl http://127.0.0.1:8042/toto
#   curl http://127.0.0.1:8042/python/where
import json

import orthanc


def OnRest(output, uri, **request):
    print(request)
    print("Accessing uri: %s" % uri)
    output.AnswerBuffer("ok\n", "text/plain")


def Where(output, uri, **request):
    answer = {
        "interpreter": orthanc.GetInterpreterIndex(),
        "interpreters": orthanc.GetInterpreterCount(),
    }
    output.AnswerBuffer(json.dumps(answer) + "\n", "application/json")


orthanc.RegisterRestCallback("/(to)(t)o", OnRest)
orthanc.RegisterRestCallback("/tata", OnRest)
orthanc.RegisterRestCallback("/python/where", Where)

if orthanc.GetInterpreterIndex() == 0:
    orthanc.LogWarning("Sample script loaded in %d interpreter(s)" % orthanc.GetInterpreterCount())
