"""The installed PEP 561 stubs (orthanc-stubs): strict-clean, and they catch mistakes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.installed import installed_stub

ROOT = Path(__file__).resolve().parents[2]


def mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_stub_passes_mypy_strict(tmp_path: Path) -> None:
    package = tmp_path / "orthanc-stubs"
    package.mkdir()
    shutil.copy(installed_stub(), package / "__init__.pyi")
    result = mypy("--strict", "-p", "orthanc-stubs", cwd=tmp_path)
    assert result.returncode == 0, result.stdout


def test_examples_type_check_against_the_stub(tmp_path: Path) -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.py"))
    assert examples
    result = mypy("--check-untyped-defs", *examples, cwd=tmp_path)
    assert result.returncode == 0, result.stdout


GOOD = """
    import json
    import orthanc

    def OnRest(output: orthanc.RestOutput, uri: str, **request: object) -> None:
        answer = orthanc.RestApiGet('/system')
        output.AnswerBuffer(json.dumps({'size': len(answer)}), 'application/json')

    orthanc.RegisterRestCallback('/size', OnRest)
    if orthanc.ChangeType.STABLE_STUDY == 9:
        orthanc.LogWarning(str(orthanc.LookupDictionary('PatientName')['Group']))
"""


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("orthanc.RestApiGett('/system')", 'Module has no attribute "RestApiGett"'),
        ("orthanc.LogWarning(42)", 'Argument 1 to "LogWarning" has incompatible type "int"'),
        ("orthanc.ChangeType.STABLE_STUDYY", 'has no attribute "STABLE_STUDYY"'),
        ("orthanc.RegisterRestCallback('/x', lambda: None)", "RegisterRestCallback"),
    ],
)
def test_mypy_accepts_a_correct_script_and_flags_a_wrong_one(
    tmp_path: Path, mistake: str, message: str
) -> None:
    good = tmp_path / "good.py"
    good.write_text(textwrap.dedent(GOOD))
    result = mypy("--strict", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent(GOOD) + mistake + "\n")
    result = mypy("--strict", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stdout
