"""Stage 1: libclang reads OrthancCPlugin.h and returns raw facts (no interpretation).

Every top-level declaration of the header is one of the kinds handled here;
any other kind is an error, so an SDK upgrade that adds a new construct fails
loudly instead of being silently dropped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from clang import cindex

from .raw import RawEnum, RawFunction, RawHeader, RawParam


def compiler_include_dir() -> str:
    """The C compiler's own include folder (stdint.h...): the libclang wheel has none."""
    for compiler in ("cc", "gcc", "clang"):
        try:
            out = subprocess.run(
                [compiler, "-print-file-name=include"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if out and Path(out).is_dir():
            return out
    raise RuntimeError("no C compiler found to locate stddef.h/stdint.h (install gcc)")


def _clean_comment(raw: str | None) -> str:
    if not raw:
        return ""
    lines = []
    for line in raw.splitlines():
        line = line.strip()
        for prefix in ("/**<", "/**", "/*!<", "/*", "**/", "*/", "*"):
            if line.startswith(prefix):
                line = line[len(prefix) :]
                break
        if line.endswith("*/"):
            line = line[:-2]
        lines.append(line.strip())
    return "\n".join(lines).strip()


_SINCE_SDK = "ORTHANC_PLUGIN_SINCE_SDK "


def _since_sdk(cursor: cindex.Cursor) -> str:
    """The version of ORTHANC_PLUGIN_SINCE_SDK("x.y.z") on a declaration, "" if none.

    Newer headers define the macro as a clang `annotate` attribute when parsed by
    clang; older headers have no such macro and no per-function version.
    """
    for child in cursor.get_children():
        text: str = child.spelling
        if child.kind == cindex.CursorKind.ANNOTATE_ATTR and text.startswith(_SINCE_SDK):
            return text[len(_SINCE_SDK) :].strip()
    return ""


_IGNORED_KINDS = {cindex.CursorKind.STRUCT_DECL}  # described through their typedefs


def parse_header(path: Path, extra_args: tuple[str, ...] = ()) -> RawHeader:
    """Parses `path` as C and returns its top-level declarations."""
    index = cindex.Index.create()
    args = ["-x", "c", "-std=c99", f"-I{compiler_include_dir()}", *extra_args]
    unit = index.parse(
        str(path), args=args, options=cindex.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
    )
    errors = [d for d in unit.diagnostics if d.severity >= cindex.Diagnostic.Error]
    if errors:
        details = "\n".join(map(str, errors))
        raise RuntimeError(f"cannot parse {path}:\n{details}")

    functions: list[RawFunction] = []
    enums: list[RawEnum] = []
    opaque: list[str] = []
    callbacks: list[str] = []
    structs: list[str] = []
    version = [0, 0, 0]
    version_macros = {
        "ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER": 0,
        "ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER": 1,
        "ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER": 2,
    }
    main_file = str(path)
    for cursor in unit.cursor.get_children():
        if cursor.location.file is None or cursor.location.file.name != main_file:
            continue
        kind = cursor.kind
        if kind == cindex.CursorKind.MACRO_DEFINITION:
            if cursor.spelling in version_macros:
                tokens = [t.spelling for t in cursor.get_tokens()]
                version[version_macros[cursor.spelling]] = int(tokens[-1])
            continue
        if kind in (cindex.CursorKind.MACRO_INSTANTIATION, cindex.CursorKind.INCLUSION_DIRECTIVE):
            continue
        if kind == cindex.CursorKind.FUNCTION_DECL:
            if not cursor.is_definition():
                continue  # the plugin's own entry points, declared for plugins to define
            functions.append(
                RawFunction(
                    name=cursor.spelling,
                    result=cursor.result_type.spelling,
                    params=tuple(
                        RawParam(a.spelling, a.type.spelling) for a in cursor.get_arguments()
                    ),
                    comment=_clean_comment(cursor.raw_comment),
                    line=cursor.location.line,
                    since_sdk=_since_sdk(cursor),
                )
            )
        elif kind == cindex.CursorKind.TYPEDEF_DECL:
            underlying = cursor.underlying_typedef_type
            declaration = underlying.get_declaration()
            if underlying.kind == cindex.TypeKind.POINTER:
                callbacks.append(cursor.spelling)
            elif declaration.kind == cindex.CursorKind.ENUM_DECL:
                constants = tuple(
                    (c.spelling, c.enum_value, _clean_comment(c.raw_comment))
                    for c in declaration.get_children()
                    if c.kind == cindex.CursorKind.ENUM_CONSTANT_DECL
                )
                enums.append(
                    RawEnum(
                        cursor.spelling,
                        constants,
                        _clean_comment(cursor.raw_comment or declaration.raw_comment),
                    )
                )
            elif declaration.kind == cindex.CursorKind.STRUCT_DECL:
                (structs if declaration.is_definition() else opaque).append(cursor.spelling)
            else:
                raise RuntimeError(
                    f"{path}:{cursor.location.line}: unsupported typedef "
                    f"{cursor.spelling} ({underlying.kind})"
                )
        elif kind in _IGNORED_KINDS or kind == cindex.CursorKind.ENUM_DECL:
            continue
        else:
            raise RuntimeError(
                f"{path}:{cursor.location.line}: unsupported declaration {cursor.spelling} ({kind})"
            )
    return RawHeader(
        tuple(functions),
        tuple(enums),
        tuple(opaque),
        tuple(callbacks),
        tuple(structs),
        (version[0], version[1], version[2]),
    )
