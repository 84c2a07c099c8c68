"""The manifest: SDK functions wrapped by hand, and those left unwrapped with a reason."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent / "manifest.toml"

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """'1.12.8' -> (1, 12, 8)."""
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Handwritten:
    py_name: str
    owner: str
    covers: tuple[str, ...]
    binder: str  # the C++ function that defines it; empty when `registers` does
    signature: str
    doc: str
    # A one-callable registration: (callback list, trampoline) of its family file,
    # registered with Orthanc by covers[0](context, trampoline). The generated
    # module defines the Python function; there is no binder.
    registers: tuple[str, ...] = ()

    def keywords(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The keyword names of the binding's parameters, `self` aside: those
        without a default, then those whose default is None. Raises ValueError for
        any other default or for *args, **kwargs and keyword-only parameters,
        which the C++ side (binding_text in src/binding_text.h) cannot express."""
        function = ast.parse(f"def f{self.signature}: ...").body[0]
        assert isinstance(function, ast.FunctionDef)
        arguments = function.args
        if arguments.posonlyargs or arguments.vararg or arguments.kwonlyargs or arguments.kwarg:
            raise ValueError(f"{self.py_name}: only plain parameters, not {self.signature}")
        if not all(isinstance(d, ast.Constant) and d.value is None for d in arguments.defaults):
            raise ValueError(f"{self.py_name}: a default can only be None, in {self.signature}")
        names = [argument.arg for argument in arguments.args]
        if self.owner:
            if not names or names[0] != "self":
                raise ValueError(f"{self.py_name}: a method's first parameter is self")
            names = names[1:]
        required = len(names) - len(arguments.defaults)
        return tuple(names[:required]), tuple(names[required:])


@dataclass(frozen=True)
class StubAlias:
    """A type alias of orthanc.pyi for the callables the hand-written signatures take."""

    name: str
    type: str
    comment: str  # written above the alias when not empty


@dataclass
class Manifest:
    handwritten: list[Handwritten] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)  # C name -> reason
    class_docs: dict[str, str] = field(default_factory=dict)
    not_answering: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nullable_results: frozenset[str] = frozenset()
    # "OrthancPluginCreateDicom.pixelData": handle parameters that accept None (NULL)
    nullable_params: frozenset[str] = frozenset()
    # C name -> first SDK version that has it, for the functions the manifest
    # cites that are newer than the oldest supported header (1.10.1).
    since_sdk: dict[str, str] = field(default_factory=dict)
    # C name -> class Python name, for the functions of since_sdk that are methods.
    newer_methods: dict[str, str] = field(default_factory=dict)
    stub_aliases: tuple[StubAlias, ...] = ()

    def covered(self) -> set[str]:
        return {name for entry in self.handwritten for name in entry.covers}

    def class_doc(self, name: str) -> str:
        return self.class_docs.get(name, "")

    def in_header(self, c_name: str, header_version: Version) -> bool:
        """Whether a header of `header_version` has `c_name`, as far as the manifest says."""
        since = self.since_sdk.get(c_name)
        return since is None or parse_version(since) <= header_version

    def check_against(self, sdk_functions: set[str], header_version: Version) -> None:
        """Every name the manifest cites must exist, once, in a header of its version.

        A name newer than the header (by `since_sdk`) must be absent from it; any
        other name must be present.
        """
        cited = [name for entry in self.handwritten for name in entry.covers]
        cited += list(self.unsupported)
        param_functions = {name.split(".")[0] for name in self.nullable_params}
        cited_set = set(cited) | self.nullable_results | param_functions | set(self.since_sdk)
        undated = sorted(n for n in cited_set - sdk_functions if n not in self.since_sdk)
        if undated:
            raise ValueError(f"manifest cites functions the SDK header lacks: {undated}")
        missing = sorted(n for n in cited_set - sdk_functions if self.in_header(n, header_version))
        if missing:
            version = ".".join(map(str, header_version))
            raise ValueError(
                f"manifest [since_sdk] says SDK {version} has these, but its header lacks them: "
                f"{missing}"
            )
        early = sorted(
            n for n in cited_set & sdk_functions if not self.in_header(n, header_version)
        )
        if early:
            raise ValueError(f"manifest [since_sdk] dates these later than the header: {early}")
        twice = sorted({name for name in cited if cited.count(name) > 1})
        if twice:
            raise ValueError(f"manifest cites these functions more than once: {twice}")

    def for_header(self, header_version: Version) -> Manifest:
        """The entries that apply to a header of `header_version`.

        A hand-written binding applies when a function it covers is in that header
        (CreateJob covers CreateJob2 too, where the header has it), one with
        `registers` when its registration function covers[0] is; an unsupported
        entry when its function is.
        """
        return Manifest(
            [entry for entry in self.handwritten if _applies(entry, self, header_version)],
            {n: r for n, r in self.unsupported.items() if self.in_header(n, header_version)},
            self.class_docs,
            self.not_answering,
            frozenset(n for n in self.nullable_results if self.in_header(n, header_version)),
            frozenset(
                n for n in self.nullable_params if self.in_header(n.split(".")[0], header_version)
            ),
            self.since_sdk,
            self.newer_methods,
            self.stub_aliases,
        )


def _applies(entry: Handwritten, manifest: Manifest, header_version: Version) -> bool:
    if entry.registers:  # the generated module calls covers[0]
        return manifest.in_header(entry.covers[0], header_version)
    return not entry.covers or any(manifest.in_header(n, header_version) for n in entry.covers)


def _check_entry(path: Path, entry: Handwritten) -> None:
    """Names written into generated C++ (as identifiers, or keyword names) must be
    identifiers, a signature has only what a binder can take (binding_text), and an
    entry has a binder or `registers` (its callback list and trampoline), not both."""
    if entry.binder and entry.registers:
        raise ValueError(f"{path}: {entry.py_name} has both a binder and `registers`")
    if not entry.binder and not entry.registers:
        raise ValueError(f"{path}: {entry.py_name} needs a binder or `registers`")
    try:
        required, optional = entry.keywords()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    names = [entry.py_name, *([entry.binder] if entry.binder else entry.registers)]
    names += [*required, *optional]  # written into C++ string literals
    if entry.registers:
        if len(entry.registers) != 2 or not entry.covers or entry.owner:
            raise ValueError(
                f"{path}: {entry.py_name}: `registers` is [list, trampoline], for a module "
                "function whose first `covers` is the SDK registration function"
            )
        if len(required) != 1 or optional:
            raise ValueError(f"{path}: {entry.py_name}: `registers` takes one callable")
    if not all(name.isidentifier() for name in names):
        raise ValueError(f"{path}: not an identifier among {names!r} ({entry.py_name})")


def load_manifest(path: Path = DEFAULT_PATH) -> Manifest:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    handwritten = [
        Handwritten(
            py_name=entry["name"],
            owner=entry.get("class", ""),
            covers=tuple(entry.get("covers", ())),
            binder=entry.get("binder", ""),
            signature=entry["signature"],
            doc=entry.get("doc", ""),
            registers=tuple(entry.get("registers", ())),
        )
        for entry in data.get("handwritten", [])
    ]
    for entry in handwritten:
        _check_entry(path, entry)
    return Manifest(
        handwritten,
        dict(data.get("unsupported", {})),
        dict(data.get("class_docs", {})),
        {cls: tuple(names) for cls, names in data.get("not_answering", {}).items()},
        frozenset(data.get("nullable_results", {}).get("functions", [])),
        frozenset(data.get("nullable_params", {}).get("params", [])),
        dict(data.get("since_sdk", {})),
        dict(data.get("newer_methods", {})),
        _stub_aliases(path, data.get("stub_aliases", {})),
    )


def _stub_aliases(path: Path, table: dict[str, list[str]]) -> tuple[StubAlias, ...]:
    aliases = []
    for name, value in table.items():
        if not (
            name.isidentifier()
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(part, str) for part in value)
        ):
            raise ValueError(f"{path}: [stub_aliases] {name} = [type, comment], not {value!r}")
        aliases.append(StubAlias(name, value[0], value[1]))
    return tuple(aliases)
