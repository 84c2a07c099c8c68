"""The model of the installed SDK header: snapshot, coverage, and the existing plugin's names.

Refresh the snapshot after an SDK upgrade (then review the diff):

    .venv/bin/python -m generator --header /usr/include/orthanc/OrthancCPlugin.h \\
        --dump-model tests/generator/snapshots/model.json
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.__main__ import coverage_report
from generator.manifest import load_manifest
from generator.model import Model, build_model
from generator.parse import parse_header

HEADER = Path("/usr/include/orthanc/OrthancCPlugin.h")
SNAPSHOT = Path(__file__).parent / "snapshots" / "model.json"

# Raise it when coverage grows; a drop fails the test.
MINIMUM_WRAPPED = 158


@pytest.fixture(scope="module")
def sdk_model() -> Model:
    return build_model(parse_header(HEADER), load_manifest())


def test_model_matches_the_snapshot(sdk_model: Model) -> None:
    assert json.loads(json.dumps(sdk_model.to_json_dict())) == json.loads(SNAPSHOT.read_text())


def test_coverage_does_not_drop(sdk_model: Model) -> None:
    assert sdk_model.wrapped_count >= MINIMUM_WRAPPED
    report = coverage_report(sdk_model).splitlines()
    assert (
        report[0] == f"wrapped {sdk_model.wrapped_count} / {sdk_model.sdk_functions} SDK functions"
    )
    assert len(report) == 1 + len(sdk_model.unwrapped)


# Names that scripts written for the existing plugin use (its documentation and samples).
EXISTING_FUNCTIONS = [
    "RegisterRestCallback",
    "RestApiGet",
    "RestApiGetAfterPlugins",
    "RestApiPost",
    "RestApiPostAfterPlugins",
    "RestApiPut",
    "RestApiPutAfterPlugins",
    "RestApiDelete",
    "RestApiDeleteAfterPlugins",
    "LogInfo",
    "LogWarning",
    "LogError",
    "LookupDictionary",
    "CreateDicom",
    "GetDicomForInstance",
    "GetConfiguration",
    "UncompressImage",
    "DecodeDicomImage",
    "CreateImageFromBuffer",
    "GenerateRestApiAuthorizationToken",
    "CreateDicomInstance",
    "GetGlobalProperty",
    "SetGlobalProperty",
    "LookupPatient",
    "LookupStudy",
    "LookupSeries",
    "LookupInstance",
    "CompressJpegImage",
    "CompressPngImage",
    "ComputeMd5",
    "ComputeSha1",
    "GenerateUuid",
    "GetOrthancPath",
    "GetOrthancDirectory",
    "SetMetricsValue",
    "HttpGet",
    "HttpPost",
    "ReadFile",
    "WriteFile",
    "GetPeers",
]
EXISTING_METHODS = {
    "RestOutput": [
        "AnswerBuffer",
        "SendHttpStatus",
        "SendHttpStatusCode",
        "SendMethodNotAllowed",
        "SendUnauthorized",
        "Redirect",
        "SetHttpHeader",
        "SetCookie",
        "SetHttpErrorDetails",
        "StartMultipartAnswer",
        "SendMultipartItem",
        "CompressAndAnswerPngImage",
        "CompressAndAnswerJpegImage",
    ],
    "DicomInstance": [
        "GetInstanceRemoteAet",
        "GetInstanceSize",
        "GetInstanceData",
        "GetInstanceJson",
        "GetInstanceSimplifiedJson",
        "HasInstanceMetadata",
        "GetInstanceMetadata",
        "GetInstanceOrigin",
        "GetInstanceFramesCount",
        "GetInstanceDecodedFrame",
        "GetInstanceTransferSyntaxUid",
    ],
    "Image": [
        "GetImageBuffer",
        "GetImageWidth",
        "GetImageHeight",
        "GetImagePitch",
        "GetImagePixelFormat",
        "ConvertPixelFormat",
        "DrawText",
    ],
    "FindQuery": [
        "GetFindQuerySize",
        "GetFindQueryTagGroup",
        "GetFindQueryTagElement",
        "GetFindQueryTagName",
        "GetFindQueryValue",
    ],
    "FindAnswers": ["FindAddAnswer", "FindMarkIncomplete"],
    "WorklistAnswers": ["WorklistAddAnswer", "WorklistMarkIncomplete"],
    "WorklistQuery": ["WorklistIsMatch", "WorklistGetDicomQuery"],
    "Peers": ["GetPeersCount", "GetPeerName", "GetPeerUrl"],
}


def test_existing_plugin_names_are_present(sdk_model: Model) -> None:
    functions = {f.py_name for f in sdk_model.functions if not f.owner}
    functions |= {h.py_name for h in sdk_model.handwritten if not h.owner}
    missing = [name for name in EXISTING_FUNCTIONS if name not in functions]
    for cls, methods in EXISTING_METHODS.items():
        present = {f.py_name for f in sdk_model.functions if f.owner == cls}
        present |= {h.py_name for h in sdk_model.handwritten if h.owner == cls}
        missing += [f"{cls}.{m}" for m in methods if m not in present]
    assert missing == []
    enums = {e.py_name: {c.py_name for c in e.constants} for e in sdk_model.enums}
    assert {"STABLE_STUDY", "NEW_INSTANCE", "ORTHANC_STARTED", "ORTHANC_STOPPED"} <= enums[
        "ChangeType"
    ]
    assert {"UNKNOWN_RESOURCE", "SUCCESS", "INTERNAL_ERROR"} <= enums["ErrorCode"]
    assert "DICOM" in enums["ContentType"]
