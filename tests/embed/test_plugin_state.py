"""The plugin's process-wide state: one pointer to the state of the running plugin
(src/plugin_state.h) and what cannot live in it, nothing else.

Read from the symbol table of the plugin in the build tree (pip installs it
stripped): every object of namespace opm in a writable section (.data, .bss and
their thread-local forms). Constants (families, trampoline tables) live in
read-only sections and are not counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each one, and why it cannot be a member of plugin_state:
ALLOWED = {
    # The one pointer through which every callback reaches the running plugin.
    "opm::(anonymous namespace)::g_state",
    # Thread states cached by attach_guard, across pools: a thread may exit (and
    # delete its cached states) after the pool that created them is gone.
    "opm::(anonymous namespace)::g_thread_states",
    # Each OS thread's cached thread states (thread_local: deleted at thread exit).
    "opm::(anonymous namespace)::t_cache",
    # Orthanc's context, needed to log before the state exists and after it ends.
    "opm::(anonymous namespace)::g_context",
}

# objdump -t: address, flags, section, size, name (which may hold spaces).
WRITABLE = re.compile(r"\s(?:\.data|\.bss|\.tdata|\.tbss)\s+[0-9a-f]+\s+(.+)$")


def built_plugin() -> Path:
    """The plugin that `pip install .` built last here (build/<wheel tag>/)."""
    built = sorted(ROOT.glob("build/*/libOrthancPythonMulti.so"), key=lambda p: p.stat().st_mtime)
    assert built, "scripts/setup.sh builds the plugin under build/"
    return built[-1]


def mutable_objects() -> set[str]:
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (binutils) reads the plugin's symbols"
    table = subprocess.run(
        [objdump, "-t", "-C", str(built_plugin())], check=True, capture_output=True, text=True
    ).stdout
    found = set()
    for line in table.splitlines():
        match = WRITABLE.search(line)
        if match and " F " not in line and match.group(1).startswith("opm::"):
            found.add(match.group(1).strip())
    return found


def test_plugin_has_at_most_four_mutable_globals() -> None:
    found = mutable_objects()
    assert found, "the symbol table lists the plugin's objects (an unstripped build)"
    assert found <= ALLOWED, f"mutable objects outside plugin_state: {sorted(found - ALLOWED)}"
    assert len(found) <= 4
