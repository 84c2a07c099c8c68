"""docker/check.sh, the Docker image's own check, run natively on this environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_check_script_passes_natively() -> None:
    prefix = Path(sys.executable).parent.parent  # the virtual environment under test
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "docker" / "check.sh"),
            str(prefix),
            str(ROOT / "examples" / "sample.py"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check: the plugin answers with 2 interpreters" in result.stdout
