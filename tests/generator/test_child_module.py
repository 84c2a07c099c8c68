"""generator/emit_child.py: the `orthanc` module of multiprocessing children, run by a
plain Python as a child process runs it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from generator.emit_child import emit_child
from generator.emit_pyi import emit_pyi
from generator.model import Model, model_from_json

SNAPSHOTS = Path(__file__).parent / "snapshots"
# Where orthanc_python_multi.multiprocessing_child comes from.
PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "orthanc"


@pytest.fixture(scope="module", params=sorted(SNAPSHOTS.glob("model-*.json")), ids=str)
def model(request: pytest.FixtureRequest) -> Model:
    path: Path = request.param
    return model_from_json(json.loads(path.read_text(encoding="utf-8")))


def run_child(model: Model, folder: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a plain Python whose sys.path ends with the child module's folder."""
    (folder / "orthanc.py").write_text(emit_child(model), encoding="utf-8")
    prelude = (
        f"import sys\nsys.path[:0] = [{str(PACKAGE_ROOT)!r}]\nsys.path.append({str(folder)!r})\n"
        "import orthanc\n"
    )
    return subprocess.run(
        [sys.executable, "-I", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def public_names(tree: ast.Module) -> dict[str, set[str]]:
    """Top-level classes and functions of a module -> the names they define."""
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    members.update(t.id for t in targets if isinstance(t, ast.Name))
            names[node.name] = members
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
    return names


def test_child_module_has_every_name_of_the_stubs(model: Model, tmp_path: Path) -> None:
    stub = public_names(ast.parse(emit_pyi(model)))
    del stub["ChunkedReader"]  # a typing Protocol, not a name of the module
    listing = run_child(
        model,
        tmp_path,
        """
        import json
        print(json.dumps({name: sorted(n for n in dir(value) if not n.startswith('_'))
                          if isinstance(value, type) else []
                          for name, value in vars(orthanc).items() if not name.startswith('_')}))
        """,
    )
    assert listing.returncode == 0, listing.stderr
    child = json.loads(listing.stdout)
    for name, members in stub.items():
        assert name in child, name
        assert members <= set(child[name]), (name, members - set(child[name]))


def test_script_module_level_runs_in_a_child(model: Model, tmp_path: Path) -> None:
    result = run_child(
        model,
        tmp_path,
        """
        def OnRest(output, uri, **request):
            pass

        orthanc.RegisterRestCallback('/route', OnRest)
        orthanc.RegisterOnChangeCallback(lambda *args: None)
        orthanc.LogWarning('loaded')
        orthanc.LogError('an error')
        orthanc.LogInfo('not shown')
        assert orthanc.GetInterpreterIndex() == -1
        assert orthanc.GetInterpreterCount() == 0
        assert issubclass(orthanc.OrthancException, Exception)
        print(orthanc.ChangeType.STABLE_STUDY, orthanc.ErrorCode.UNKNOWN_RESOURCE,
              orthanc.ContentType.DICOM)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["9", "17", "1"]
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("W multiprocessing child ") and lines[0].endswith(": loaded")
    assert lines[1].startswith("E multiprocessing child ") and lines[1].endswith(": an error")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ("orthanc.RestApiGet('/system')", "orthanc.RestApiGet()"),
        ("orthanc.GetDicomForInstance('x')", "orthanc.GetDicomForInstance()"),
        ("orthanc.RestOutput()", "orthanc.RestOutput objects"),
        ("orthanc.DicomInstance.GetInstanceData(None)", "orthanc.DicomInstance.GetInstanceData()"),
    ],
)
def test_sdk_calls_raise_a_clear_error_in_a_child(
    model: Model, tmp_path: Path, call: str, name: str
) -> None:
    result = run_child(
        model,
        tmp_path,
        f"""
        try:
            {call}
        except orthanc.OutsideOrthancError as error:
            assert isinstance(error, RuntimeError)
            print(error)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name} ")
    assert "only inside Orthanc, not in a multiprocessing child process" in result.stdout
