"""The wheel of `pip wheel .`: installed with `pip install --no-index` into a fresh
virtual environment of the same CPython, with no compiler and no network, it gives
a `plugin-path` that Orthanc loads.

The wheel is built once for the module, without build isolation, from the build
folder that scripts/setup.sh and `pip install .` keep (build/<wheel tag>): the
compile is already done, so this packs what is built (seconds) instead of building
again for minutes. test_install.py builds with isolation as a clean `pip` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import StartOrthanc

ROOT = Path(__file__).resolve().parents[2]
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(folder),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list(folder.glob("orthanc_python_multi-*.whl"))
    assert len(wheels) == 1, result.stdout[-3000:]
    return wheels[0]


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment of this CPython with only the wheel installed, by a
    pip that may not reach an index, in an environment where no compiler runs."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    environment = {
        "HOME": str(venv.parent),
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "CC": "false",
        "CXX": "false",
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Successfully installed orthanc-python-multi-" in output
    assert "Building" not in output, output
    return venv


def test_the_wheel_holds_the_compiled_plugin_for_this_cpython(wheel: Path) -> None:
    assert f"-{TAG}-{TAG}-linux_" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "orthanc_python_multi/lib/libOrthancPythonMulti.so" in names
    assert "orthanc_python_multi/cli.py" in names
    assert "orthanc-stubs/__init__.pyi" in names


def test_plugin_path_names_the_plugin_in_the_fresh_venv(fresh_venv: Path) -> None:
    result = subprocess.run(
        [str(fresh_venv / "bin" / "orthanc-python-multi"), "plugin-path"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    plugin = Path(result.stdout.strip())
    assert plugin.is_file()
    assert plugin.is_relative_to(fresh_venv.resolve())


def test_orthanc_loads_the_installed_plugin_and_serves_from_two_interpreters(
    fresh_venv: Path, orthanc: StartOrthanc, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = subprocess.run(
        [str(fresh_venv / "bin" / "orthanc-python-multi"), "plugin-path"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    monkeypatch.setenv("ORTHANC_PYTHON_MULTI_PLUGIN", plugin)
    server = orthanc(
        """
        import json, sys
        import orthanc

        def where(output, uri, **request):
            answer = {"interpreter": orthanc.GetInterpreterIndex(), "prefix": sys.prefix}
            output.AnswerBuffer(json.dumps(answer), "application/json")

        orthanc.RegisterRestCallback("/wheel/where", where)
        """,
        interpreters=2,
    )
    answers = [server.get("/wheel/where") for _ in range(6)]
    assert [answer.status_code for answer in answers] == [200] * 6
    seen = [json.loads(answer.text) for answer in answers]
    assert {answer["interpreter"] for answer in seen} == {0, 1}
    # The script runs in the environment the wheel went into, not the one it was built in.
    assert {os.path.realpath(answer["prefix"]) for answer in seen} == {os.path.realpath(fresh_venv)}
