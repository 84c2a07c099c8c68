"""docker/check.sh, the image's check, on the environment under test (its virtual
environment): the plugin loads with 2 interpreters and the sample answers.

The image's other steps (docker/build.sh, docker/install.sh: the Debian package
built and installed) run in tests/package/test_docker_recipe.py, in a disposable
layer over the forky root, since no Docker engine runs here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_check_on_this_environment() -> None:
    prefix = Path(sys.executable).parent.parent  # the virtual environment under test
    result = subprocess.run(
        ["bash", str(ROOT / "docker" / "check.sh"), str(prefix), str(ROOT / "examples" / "sample.py")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert "check: the plugin answers with 2 interpreters" in result.stdout
