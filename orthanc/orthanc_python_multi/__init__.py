"""orthanc-python-multi: run Orthanc Python plugins in parallel sub-interpreters.

This package holds the plugin library (``lib/libOrthancPythonMulti.so``) and the
``orthanc-python-multi`` command. The ``orthanc`` module itself exists only
inside Orthanc, where the plugin embeds Python.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

PLUGIN_FILE_NAME = "libOrthancPythonMulti.so"


def plugin_path() -> Path:
    """Absolute path of the installed plugin library."""
    return (Path(__file__).resolve().parent / "lib" / PLUGIN_FILE_NAME).resolve()
