"""The models of the SDK headers at hand: snapshots, coverage, and the existing plugin's names.

The installed header is always tested; `OPM_SDK_HEADERS` (folders holding
orthanc/OrthancCPlugin.h, separated by ':') adds others, as scripts/test.sh does
with Debian 13's (1.12.7) and forky's (1.13.0). Each SDK version has its snapshot;
refresh it after an SDK upgrade (then review the diff):

    .venv/bin/python -m generator --header /usr/include/orthanc/OrthancCPlugin.h \\
        --dump-model tests/generator/snapshots/model-VERSION.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from generator.__main__ import coverage_report
from generator.manifest import load_manifest, parse_version
from generator.model import Model, build_model
from generator.parse import parse_header
from generator.raw import RawHeader

INSTALLED = Path("/usr/include")
SNAPSHOTS = Path(__file__).parent / "snapshots"

# Raise a floor when coverage grows; a drop fails the test. Keyed by the header's
# SDK version (ORTHANC_PLUGINS_MINIMAL_*_NUMBER: Debian 13's 1.12.7 says 1.12.6).
MINIMUM_WRAPPED = {"1.10.1": 160, "1.12.6": 170, "1.13.0": 199}


def _include_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("OPM_SDK_HEADERS", "").split(":") if p]
    return [INSTALLED, *extra]


@pytest.fixture(scope="module", params=_include_dirs(), ids=str)
def sdk_header(request: pytest.FixtureRequest) -> RawHeader:
    header = Path(request.param) / "orthanc" / "OrthancCPlugin.h"
    assert header.is_file(), f"no SDK header at {header}"
    return parse_header(header)


@pytest.fixture(scope="module")
def sdk_model(sdk_header: RawHeader) -> Model:
    return build_model(sdk_header, load_manifest())


def test_model_matches_the_snapshot(sdk_model: Model) -> None:
    snapshot = SNAPSHOTS / f"model-{sdk_model.sdk_version}.json"
    assert snapshot.is_file(), f"no snapshot for SDK {sdk_model.sdk_version}: write {snapshot}"
    assert json.loads(json.dumps(sdk_model.to_json_dict())) == json.loads(snapshot.read_text())


def test_coverage_does_not_drop(sdk_model: Model) -> None:
    assert sdk_model.sdk_version in MINIMUM_WRAPPED, "add a coverage floor for this SDK"
    assert sdk_model.wrapped_count >= MINIMUM_WRAPPED[sdk_model.sdk_version]
    assert sdk_model.wrapped_count >= 0.95 * sdk_model.sdk_functions
    report = coverage_report(sdk_model).splitlines()
    assert (
        report[0] == f"wrapped {sdk_model.wrapped_count} / {sdk_model.sdk_functions} SDK functions"
    )
    assert len(report) == 1 + len(sdk_model.unwrapped)


def test_manifest_versions_match_the_header_annotations(sdk_header: RawHeader) -> None:
    """[since_sdk] agrees with ORTHANC_PLUGIN_SINCE_SDK where the header has it."""
    present = {f.name: f.since_sdk for f in sdk_header.functions}
    for name, since in load_manifest().since_sdk.items():
        if name not in present:
            assert parse_version(since) > sdk_header.version, name
            continue
        assert parse_version(since) <= sdk_header.version, name
        if present[name]:  # headers from SDK 1.12.9 on carry the annotation
            assert present[name] == since, name


OLDEST_SUPPORTED = (1, 10, 1)


def test_manifest_dates_every_function_newer_than_the_oldest_header(
    sdk_header: RawHeader, sdk_model: Model
) -> None:
    """Where the header annotates its functions, [since_sdk] lists every one newer
    than 1.10.1, and [newer_methods] says which are methods of which class."""
    manifest = load_manifest()
    annotated = {f.name: f.since_sdk for f in sdk_header.functions if f.since_sdk}
    if not annotated:
        assert sdk_header.version < (1, 12, 9)  # annotations came with SDK 1.12.9
        return
    newer = {n: v for n, v in annotated.items() if parse_version(v) > OLDEST_SUPPORTED}
    assert {n: v for n, v in manifest.since_sdk.items() if n in annotated} == newer
    owners = {f.c_name: f.owner for f in sdk_model.functions}
    owners |= {c: h.owner for h in sdk_model.handwritten for c in h.covers}
    methods = {n: o for n, o in owners.items() if n in newer and o}
    assert manifest.newer_methods == methods


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
