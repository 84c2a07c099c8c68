"""The ``orthanc-python-multi`` command."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from . import plugin_path
from .server import build_config, find_orthanc, parse_interpreters


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orthanc-python-multi",
        description="Orthanc with Python plugins running in parallel sub-interpreters.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugin-path", help="print the absolute path of the plugin library")

    run = commands.add_parser("run", help="run Orthanc in the foreground with a Python script")
    run.add_argument("script", type=Path, help="the Python plugin script")
    run.add_argument(
        "--interpreters",
        type=parse_interpreters,
        default=1,
        help="number of interpreters, or 'auto' for one per CPU core (default: 1)",
    )
    run.add_argument("--http-port", type=int, default=8042)
    run.add_argument("--dicom-port", type=int, default=4242)
    run.add_argument(
        "--storage",
        type=Path,
        default=Path("orthanc-storage"),
        help="folder for the SQLite index and the DICOM files (default: ./orthanc-storage)",
    )
    run.add_argument(
        "--config", type=Path, help="JSON file whose options are merged over the generated ones"
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="Orthanc's --verbose: its information-level log lines too "
        "(print() output shows with or without it)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    script = args.script.resolve()
    if not script.is_file():
        print(f"orthanc-python-multi: no such script: {script}", file=sys.stderr)
        return 2
    plugin = plugin_path()
    if not plugin.is_file():
        print(f"orthanc-python-multi: the plugin library is missing: {plugin}", file=sys.stderr)
        return 2
    extra = json.loads(args.config.read_text()) if args.config else {}
    storage = args.storage.resolve()
    storage.mkdir(parents=True, exist_ok=True)
    config = build_config(
        plugin=plugin,
        script=script,
        storage=storage,
        interpreters=args.interpreters,
        http_port=args.http_port,
        dicom_port=args.dicom_port,
        extra=extra,
    )
    with tempfile.TemporaryDirectory(prefix="orthanc-python-multi-") as folder:
        config_file = Path(folder) / "orthanc.json"
        config_file.write_text(json.dumps(config, indent=2))
        command = [find_orthanc(), *(["--verbose"] if args.verbose else []), str(config_file)]
        # Own session: a terminal's Ctrl-C reaches only this process, which
        # forwards it once, so Orthanc stops cleanly exactly once.
        server = subprocess.Popen(command, start_new_session=True)

        def forward(signum: int, _frame: FrameType | None) -> None:
            if server.poll() is None:
                server.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        return_code = server.wait()
    if return_code < 0:
        # Killed by a signal Orthanc does not handle.
        return 128 - return_code
    return return_code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "plugin-path":
        print(plugin_path())
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
