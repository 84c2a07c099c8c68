# A Python storage backend: attachments go to the folder named in the
# configuration ("ExampleStorageFolder"), compressed with zlib, in two-level
# sub-folders. The calls run in parallel in every interpreter.
import json
import os
import zlib

import orthanc

ROOT = json.loads(orthanc.GetConfiguration())["ExampleStorageFolder"]


def _path(uuid):
    return os.path.join(ROOT, uuid[0:2], uuid[2:4], uuid)


def Create(uuid, contentType, data):
    path = _path(uuid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(zlib.compress(data))
    os.replace(path + ".tmp", path)  # never a half-written file


def Read(uuid, contentType):
    with open(_path(uuid), "rb") as f:
        return zlib.decompress(f.read())


def Remove(uuid, contentType):
    os.remove(_path(uuid))


orthanc.RegisterStorageArea(Create, Read, Remove)
