"""docs/dispatch.md's table lists every registration function of the manifest,
and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from generator.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def _table_functions() -> set[str]:
    names: set[str] = set()
    for line in (ROOT / "docs" / "dispatch.md").read_text().splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names.update(re.findall(r"`(\w+)\(", first_column))
    return names


def test_dispatch_table_matches_the_manifest() -> None:
    registrations = {
        entry.py_name
        for entry in load_manifest().handwritten
        if not entry.owner
        and (entry.py_name.startswith("Register") or entry.py_name == "CreateJob")
    }
    assert _table_functions() == registrations
