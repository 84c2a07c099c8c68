"""Writing an Orthanc configuration for this plugin and finding the Orthanc server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

ORTHANC_CANDIDATES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc", "/usr/local/bin/Orthanc")


def find_orthanc() -> str:
    """The Orthanc executable: $ORTHANC_EXECUTABLE, then PATH, then Debian's location."""
    explicit = os.environ.get("ORTHANC_EXECUTABLE")
    if explicit:
        return explicit
    found = shutil.which("Orthanc")
    if found:
        return found
    for candidate in ORTHANC_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "the Orthanc server is not installed (Debian: apt-get install orthanc), "
        "or set ORTHANC_EXECUTABLE"
    )


def parse_interpreters(value: str) -> int | str:
    """'auto' or an integer >= 1, as the PythonInterpreters option takes it."""
    if value == "auto":
        return value
    number = int(value)
    if number < 1:
        raise ValueError("the number of interpreters must be at least 1")
    return number


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, recursively for nested sections."""
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def build_config(
    *,
    plugin: Path,
    script: Path,
    storage: Path,
    interpreters: int | str = 1,
    http_port: int = 8042,
    dicom_port: int = 4242,
    name: str = "orthanc-python-multi",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An Orthanc configuration: SQLite index and files under `storage`, this plugin only."""
    config: dict[str, Any] = {
        "Name": name,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(plugin)],
        "PythonScript": str(script),
        "PythonInterpreters": interpreters,
    }
    return merge(config, extra or {})
