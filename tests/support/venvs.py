"""The imaging virtual environment (numpy, Pillow, pydicom) of the tests and benchmarks.

numpy and Pillow cannot load in sub-interpreters, so they never go into the
project's .venv: they live in a virtual environment of their own, given to this
plugin with PythonVirtualEnv (and to the existing plugin with PYTHONPATH).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

IMAGING_PACKAGES = ["numpy", "Pillow", "pydicom"]
INSTALL_TIMEOUT_S = 900


def _version(python: str) -> str:
    if python == sys.executable:
        return sys.version
    return subprocess.run(
        [python, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()


def imaging_venv(root: Path, python: str = sys.executable) -> Path:
    """A virtual environment of `python` in `root` holding IMAGING_PACKAGES, made once
    (a marker file records what it holds; a change of either remakes it). Where that
    Python cannot make virtual environments (Debian without python3.X-venv), the
    packages are installed with `pip install --target root/site-packages` instead:
    site_packages() finds them in either layout."""
    done = root / "opm-installed"
    wanted = " ".join(IMAGING_PACKAGES) + " " + _version(python)
    if done.exists() and done.read_text() == wanted:
        return root
    made = subprocess.run(
        [python, "-m", "venv", "--clear", str(root)], capture_output=True, text=True, timeout=300
    )
    if made.returncode == 0:
        install = [str(root / "bin" / "python"), "-m", "pip", "install", "-q"]
    else:
        target = root / "site-packages"
        install = [python, "-m", "pip", "install", "-q", "--upgrade", "--target", str(target)]
    subprocess.run([*install, *IMAGING_PACKAGES], check=True, timeout=INSTALL_TIMEOUT_S)
    done.write_text(wanted)
    return root


def site_packages(root: Path) -> Path:
    """The folder of imaging_venv(root) that holds the packages."""
    found = sorted(root.glob("lib/python3*/site-packages"))
    if found:
        return found[-1]
    if (root / "site-packages").is_dir():
        return root / "site-packages"
    raise FileNotFoundError(f"no site-packages in {root}")
