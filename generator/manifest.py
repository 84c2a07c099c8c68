"""The manifest: SDK functions wrapped by hand, and those left unwrapped with a reason."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Handwritten

DEFAULT_PATH = Path(__file__).resolve().parent / "manifest.toml"


@dataclass
class Manifest:
    handwritten: list[Handwritten] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)  # C name -> reason
    class_docs: dict[str, str] = field(default_factory=dict)
    not_answering: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nullable_results: frozenset[str] = frozenset()
    # "OrthancPluginCreateDicom.pixelData": handle parameters that accept None (NULL)
    nullable_params: frozenset[str] = frozenset()

    def covered(self) -> set[str]:
        return {name for entry in self.handwritten for name in entry.covers}

    def class_doc(self, name: str) -> str:
        return self.class_docs.get(name, "")

    def check_against(self, sdk_functions: set[str]) -> None:
        """Every name the manifest cites must exist in the header, once."""
        cited = [name for entry in self.handwritten for name in entry.covers]
        cited += list(self.unsupported)
        param_functions = {name.split(".")[0] for name in self.nullable_params}
        unknown_nullable = sorted((self.nullable_results | param_functions) - sdk_functions)
        if unknown_nullable:
            raise ValueError(f"manifest cites functions the SDK header lacks: {unknown_nullable}")
        unknown = sorted(set(cited) - sdk_functions)
        if unknown:
            raise ValueError(f"manifest cites functions the SDK header lacks: {unknown}")
        twice = sorted({name for name in cited if cited.count(name) > 1})
        if twice:
            raise ValueError(f"manifest cites these functions more than once: {twice}")


def load_manifest(path: Path = DEFAULT_PATH) -> Manifest:
    from .model import Handwritten

    data = tomllib.loads(path.read_text(encoding="utf-8"))
    handwritten = [
        Handwritten(
            py_name=entry["name"],
            owner=entry.get("class", ""),
            covers=tuple(entry.get("covers", ())),
            binder=entry["binder"],
            signature=entry["signature"],
            doc=entry.get("doc", ""),
        )
        for entry in data.get("handwritten", [])
    ]
    return Manifest(
        handwritten,
        dict(data.get("unsupported", {})),
        dict(data.get("class_docs", {})),
        {cls: tuple(names) for cls, names in data.get("not_answering", {}).items()},
        frozenset(data.get("nullable_results", {}).get("functions", [])),
        frozenset(data.get("nullable_params", {}).get("params", [])),
    )
