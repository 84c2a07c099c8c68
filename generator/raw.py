"""The raw facts that parse.py reads from OrthancCPlugin.h (no interpretation).

Kept apart from parse.py so that the later stages, which only read these
types, never import libclang.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawParam:
    name: str
    type: str  # C spelling, e.g. "const char *"


@dataclass(frozen=True)
class RawFunction:
    name: str
    result: str
    params: tuple[RawParam, ...]
    comment: str
    line: int
    since_sdk: str = ""  # ORTHANC_PLUGIN_SINCE_SDK annotation (SDK 1.12.9 and later headers)


@dataclass(frozen=True)
class RawEnum:
    name: str
    constants: tuple[tuple[str, int, str], ...]  # (C name, value, comment)
    comment: str


@dataclass(frozen=True)
class RawHeader:
    functions: tuple[RawFunction, ...]
    enums: tuple[RawEnum, ...]
    opaque_types: tuple[str, ...]  # typedefs of incomplete structs: handle types
    callback_types: tuple[str, ...]  # typedefs of function pointers
    struct_types: tuple[str, ...]  # typedefs of complete structs
    version: tuple[int, int, int]  # ORTHANC_PLUGINS_MINIMAL_*_NUMBER
