"""A real Orthanc server with this plugin, with requests-based helpers for tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from orthanc_python_multi import plugin_path
from tests.support.process import OrthancProcess, make_orthanc

__all__ = ["OrthancServer", "make_server"]


class OrthancServer(OrthancProcess):
    def __init__(self, process: OrthancProcess) -> None:
        super().__init__(process.folder, process.config, verbose=process.verbose)
        self.session = requests.Session()

    def stop(self, timeout: float = 60.0) -> int:
        self.session.close()
        return super().stop(timeout)

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
    verbose: bool = True,
) -> OrthancServer:
    """An Orthanc (not started) with this plugin, running `script` (source text)."""
    plugin = Path(os.environ.get("ORTHANC_PYTHON_MULTI_PLUGIN", plugin_path()))
    return OrthancServer(
        make_orthanc(
            folder, script, plugin=plugin, interpreters=interpreters, extra=extra, verbose=verbose
        )
    )


@contextmanager
def running(server: OrthancServer) -> Iterator[OrthancServer]:
    """Starts `server`, yields it, then checks it stops with code 0 and no fatal error
    (for module-scoped fixtures, which the per-test `orthanc` fixture does not cover)."""
    server.start()
    try:
        yield server
    finally:
        code = server.stop()
        log = server.log()
    assert code == 0, log
    assert "Fatal Python error" not in log
