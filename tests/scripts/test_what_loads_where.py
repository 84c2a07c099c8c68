"""scripts/what-loads-where.py, run as a user runs it: with the CPython under test,
in an environment holding the packages (here the test environment's requests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "what-loads-where.py"
STDLIB = "standard library (what examples/ import, ssl, sqlite3...)"


def rows(document: str) -> dict[str, list[str]]:
    """The table's rows by package: [version, main, sub, error, degraded, notes]."""
    table = {}
    for line in document.splitlines():
        if line.startswith("| ") and not line.startswith(("| package", "|---")):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            table[cells[0]] = cells[1:]
    return table


def test_table_says_requests_runs_charset_normalizer_from_source_in_a_sub_interpreter(
    tmp_path: Path,
) -> None:
    document = tmp_path / "what-loads-where.md"
    document.write_text("# What loads where\n")
    command = [sys.executable, str(SCRIPT), "--only", STDLIB, "requests", "lz4"]
    for _ in range(2):  # a second run replaces this CPython's section
        subprocess.run([*command, "--update", str(document)], check=True, timeout=600)
    text = document.read_text()
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert text.count(f"<!-- begin CPython {minor} -->") == 1
    assert text.startswith("# What loads where\n")
    table = rows(text)
    assert table[STDLIB][1:5] == ["yes", "yes", "", ""]
    version, main, sub, error, degraded, notes = table["requests"]
    assert (main, sub, error) == ("yes", "yes", "")
    assert degraded == ""
    assert "charset detection: charset_normalizer" in notes
    assert "ran from their Python source: charset_normalizer." in notes
    assert table["lz4"][0] == "not installed"
