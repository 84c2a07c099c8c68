"""`pip install .` as Python users run it: from a clean virtual environment, with
build isolation (pip's own temporary environment holds the build requirements)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pip_build_with_isolation_generates_the_bindings(tmp_path: Path) -> None:
    # The step that needs the isolated environment's packages (libclang) is the
    # generator, run by CMake; compiling its output is what scripts/setup.sh and
    # every other test do already, so the wheel here stops at the generated
    # sources (target orthanc_bindings, nothing installed) to keep the suite short.
    venv = tmp_path / "clean-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    result = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            "--config-settings=build-dir=" + str(tmp_path / "build"),
            "--config-settings=build.targets=orthanc_bindings",
            "--config-settings=install.components=none",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    generated = tmp_path / "build" / "generated"
    assert "def RestApiGet(" in (generated / "orthanc.pyi").read_text()
    assert (generated / "orthanc_sdk.cpp").stat().st_size > 100_000
