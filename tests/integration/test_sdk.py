"""Generated SDK bindings used from a script inside Orthanc, with 1 and 2 interpreters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .orthanc_server import OrthancServer, make_server, running

SCRIPT = r"""
import inspect
import json

import orthanc

def answer(output, value):
    output.AnswerBuffer(json.dumps(value), 'application/json')

def CreateAndRead(output, uri, **request):
    tags = {'PatientID': 'SDK-1', 'PatientName': 'SDK^TEST', 'StudyDescription': 'from Python'}
    dicom = orthanc.CreateDicom(json.dumps(tags), None, orthanc.CreateDicomFlags.GENERATE_IDENTIFIERS)
    stored = json.loads(orthanc.RestApiPost('/instances', dicom))
    again = orthanc.GetDicomForInstance(stored['ID'])
    answer(output, {'same': again == dicom, 'size': len(dicom), 'id': stored['ID'],
                    'lookup': orthanc.LookupPatient('SDK-1'),
                    'missing': orthanc.LookupPatient('no-such-patient')})

def Dictionary(output, uri, **request):
    entry = orthanc.LookupDictionary('PatientName')
    names = [name for name, value in inspect.getmembers(orthanc.ValueRepresentation)
             if value == entry['ValueRepresentation'] and name.isupper()]
    answer(output, {'entry': entry, 'vr': names})

def Configuration(output, uri, **request):
    answer(output, json.loads(orthanc.GetConfiguration()))

def Images(output, uri, **request):
    pixels = bytes(range(12))
    image = orthanc.CreateImageFromBuffer(orthanc.PixelFormat.GRAYSCALE8, 4, 3, 4, pixels)
    png = orthanc.CompressPngImage(orthanc.PixelFormat.GRAYSCALE8, 4, 3, 4, pixels)
    decoded = orthanc.UncompressImage(png, orthanc.ImageFormat.PNG)
    tags = {'PatientID': 'SDK-2'}
    dicom = orthanc.CreateDicom(json.dumps(tags), image, orthanc.CreateDicomFlags.GENERATE_IDENTIFIERS)
    frame = orthanc.DecodeDicomImage(dicom, 0)
    answer(output, {
        'buffer': list(image.GetImageBuffer()),
        'size': [image.GetImageWidth(), image.GetImageHeight(), image.GetImagePitch()],
        'format': image.GetImagePixelFormat() == orthanc.PixelFormat.GRAYSCALE8,
        'png': png[:8].hex(),
        'decoded': list(decoded.GetImageBuffer()[:12]),
        'frame': list(frame.GetImageBuffer()[:12]) if frame.GetImagePitch() == 4 else None,
        'frame_size': [frame.GetImageWidth(), frame.GetImageHeight()],
    })

def Instance(output, uri, **request):
    dicom = orthanc.CreateDicom(json.dumps({'PatientID': 'SDK-3', 'PatientName': 'Owned'}),
                                None, orthanc.CreateDicomFlags.GENERATE_IDENTIFIERS)
    instance = orthanc.CreateDicomInstance(dicom)
    answer(output, {
        'simplified': json.loads(instance.GetInstanceSimplifiedJson()),
        'size': instance.GetInstanceSize() == len(dicom),
        'data': instance.GetInstanceData() == dicom,
        'syntax': instance.GetInstanceTransferSyntaxUid(),
        'pixels': instance.HasInstancePixelData(),
        'frames': instance.GetInstanceFramesCount(),
    })

def Token(output, uri, **request):
    answer(output, orthanc.GenerateRestApiAuthorizationToken())

def Errors(output, uri, **request):
    results = {}
    try:
        orthanc.RestApiGet('/studies/nope')
    except orthanc.OrthancException as error:
        results['args'] = list(error.args)
    try:
        orthanc.UncompressImage(b'not a png', orthanc.ImageFormat.PNG)
    except orthanc.OrthancException as error:
        results['bad_png'] = error.args[0]
    try:
        orthanc.CreateImageFromBuffer(orthanc.PixelFormat.GRAYSCALE8, 4, 3, 4, b'short')
    except ValueError as error:
        results['short'] = str(error)
    results['enum'] = [orthanc.ChangeType.STABLE_STUDY, orthanc.ErrorCode.UNKNOWN_RESOURCE,
                       orthanc.ContentType.DICOM]
    answer(output, results)

for name, callback in [('create', CreateAndRead), ('dictionary', Dictionary),
                       ('configuration', Configuration), ('images', Images),
                       ('instance', Instance), ('token', Token), ('errors', Errors)]:
    orthanc.RegisterRestCallback('/sdk/' + name, callback)
"""


@pytest.fixture(scope="module", params=[1, 2], ids=["1-interpreter", "2-interpreters"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancServer]:
    extra = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}}
    orthanc = make_server(
        tmp_path_factory.mktemp("sdk"), SCRIPT, interpreters=request.param, extra=extra
    )
    orthanc.session.auth = ("alice", "secret")  # /system answers 401 without it
    with running(orthanc) as started:
        yield started


def call(server: OrthancServer, name: str) -> Any:
    results = []
    for _ in range(2):  # with 2 interpreters, both serve it
        response = server.get("/sdk/" + name)
        assert response.status_code == 200, server.log()
        results.append(response.json())
    if name not in ("token", "create", "instance"):  # those differ on each call (new UIDs)
        assert results[0] == results[1]
    return results[0]


def test_create_dicom_upload_and_read_back(server: OrthancServer) -> None:
    result = call(server, "create")
    assert result["same"] is True
    assert result["size"] > 128
    assert result["lookup"] is not None
    assert result["missing"] is None
    tags = server.get(f"/instances/{result['id']}/simplified-tags").json()
    assert tags["PatientName"] == "SDK^TEST"


def test_lookup_dictionary(server: OrthancServer) -> None:
    result = call(server, "dictionary")
    assert result["entry"] == {
        "Group": 0x10,
        "Element": 0x10,
        "ValueRepresentation": result["entry"]["ValueRepresentation"],
        "MinMultiplicity": 1,
        "MaxMultiplicity": 1,
    }
    assert result["vr"] == ["PN"]


def test_get_configuration(server: OrthancServer) -> None:
    result = call(server, "configuration")
    assert result["HttpPort"] == server.config["HttpPort"]
    assert result["PythonScript"] == server.config["PythonScript"]


def test_image_buffers(server: OrthancServer) -> None:
    result = call(server, "images")
    assert result["buffer"] == list(range(12))
    assert result["size"] == [4, 3, 4]
    assert result["format"] is True
    assert result["png"] == "89504e470d0a1a0a"
    assert result["decoded"] == list(range(12))
    assert result["frame_size"] == [4, 3]
    assert result["frame"] == list(range(12))


def test_dicom_instance_accessors(server: OrthancServer) -> None:
    result = call(server, "instance")
    assert result["simplified"]["PatientName"] == "Owned"
    assert result["size"] is True and result["data"] is True
    assert result["syntax"].startswith("1.2.840.10008.1.2")
    assert result["pixels"] == 0  # no PixelData tag
    assert isinstance(result["frames"], int)


def test_generated_token_is_accepted_by_the_rest_api(server: OrthancServer) -> None:
    token = call(server, "token")
    assert isinstance(token, str) and token
    url = server.url + "/system"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"Authorization": token}, timeout=30).status_code == 200
    assert (
        requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=30).status_code == 401
    )


def test_errors_and_enums(server: OrthancServer) -> None:
    result = call(server, "errors")
    assert result["args"] == [17, "Unknown resource"]
    assert result["bad_png"] == -1  # InternalError: the SDK returned no image
    assert "pitch * height" in result["short"]
    assert result["enum"] == [9, 17, 1]
