"""Every name of the existing plugin's `orthanc` module exists here too.

The existing plugin installed in this environment (Debian's orthanc-python: 4.0 on
Debian 12, 7.1 on forky) and this plugin each run the same script in a real
Orthanc, which lists the module: functions, classes, their members and the enum
values. Nothing is hard-coded: a name the existing plugin has and this one lacks
fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.process import make_orthanc

from .orthanc_server import OrthancServer, make_server

EXISTING_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")

LIST_MODULE = """
import inspect
import json
import os
import orthanc

names = {}
for name in dir(orthanc):
    if name.startswith('_'):
        continue
    value = getattr(orthanc, name)
    members = None
    if inspect.isclass(value):
        members = sorted(m for m in dir(value) if not m.startswith('_'))
    names[name] = members
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'names.json')
with open(path, 'w') as f:
    json.dump(names, f)
"""


def _names(server: OrthancServer) -> dict[str, list[str] | None]:
    server.start()
    try:
        return json.loads((server.folder / "names.json").read_text())  # type: ignore[no-any-return]
    finally:
        assert server.stop() == 0, server.log()


def test_every_name_of_the_existing_plugin_exists(tmp_path: Path, interpreters: int) -> None:
    assert EXISTING_PLUGIN.is_file(), "the existing plugin (Debian orthanc-python) is needed"
    existing = _names(
        OrthancServer(make_orthanc(tmp_path / "existing", LIST_MODULE, plugin=EXISTING_PLUGIN))
    )
    ours = _names(make_server(tmp_path / "ours", LIST_MODULE, interpreters=interpreters))
    assert len(existing) > 100  # the listing worked

    missing = sorted(name for name in existing if name not in ours)
    for name, members in existing.items():
        if members is not None and name in ours:
            ours_members = set(ours[name] or ())
            missing += [f"{name}.{member}" for member in members if member not in ours_members]
    assert missing == []
