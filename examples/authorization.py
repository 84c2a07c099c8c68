# Authorization filter: every REST request needs a token from the configuration
# ("ExampleTokens": ["..."]) in its "token" header; /system stays open for
# health checks. Anything unexpected denies the request (the plugin fails closed).
import json

import orthanc

TOKENS = set(json.loads(orthanc.GetConfiguration()).get("ExampleTokens", []))


def Filter(uri, **request):
    if uri == "/system":
        return True
    if request["headers"].get("token") in TOKENS:
        return True
    orthanc.LogWarning("denied %s from %s" % (uri, request["ip"]))
    return False


orthanc.RegisterIncomingHttpRequestFilter(Filter)
