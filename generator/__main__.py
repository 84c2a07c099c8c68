"""python -m generator: OrthancCPlugin.h -> bindings, stubs and the coverage report.

python -m generator --header /usr/include/orthanc/OrthancCPlugin.h --out-dir DIR
python -m generator --header H --dump-model model.json     # the model as JSON
python -m generator --from-model model.json --out-dir DIR  # emit without libclang
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .emit_child import emit_child
from .emit_cpp import emit_cpp, emit_handwritten_header
from .emit_pyi import emit_pyi
from .manifest import load_manifest
from .model import Model, model_from_json


def coverage_report(model: Model) -> str:
    lines = [f"wrapped {model.wrapped_count} / {model.sdk_functions} SDK functions"]
    lines += [f"  not wrapped: {u.c_name}: {u.reason}" for u in model.unwrapped]
    return "\n".join(lines)


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged outputs keep their timestamps, so the build does not recompile.
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--header", type=Path, help="OrthancCPlugin.h to parse (libclang)")
    source.add_argument("--from-model", type=Path, help="a model saved by --dump-model")
    parser.add_argument("--manifest", type=Path, help="default: generator/manifest.toml")
    parser.add_argument("--dump-model", type=Path, help="write the model as sorted JSON")
    parser.add_argument(
        "--out-dir", type=Path, help="write the C++ sources, orthanc.pyi, child/orthanc.py"
    )
    args = parser.parse_args(argv)

    if args.header:
        from .model import build_model
        from .parse import parse_header

        manifest = load_manifest(args.manifest) if args.manifest else load_manifest()
        model = build_model(parse_header(args.header.resolve()), manifest)
    else:
        model = model_from_json(json.loads(args.from_model.read_text(encoding="utf-8")))

    if args.dump_model:
        args.dump_model.parent.mkdir(parents=True, exist_ok=True)
        args.dump_model.write_text(
            json.dumps(model.to_json_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        _write_if_changed(args.out_dir / "orthanc_sdk.cpp", emit_cpp(model))
        _write_if_changed(args.out_dir / "orthanc_handwritten.h", emit_handwritten_header(model))
        _write_if_changed(args.out_dir / "orthanc.pyi", emit_pyi(model))
        (args.out_dir / "child").mkdir(exist_ok=True)
        _write_if_changed(args.out_dir / "child" / "orthanc.py", emit_child(model))
    print(coverage_report(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
