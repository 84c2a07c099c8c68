"""Shared pytest configuration: the layer markers, and each test's outcome visible to fixtures."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# One marker per folder (the layers of tests/README.md), so `-m unit` or
# `-m "not integration"` selects a layer without a decorator on every test.
LAYERS = {
    "generator": "unit",
    "scripts": "unit",
    "embed": "embed",
    "integration": "integration",
    "package": "package",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {sorted(LAYERS)}")
        item.add_marker(LAYERS[folder])
    # tests/package drives the Debian roots from outside: inside one (scripts/in-root.sh
    # sets OPM_ENVIRONMENT), they are deselected, so a CI run runs them once.
    if os.environ.get("OPM_ENVIRONMENT"):
        outside = [item for item in items if item.get_closest_marker("package")]
        if outside:
            config.hook.pytest_deselected(items=outside)
            items[:] = [item for item in items if not item.get_closest_marker("package")]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
