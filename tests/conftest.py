"""Shared pytest configuration: the layer markers, and each test's outcome visible to fixtures."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# One marker per folder (the layers of tests/README.md), so `-m unit` or
# `-m "not integration"` selects a layer without a decorator on every test.
LAYERS = {"generator": "unit", "scripts": "unit", "embed": "embed", "integration": "integration"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {sorted(LAYERS)}")
        item.add_marker(LAYERS[folder])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
