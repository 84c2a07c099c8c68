"""Key-value stores and queues (src/kv_store.cpp): state that every interpreter shares.

They exist from SDK 1.12.8 on: with a plugin built on an older SDK (Debian 12's
1.10.1) the functions must be absent; built on a newer one (forky's 1.13.0) they
must behave as in the existing plugin 7.1, with 1 and 2 interpreters.
"""

from __future__ import annotations

import re

from .conftest import StartOrthanc
from .helpers import installed_sdk

HAS_STORES = installed_sdk() >= (1, 12, 8)

SHARED_STATE = """
import orthanc

def Increment(output, uri, **request):
    # Sequential requests from the test: read-modify-write is safe here.
    value = orthanc.GetKeyValue('counters', 'hits')
    count = int(value) + 1 if value is not None else 1
    orthanc.StoreKeyValue('counters', 'hits', str(count).encode())
    output.AnswerBuffer('%d %d' % (count, orthanc.GetInterpreterIndex()), 'text/plain')

def Push(output, uri, **request):
    orthanc.EnqueueValue('jobs', request['body'])
    output.AnswerBuffer(str(orthanc.GetQueueSize('jobs')), 'text/plain')

def Pop(output, uri, **request):
    value = orthanc.DequeueValue('jobs', orthanc.QueueOrigin.FRONT)
    output.AnswerBuffer(repr(value), 'text/plain')

def Reserve(output, uri, **request):
    value, value_id = orthanc.ReserveQueueValue('jobs', orthanc.QueueOrigin.FRONT, 30)
    if value is not None:
        orthanc.AcknowledgeQueueValue('jobs', value_id)
    output.AnswerBuffer(repr((value, type(value_id).__name__)), 'text/plain')

def Keys(output, uri, **request):
    iterator = orthanc.CreateKeysValuesIterator('counters')
    pairs = []
    while iterator.Next():
        pairs.append((iterator.GetKey(), iterator.GetValue()))
    output.AnswerBuffer(repr(pairs), 'text/plain')

def Stable(output, uri, **request):
    output.AnswerBuffer(repr(orthanc.SetStableStatus('no-such-resource',
                                                     orthanc.StableStatus.STABLE)), 'text/plain')

orthanc.RegisterRestCallback('/increment', Increment)
orthanc.RegisterRestCallback('/push', Push)
orthanc.RegisterRestCallback('/pop', Pop)
orthanc.RegisterRestCallback('/reserve', Reserve)
orthanc.RegisterRestCallback('/keys', Keys)
orthanc.RegisterRestCallback('/stable', Stable)
"""


def test_stores_and_queues_are_shared_by_every_interpreter(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    if not HAS_STORES:
        # A script written for Orthanc 1.12.8+ learns which Orthanc it needs.
        server = orthanc(
            "import orthanc\n"
            "names = [n for n in ('GetKeyValue', 'StoreKeyValue', 'EnqueueValue', 'DequeueValue',\n"
            "                     'GetQueueSize', 'CreateKeysValuesIterator') if hasattr(orthanc, n)]\n"
            "orthanc.LogWarning('store functions: %r' % names)\n"
            "try:\n"
            "    orthanc.GetKeyValue('store', 'key')\n"
            "except AttributeError as error:\n"
            "    orthanc.LogWarning('error: %s' % error)\n",
            interpreters=interpreters,
        )
        log = server.log()
        assert "store functions: []" in log
        assert re.search(
            r"error: orthanc\.GetKeyValue needs Orthanc 1\.12\.8 or newer: this plugin was "
            r"built with the Orthanc SDK \d+\.\d+\.\d+",
            log,
        ), log
        return

    server = orthanc(SHARED_STATE, interpreters=interpreters)
    served_by = set()
    for expected in range(1, 41):
        answer = server.get("/increment")
        assert answer.status_code == 200, answer.text
        count, index = map(int, answer.text.split())
        assert count == expected  # one counter, whichever interpreter served
        served_by.add(index)
    assert served_by == set(range(interpreters))
    assert server.get("/keys").text == "[('hits', b'40')]"

    sizes = [server.post("/push", data=body).text for body in (b"first", b"second", b"third")]
    assert sizes == ["1", "2", "3"]
    assert server.get("/pop").text == "b'first'"
    assert server.get("/reserve").text == "(b'second', 'int')"
    assert server.get("/pop").text == "b'third'"
    assert server.get("/pop").text == "None"
    assert server.get("/reserve").text == "(None, 'NoneType')"
    assert server.get("/stable").text == "(0, 0)"
