# Auto-routing: every stable study is sent to the modality named in the
# configuration ("ExampleRouteTo"), through Orthanc's own C-STORE SCU. OnChange
# runs in one interpreter, in order, so each study is sent once.
import json

import orthanc

TARGET = json.loads(orthanc.GetConfiguration()).get("ExampleRouteTo", "samples")


def OnChange(changeType, level, resourceId):
    if changeType == orthanc.ChangeType.STABLE_STUDY:
        orthanc.LogWarning("routing study %s to %s" % (resourceId, TARGET))
        orthanc.RestApiPost("/modalities/%s/store" % TARGET, resourceId)


orthanc.RegisterOnChangeCallback(OnChange)
