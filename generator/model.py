"""Stage 2: classification rules, raw header facts -> a typed, frozen model.

The model is what the emitters read and what `python -m generator --dump-model`
writes as sorted JSON, so an SDK upgrade shows up as a readable diff.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from .manifest import Handwritten, Manifest, StubAlias
from .raw import RawFunction, RawHeader, RawParam

PREFIX = "OrthancPlugin"
CONTEXT = "OrthancPluginContext *"
CONTEXTS = (CONTEXT, "const " + CONTEXT)  # the version checks take a const one
INTEGER_TYPES = {"int", "int32_t", "uint8_t", "uint16_t", "uint32_t", "int64_t", "uint64_t"}
FLOAT_TYPES = {"float"}
OUTPUT_TYPES = {
    "OrthancPluginMemoryBuffer *": "bytes",
    "uint16_t *": "uint16",
}


class UnsupportedError(Exception):
    """A function the rules cannot wrap; the message is the reason."""


@dataclass(frozen=True)
class EnumConstant:
    py_name: str
    c_name: str
    value: int
    doc: str


@dataclass(frozen=True)
class Enum:
    py_name: str
    c_name: str
    constants: tuple[EnumConstant, ...]
    doc: str


@dataclass(frozen=True)
class Param:
    """One Python-visible parameter, which may stand for several C parameters.

    kind: "str", "int", "float", "enum", "object" (a handle class instance),
    "optional_object" (a handle class instance or None, for the parameters the
    manifest lists as nullable), "buffer" (bytes-like; C pointer + size),
    "image_buffer" (bytes-like of at least pitch * height bytes), "dict" (str ->
    str; C count, keys, values).
    """

    py_name: str
    kind: str
    c_type: str
    target: str = ""  # enum or class Python name for "enum" and "object"
    c_names: tuple[str, ...] = ()
    size_type: str = ""  # "buffer": the C type of its size parameter


@dataclass(frozen=True)
class Function:
    """An SDK function wrapped automatically, as a global function or a method.

    returns: "none", "str" (freed char*), "static_str" (const char*), "int",
    "float", "enum", "object" (a new owned handle); `outputs` are C output
    parameters returned instead ("bytes", "uint16"), as a tuple when
    several. `checks_error`: the C result is an OrthancPluginErrorCode.
    """

    c_name: str
    py_name: str
    owner: str  # class Python name, "" for a global function
    owner_c_type: str
    params: tuple[Param, ...]
    returns: str
    returns_target: str
    outputs: tuple[str, ...]
    checks_error: bool
    marks_answered: bool  # a RestOutput method that answers the request
    nullable: bool  # a NULL text result means "none" (None), not an error
    doc: str
    since_sdk: str  # first SDK version, where the header says (1.12.9+ headers); else ""


@dataclass(frozen=True)
class HandleClass:
    py_name: str
    c_name: str
    destructor: str  # SDK function freeing an owned instance, "" if none
    doc: str


@dataclass(frozen=True)
class Unwrapped:
    c_name: str
    reason: str


@dataclass(frozen=True)
class Newer:
    """A function of a newer SDK than the header: calling it raises a clear error."""

    py_name: str
    owner: str  # class Python name, "" for a module function
    since_sdk: str


@dataclass(frozen=True)
class Model:
    sdk_version: str
    enums: tuple[Enum, ...]
    classes: tuple[HandleClass, ...]
    functions: tuple[Function, ...]
    handwritten: tuple[Handwritten, ...]
    unwrapped: tuple[Unwrapped, ...]
    sdk_functions: int  # M: every SDK function of the header
    newer: tuple[Newer, ...]  # wrapped with a newer SDK, absent from this header
    stub_aliases: tuple[StubAlias, ...] = ()

    @property
    def wrapped_count(self) -> int:
        return self.sdk_functions - len(self.unwrapped)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def py_name(c_name: str) -> str:
    """OrthancPluginDicomInstance -> DicomInstance."""
    if not c_name.startswith(PREFIX):
        raise ValueError(f"{c_name} does not start with {PREFIX}")
    return c_name[len(PREFIX) :]


def constant_name(enum_c_name: str, constant_c_name: str) -> str:
    """OrthancPluginChangeType_StableStudy -> STABLE_STUDY (the existing plugin's names)."""
    suffix = constant_c_name[len(enum_c_name) + 1 :]
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", suffix).upper()


def build_enum(raw_name: str, constants: tuple[tuple[str, int, str], ...], doc: str) -> Enum:
    return Enum(
        py_name=py_name(raw_name),
        c_name=raw_name,
        constants=tuple(
            EnumConstant(constant_name(raw_name, c), c, value, cdoc)
            for c, value, cdoc in constants
            if not c.startswith("_")
        ),
        doc=summary(doc),
    )


def summary(comment: str) -> str:
    """The Doxygen text without @param/@return/@ingroup... lines, @brief folded in."""
    lines = []
    for line in comment.splitlines():
        if line.startswith("@brief"):
            line = line[len("@brief") :].strip()
        elif line.startswith("@"):
            continue
        lines.append(line)
    text = "\n".join(lines).strip()
    # The brief line is usually repeated as the first sentence of the body.
    parts = text.split("\n\n", 1)
    if len(parts) == 2 and parts[1].replace("\n", " ").startswith(parts[0].rstrip(".")):
        text = parts[1]
    return text


@dataclass
class _Context:
    enums: set[str]
    handles: set[str]
    manifest: Manifest


def _pointee_handle(c_type: str, handles: set[str]) -> str:
    """'const OrthancPluginImage *' -> 'OrthancPluginImage' when it is a handle type."""
    match = re.fullmatch(r"(?:const )?(\w+) \*", c_type)
    if match and match.group(1) in handles:
        return match.group(1)
    return ""


def _is_size(param: RawParam) -> bool:
    return param.type in ("uint32_t", "uint64_t") and (
        param.name == "size" or param.name.endswith("Size")
    )


def _classify_params(fn: RawFunction, ctx: _Context) -> tuple[list[str], str, list[Param]]:
    """-> (outputs, owner C type, Python params), in the order of the C parameters."""
    params = list(fn.params[1:])
    outputs: list[str] = []
    while params and params[0].type in OUTPUT_TYPES:
        outputs.append(OUTPUT_TYPES[params[0].type])
        params.pop(0)
    owner = ""
    if params:
        owner = _pointee_handle(params[0].type, ctx.handles)
        if owner:
            params.pop(0)
    result: list[Param] = []
    i = 0
    while i < len(params):
        p = params[i]
        nxt = params[i + 1] if i + 1 < len(params) else None
        if p.type in ("const void *", "const char *") and nxt is not None and _is_size(nxt):
            result.append(
                Param(p.name, "buffer", p.type, c_names=(p.name, nxt.name), size_type=nxt.type)
            )
            i += 2
            continue
        if (
            p.type == "const void *"
            and p.name == "buffer"
            and any(q.name == "pitch" for q in params)
            and any(q.name == "height" for q in params)
        ):
            result.append(Param(p.name, "image_buffer", p.type, c_names=(p.name,)))
            i += 1
            continue
        if (
            p.type == "uint32_t"
            and p.name.endswith("Count")
            and i + 2 < len(params)
            and params[i + 1].type == params[i + 2].type == "const char *const *"
        ):
            name = p.name[: -len("Count")]
            result.append(
                Param(
                    name, "dict", "dict", c_names=(p.name, params[i + 1].name, params[i + 2].name)
                )
            )
            i += 3
            continue
        if p.type == "const char *":
            result.append(Param(p.name, "str", p.type, c_names=(p.name,)))
        elif p.type in INTEGER_TYPES:
            result.append(Param(p.name, "int", p.type, c_names=(p.name,)))
        elif p.type in FLOAT_TYPES:
            result.append(Param(p.name, "float", p.type, c_names=(p.name,)))
        elif p.type in ctx.enums:
            result.append(Param(p.name, "enum", p.type, py_name(p.type), c_names=(p.name,)))
        elif handle := _pointee_handle(p.type, ctx.handles):
            if f"{fn.name}.{p.name}" in ctx.manifest.nullable_params:
                result.append(
                    Param(p.name, "optional_object", p.type, py_name(handle), c_names=(p.name,))
                )
            else:
                result.append(Param(p.name, "object", p.type, py_name(handle), c_names=(p.name,)))
        else:
            raise UnsupportedError(f"parameter {p.name} of type {p.type}")
        i += 1
    return outputs, owner, result


def _classify_result(fn: RawFunction, ctx: _Context, outputs: list[str]) -> tuple[str, str, bool]:
    result = fn.result
    if result == "OrthancPluginErrorCode":
        return "none", "", True
    if outputs:
        raise UnsupportedError(f"output parameters with a {result} result")
    if result == "void":
        return "none", "", False
    if result == "char *":
        return "str", "", False
    if result == "const char *":
        return "static_str", "", False
    if result in INTEGER_TYPES:
        return "int", "", False
    if result in FLOAT_TYPES:
        return "float", "", False
    if result in ctx.enums:
        return "enum", py_name(result), False
    if handle := _pointee_handle(result, ctx.handles):
        return "object", py_name(handle), False
    raise UnsupportedError(f"result type {result}")


def method_name(c_name: str, owner: str) -> str:
    """A method's Python name: the SDK name less the prefix and, as the existing
    plugin names them, less its class's name when it starts with it
    (OrthancPluginFindMatcherIsMatch -> FindMatcher.IsMatch)."""
    name = py_name(c_name)
    if owner and name.startswith(owner) and len(name) > len(owner):
        return name[len(owner) :]
    return name


def sdk_alias(fn: Function) -> str:
    """The other name of a method that method_name() shortened: the existing plugin
    4.x used the SDK's full name (FindMatcher.FindMatcherIsMatch), 7.x the short
    one; scripts of both work. "" when there is none."""
    full = py_name(fn.c_name)
    return full if fn.owner and full != fn.py_name else ""


def _classify(fn: RawFunction, ctx: _Context) -> Function:
    outputs, owner, params = _classify_params(fn, ctx)
    returns, target, checks_error = _classify_result(fn, ctx, outputs)
    return Function(
        c_name=fn.name,
        py_name=method_name(fn.name, py_name(owner) if owner else ""),
        owner=py_name(owner) if owner else "",
        owner_c_type=owner,
        params=tuple(params),
        returns=returns,
        returns_target=target,
        outputs=tuple(outputs),
        checks_error=checks_error,
        nullable=fn.name in ctx.manifest.nullable_results,
        marks_answered=bool(owner)
        and py_name(fn.name) not in ctx.manifest.not_answering.get(py_name(owner), ()),
        doc=summary(fn.comment),
        since_sdk=fn.since_sdk,
    )


def build_model(header: RawHeader, manifest: Manifest) -> Model:
    """Applies the rules to every SDK function of `header`; see the module docstring."""
    sdk = [f for f in header.functions if f.params and f.params[0].type in CONTEXTS]
    names = {f.name for f in sdk}
    manifest.check_against(names, header.version)
    newer = _newer_functions(manifest, header.version, names)
    manifest = manifest.for_header(header.version)

    handles = set(header.opaque_types)
    ctx = _Context(enums={e.name for e in header.enums}, handles=handles, manifest=manifest)
    enums = tuple(
        sorted(
            (
                build_enum(e.name, e.constants, e.comment)
                for e in header.enums
                if not e.name.startswith("_")
            ),
            key=lambda e: e.py_name,
        )
    )

    destructors: dict[str, str] = {}
    for fn in sdk:
        if fn.name.startswith(PREFIX + "Free") and len(fn.params) == 2 and fn.result == "void":
            handle = _pointee_handle(fn.params[1].type, handles)
            if handle and not fn.params[1].type.startswith("const"):
                destructors[handle] = fn.name

    covered = manifest.covered()
    functions: list[Function] = []
    unwrapped: list[Unwrapped] = []
    failures: list[str] = []
    for fn in sdk:
        if fn.name in covered:
            continue
        if fn.name in manifest.unsupported:
            unwrapped.append(Unwrapped(fn.name, manifest.unsupported[fn.name]))
            continue
        if fn.name in destructors.values():
            continue  # the class frees its handle when collected
        try:
            functions.append(_classify(fn, ctx))
        except UnsupportedError as error:
            failures.append(f"{fn.name} (line {fn.line}): {error}")
    if failures:
        # All at once: an SDK upgrade usually brings several.
        raise UnsupportedError(
            "the rules cannot wrap these SDK functions; wrap them by hand or list them under "
            "[unsupported] in generator/manifest.toml with a reason:\n  " + "\n  ".join(failures)
        )

    classes = tuple(
        sorted(
            (
                HandleClass(py_name(h), h, destructors.get(h, ""), manifest.class_doc(py_name(h)))
                for h in handles
            ),
            key=lambda c: c.py_name,
        )
    )
    return Model(
        sdk_version=".".join(str(n) for n in header.version),
        enums=enums,
        classes=classes,
        functions=tuple(sorted(functions, key=lambda f: (f.owner, f.py_name))),
        handwritten=tuple(manifest.handwritten),
        unwrapped=tuple(sorted(unwrapped, key=lambda u: u.c_name)),
        sdk_functions=len(sdk),
        newer=newer,
        stub_aliases=manifest.stub_aliases,
    )


def _newer_functions(
    manifest: Manifest, version: tuple[int, ...], names: set[str]
) -> tuple[Newer, ...]:
    """The Python names of the wrapped functions that newer SDKs than `version` add."""
    unwrapped = set(manifest.unsupported)
    handwritten = {c: h for h in manifest.handwritten for c in h.covers}
    result = []
    for c_name, since in manifest.since_sdk.items():
        if c_name in names or c_name in unwrapped or c_name.startswith(PREFIX + "Free"):
            continue
        if c_name in handwritten:
            entry = handwritten[c_name]
            result.append(Newer(entry.py_name, entry.owner, since))
        else:
            owner = manifest.newer_methods.get(c_name, "")
            result.append(Newer(method_name(c_name, owner), owner, since))
    return tuple(sorted(result, key=lambda n: (n.owner, n.py_name)))


def model_from_json(data: dict[str, Any]) -> Model:
    """The inverse of Model.to_json_dict (for emitting from a saved model)."""
    if "stub_aliases" not in data:
        # Its hand-written part names binders that src/ no longer has.
        raise ValueError("a model saved by an older generator: save it again (--dump-model)")
    return Model(
        sdk_version=data["sdk_version"],
        enums=tuple(
            Enum(
                e["py_name"],
                e["c_name"],
                tuple(EnumConstant(**c) for c in e["constants"]),
                e["doc"],
            )
            for e in data["enums"]
        ),
        classes=tuple(HandleClass(**c) for c in data["classes"]),
        functions=tuple(
            Function(
                **{
                    **f,
                    "params": tuple(
                        Param(**{**p, "c_names": tuple(p["c_names"])}) for p in f["params"]
                    ),
                    "outputs": tuple(f["outputs"]),
                }
            )
            for f in data["functions"]
        ),
        handwritten=tuple(
            Handwritten(**{**h, "covers": tuple(h["covers"]), "registers": tuple(h["registers"])})
            for h in data["handwritten"]
        ),
        unwrapped=tuple(Unwrapped(**u) for u in data["unwrapped"]),
        sdk_functions=data["sdk_functions"],
        newer=tuple(Newer(**n) for n in data["newer"]),
        stub_aliases=tuple(StubAlias(**a) for a in data["stub_aliases"]),
    )
