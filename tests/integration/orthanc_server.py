"""A real Orthanc server with this plugin, started on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from orthanc_python_multi import plugin_path
from orthanc_python_multi.server import build_config, find_orthanc

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OrthancServer:
    """One Orthanc process; `url` is its REST API on 127.0.0.1."""

    folder: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    return_code: int | None = None
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def log_path(self) -> Path:
        return self.folder / "orthanc.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['HttpPort']}"

    @property
    def dicom_port(self) -> int:
        return int(self.config["DicomPort"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, wait: bool = True) -> None:
        config_file = self.folder / "orthanc.json"
        config_file.write_text(json.dumps(self.config, indent=2))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [find_orthanc(), "--verbose", str(config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with {self.process.returncode} at start:\n{self.log()}"
                )
            try:
                if requests.get(self.url + "/system", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {START_TIMEOUT_S} s:\n{self.log()}")

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> int:
        """For a server expected to stop by itself (a failed start)."""
        assert self.process is not None
        try:
            self.return_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return self.return_code

    def stop(self) -> int:
        """SIGTERM, then the exit code (the process is killed if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"Orthanc did not stop within {STOP_TIMEOUT_S} s")
        self.return_code = self.process.returncode
        self.session.close()
        return self.return_code

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        return self.session.get(self.url + path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        return self.session.post(self.url + path, data=data, **kwargs)


def make_server(
    folder: Path,
    script: str,
    *,
    interpreters: int | str = 1,
    extra: dict[str, Any] | None = None,
) -> OrthancServer:
    """An Orthanc (not started) running `script` (its source text) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    script_file = folder / "plugin_script.py"
    script_file.write_text(script)
    storage = folder / "storage"
    config = build_config(
        plugin=Path(os.environ.get("ORTHANC_PYTHON_MULTI_PLUGIN", plugin_path())),
        script=script_file,
        storage=storage,
        interpreters=interpreters,
        http_port=free_port(),
        dicom_port=free_port(),
        name=folder.name,
        extra=extra,
    )
    return OrthancServer(folder=folder, config=config)
