"""The embedding layer (src/interpreter_pool.cpp) on its own, without Orthanc:
tests/embed/driver.cpp runs one scenario per fresh process, as CPython's
_testembed does; a crash or a hang fails the scenario."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    """A build tool of the test environment (pip's cmake, ninja), else PATH's."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is needed to build tests/embed/driver.cpp"
    return found


@pytest.fixture(scope="session")
def driver() -> Path:
    build = ROOT / "build" / f"embed-{sys.implementation.cache_tag}"
    configure = [
        _tool("cmake"),
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-G",
        "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DOPM_EMBED_TESTS=ON",
        f"-DPython3_EXECUTABLE={sys.executable}",
    ]
    for command in (
        configure,
        [_tool("cmake"), "--build", str(build), "--target", "opm_embed_driver"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return build / "opm_embed_driver"


def run(driver: Path, scenario: str) -> str:
    result = subprocess.run([str(driver), scenario], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"{scenario} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def test_start_and_stop_twice_in_one_process(driver: Path) -> None:
    # Orthanc's /tools/reset finalizes and initializes the plugin in the same process.
    assert run(driver, "restart").splitlines() == ["round 0 stopped", "round 1 stopped"]


def test_nested_attach_to_another_interpreter_and_back(driver: Path) -> None:
    assert run(driver, "nested-attach").splitlines() == ["nested attach ok"]


def test_cached_thread_states_are_reaped(driver: Path) -> None:
    # Threads that ended before the stop, and one that outlives it.
    assert run(driver, "reap-thread-states").splitlines() == ["thread states reaped"]


def test_unknown_scenario_is_refused(driver: Path) -> None:
    result = subprocess.run([str(driver), "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr
