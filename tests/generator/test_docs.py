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


# The "where it runs" column against the dispatch policies the families declare.

POLICY_WORDS = {"least_loaded": "least loaded", "first_registered": "the first interpreter"}


def _where_it_runs() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in (ROOT / "docs" / "dispatch.md").read_text().splitlines():
        if line.startswith("| `"):
            columns = line.split("|")
            for name in re.findall(r"`(\w+)\(", columns[1]):
                rows[name] = columns[3]
    return rows


def _declared_policies() -> dict[str, set[str]]:
    """Registration function -> the dispatch policies of the families (or routes)
    that its source file declares: from the `registers` entries of the manifest
    (family name -> file) and the binders each file defines."""
    policies_of_file: dict[str, set[str]] = {}
    family_file: dict[str, str] = {}
    binder_file: dict[str, str] = {}
    for source in sorted((ROOT / "src").glob("*.cpp")):
        text = source.read_text()
        policies: set[str] = set()
        for name, body in re.findall(r"family<[^;{]*>\s+(\w+)\s*\{([^;]*)\};", text):
            family_file[name] = source.name
            found = re.search(r"dispatch_policy::(\w+)", body)
            policies.add(found.group(1) if found else "least_loaded")
        policies.update(re.findall(r"dispatch_to\([^;]*?dispatch_policy::(\w+)", text, re.S))
        policies_of_file[source.name] = policies
        for binder in re.findall(r"^void (bind_\w+)\(", text, re.M):
            binder_file[binder] = source.name
    declared: dict[str, set[str]] = {}
    for entry in load_manifest().handwritten:
        source = family_file.get(entry.registers[0]) if entry.registers else None
        source = source or binder_file.get(entry.binder)
        if source is not None and entry.py_name.startswith("Register"):
            declared[entry.py_name] = policies_of_file[source]
    return declared


def test_where_it_runs_says_the_declared_dispatch_policy() -> None:
    rows = _where_it_runs()
    declared = _declared_policies()
    assert len(declared) >= 20, "every family file declares its families"
    for function, policies in sorted(declared.items()):
        assert len(policies) == 1, f"{function}: one policy per family file, not {policies}"
        words = POLICY_WORDS[next(iter(policies))]
        assert words in rows[function], f"{function}: docs/dispatch.md should say '{words}'"
