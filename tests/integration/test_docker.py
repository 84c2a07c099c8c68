"""docker/: every step of the image recipe runs here, since no Docker engine does.

On Debian forky (the image's base, scripts/test.sh's forky environment) the test
runs docker/build.sh on a copy of the sources into a fresh prefix, then
docker/check.sh on it, as the image's build stage does. Elsewhere it runs check.sh
on the environment under test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Ignored folders of a checkout that the image's build never sees.
OUTPUTS = (
    "build",
    ".venv*",
    ".git",
    "results",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "*.egg-info",
)


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


def _run(*command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    return result


def test_docker_recipe_steps(tmp_path: Path) -> None:
    if _codename() == "forky":
        # A copy without this checkout's build outputs, as the image's `COPY . /src`
        # sees a fresh tree; built in place, pip would share (and reconfigure for
        # another Python) the build folder of scripts/setup.sh, which then rebuilds
        # everything on its next run.
        source = tmp_path / "src"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*OUTPUTS))
        prefix = tmp_path / "opt-orthanc-python-multi"
        _run("bash", str(source / "docker" / "build.sh"), str(source), str(prefix), timeout=1200)
    else:
        prefix = Path(sys.executable).parent.parent  # the virtual environment under test
    result = _run(
        "bash", str(ROOT / "docker" / "check.sh"), str(prefix), str(ROOT / "examples" / "sample.py"),
        timeout=180,
    )  # fmt: skip
    assert "check: the plugin answers with 2 interpreters" in result.stdout
