"""How a multiprocessing child process finds a function of the plugin script.

Inside Orthanc, the plugin makes multiprocessing pickle a function of the plugin
script (or of a module that imports `orthanc`) as a call of function_from_script,
so that the child process, which imports the script again (spawn, forkserver),
gets either the function or, when the script cannot be imported there, a
function that raises ScriptImportError with the cause: the pool sends that back,
and the request fails with the cause in Orthanc's log instead of waiting forever
for a child that died (a multiprocessing.Pool loses the task of a child that
dies and starts another child, which dies the same way).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class OutsideOrthancError(RuntimeError):
    """An Orthanc SDK function was called in a multiprocessing child process (raised by
    the child's `orthanc` module, generator/emit_child.py)."""


class ScriptImportError(RuntimeError):
    """The module of a pool's function could not be imported in a child process."""


class PoolOfTheParent:
    """What multiprocessing.Pool(...) makes while a child process imports the plugin
    script: the pool of the Orthanc process runs the tasks, and a child process of
    a pool cannot have children of its own (it is a daemon)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"this multiprocessing pool was made while the plugin script was imported in a "
            f"child process (pid {os.getpid()}), where it starts no process: use the pool "
            "in the plugin script's callbacks, inside Orthanc"
        )

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass

    def join(self) -> None:
        pass


@contextmanager
def _pools_of_the_parent() -> Iterator[None]:
    import multiprocessing.pool

    made_by = multiprocessing.pool.Pool
    multiprocessing.pool.Pool = PoolOfTheParent  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        multiprocessing.pool.Pool = made_by  # type: ignore[misc]


def _unimportable(module: str, qualname: str, cause: str) -> Callable[..., Any]:
    def call(*args: object, **kwargs: object) -> Any:
        raise ScriptImportError(
            f"{module}.{qualname} cannot run in multiprocessing child process {os.getpid()}: "
            f"the child could not get it by importing {module}:\n{cause}"
        )

    return call


def function_from_script(module: str, qualname: str) -> Callable[..., Any]:
    """The function `qualname` of `module`, imported if needed; a function raising
    ScriptImportError when that import fails."""
    try:
        if module not in sys.modules:
            with _pools_of_the_parent():
                importlib.import_module(module)
        value: Any = sys.modules[module]
        # A function the script defines only inside Orthanc is missing here.
        for part in qualname.split("."):
            value = getattr(value, part)
    except BaseException:  # noqa: BLE001 - SystemExit too: the child must answer
        return _unimportable(module, qualname, traceback.format_exc())
    return value  # type: ignore[no-any-return]
