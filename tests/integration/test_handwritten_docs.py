"""The hand-written part of the `orthanc` module has one source: its names,
keyword names and docstrings in generator/manifest.toml reach both the running
module (the C++ binders take them from the generated code) and the installed stubs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from generator.manifest import load_manifest, parse_version
from tests.installed import installed_stub

from .conftest import StartOrthanc

DUMP_DOCS = """
import json
import orthanc

docs = {}
for owner, name in json.loads(%r):
    target = getattr(orthanc, owner) if owner else orthanc
    docs[owner + '.' + name] = getattr(getattr(target, name, None), '__doc__', None)
orthanc.LogWarning('docs: ' + json.dumps(docs))
"""


def _installed_header_version() -> str:
    header = Path("/usr/include/orthanc/OrthancCPlugin.h").read_text(errors="replace")
    parts = [
        re.search(rf"#define\s+ORTHANC_PLUGINS_MINIMAL_{part}_NUMBER\s+(\d+)", header)
        for part in ("MAJOR", "MINOR", "REVISION")
    ]
    return ".".join(p.group(1) for p in parts if p is not None)


def _docstring(node: ast.FunctionDef) -> str | None:
    doc = ast.get_docstring(node)
    return doc.strip() if doc is not None else None


def _stub_docs() -> dict[str, str | None]:
    tree = ast.parse(installed_stub().read_text())
    docs: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            docs["." + node.name] = _docstring(node)
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    docs[f"{node.name}.{member.name}"] = _docstring(member)
    return docs


def _keywords(signature_line: str) -> list[str]:
    """The parameter names of pybind11's signature line, `self` aside:
    "F(self: orthanc.X, index: int) -> int" -> ["index"]."""
    names = re.findall(r"[(,]\s*(\w+)\s*:", signature_line.split(") ->")[0])
    return [name for name in names if name != "self"]


def test_docstrings_are_the_manifests(orthanc: StartOrthanc) -> None:
    manifest = load_manifest().for_header(parse_version(_installed_header_version()))
    entries = {f"{e.owner}.{e.py_name}": e.doc for e in manifest.handwritten}
    keywords = {f"{e.owner}.{e.py_name}": e.keywords() for e in manifest.handwritten}
    assert len(entries) >= 30 and all(entries.values())

    names = json.dumps([key.split(".", 1) for key in entries])
    server = orthanc(DUMP_DOCS % names, interpreters=2)
    line = next(x for x in server.log().splitlines() if "docs: " in x)
    running = json.loads(line.split("docs: ", 1)[1])
    stubs = _stub_docs()
    for key, doc in entries.items():
        # pybind11 puts the signature line first, then the docstring.
        assert running[key] is not None, f"{key} is missing from the module"
        assert running[key].rstrip().endswith("\n" + doc), key
        assert stubs.get(key) == doc, key
        # The keyword names a script may call it with: the manifest's signature.
        required, optional = keywords[key]
        assert _keywords(running[key].splitlines()[0]) == [*required, *optional], key
        for name in optional:
            assert f"{name}: " in running[key] and "= None" in running[key], key
