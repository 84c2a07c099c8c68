"""Runs in every interpreter before the user's script (compiled into the plugin).

It becomes the module ``_orthanc_python_multi`` of each interpreter; the C++
side calls these functions with that interpreter's GIL held.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import logging
import re
import sys
import threading
import time
import types
from collections.abc import Sequence

import orthanc


def loggable(text: str) -> str:
    """`text` as the Orthanc log can take it: lone surrogates (client bytes that
    are not UTF-8, decoded with surrogateescape) become backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class LogStream:
    """A text stream that writes each complete line to the Orthanc log."""

    def __init__(self, log: object) -> None:
        self._log = log
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._log(loggable(line))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, ""
        if pending:
            self._log(loggable(pending))

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"


class OrthancLogHandler(logging.Handler):
    """Sends `logging` records to the Orthanc log at the matching level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = loggable(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR:
            orthanc.LogError(message)
        elif record.levelno >= logging.WARNING:
            orthanc.LogWarning(message)
        else:
            orthanc.LogInfo(message)


def install_log_streams() -> None:
    """print() goes to Orthanc's standard output, as with the existing plugin (the
    Orthanc Book's hello world shows at the default log level); sys.stderr to the
    Orthanc log as errors; the root logger's records at their level (INFO and
    above; Orthanc shows INFO with --verbose)."""
    try:
        # Line-buffered, so lines of several interpreters do not interleave mid-line.
        sys.stdout = open(  # noqa: SIM115 - lives as long as the interpreter
            1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
        )
    except OSError:  # no standard output (a daemon): the log instead
        sys.stdout = LogStream(orthanc.LogWarning)
    sys.stderr = LogStream(orthanc.LogError)
    handler = OrthancLogHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def prepare_paths(site_dirs: list[str], script_dir: str) -> None:
    """The environment's site-packages (with its .pth files), then the script's folder first."""
    import site

    for folder in site_dirs:
        site.addsitedir(folder)
    if script_dir not in sys.path:
        sys.path.insert(0, script_dir)


# CPython's message when an extension module refuses a sub-interpreter (the
# check_multi_interp_extensions setting): numpy chains it, Pillow raises it.
_REFUSAL = re.compile(r"module (\S+) does not support loading in subinterpreters")


class SubinterpreterImportError(ModuleNotFoundError):
    """Raised by ImportGuard for a package that cannot load in this sub-interpreter."""


def _top_level(name: str) -> str:
    return name.partition(".")[0]


class ImportGuard(importlib.abc.MetaPathFinder):
    """Makes a package look absent in a sub-interpreter once one of its extension
    modules refused to load there, as it would be if it were not installed.

    Libraries detect optional back-ends by importing them (pydicom: `import PIL`,
    then `from PIL import features`). Pillow's package imports (its __init__ is
    pure Python) but PIL.Image does not; the half-loaded package then passes a
    version check and pydicom dies with NameError. So when an extension module of
    an already loaded package refuses this interpreter, the package and its
    submodules leave sys.modules; from then on, importing the package, or a
    package whose own import failed that way (numpy), raises
    SubinterpreterImportError (a ModuleNotFoundError), quickly and with the cause.
    A package that catches the refusal itself (an optional speed-up) keeps working.
    """

    def __init__(self) -> None:
        self.refused: dict[str, tuple[str, ImportError]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = _top_level(fullname)
        if top in self.refused and top not in sys.modules:
            module, error = self.refused[top]
            raise SubinterpreterImportError(
                f"{top} cannot be loaded in a sub-interpreter: its extension module {module} "
                "does not support loading in subinterpreters",
                name=fullname,
            ) from error
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is not None and type(spec.loader) is importlib.machinery.ExtensionFileLoader:
            spec.loader = _GuardedExtensionLoader(spec.loader.name, spec.loader.path, self)
        return spec

    def record(self, name: str, error: ImportError) -> None:
        top = _top_level(name)
        self.refused.setdefault(top, (name, error))
        package = sys.modules.get(top)
        spec = getattr(package, "__spec__", None)
        if getattr(package, "__file__", None) is None:
            # Not loaded, or a namespace package (google): its portions are
            # separate distributions, and one refusal says nothing of the others.
            return
        if not getattr(spec, "_initializing", False):
            # Loaded, but not usable here (Pillow): make it absent. A package still
            # initializing either catches the refusal or fails and is dropped.
            for loaded in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                sys.modules.pop(loaded, None)


class _GuardedExtensionLoader(importlib.machinery.ExtensionFileLoader):
    """An ExtensionFileLoader that reports a refusal of this sub-interpreter."""

    def __init__(self, name: str, path: str, guard: ImportGuard) -> None:
        super().__init__(name, path)
        self._guard = guard

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        try:
            return super().create_module(spec)
        except ImportError as error:
            if _REFUSAL.search(str(error)):
                self._guard.record(spec.name, error)
            raise


def install_import_guard() -> None:
    """In a sub-interpreter, before the script runs: see ImportGuard."""
    sys.meta_path.insert(0, ImportGuard())


# CPython's message when an isolated sub-interpreter refuses os.fork, os.exec*
# or subprocess (multiprocessing starts its workers with them).
_PROCESS_REFUSAL = re.compile(
    r"\b(fork|exec|subprocess) not supported for (?:isolated )?subinterpreters"
)


def subinterpreter_refusal(error: BaseException) -> str | None:
    """What, refusing sub-interpreters, made `error` (raised by the script) happen,
    as the end of "<script> ...: the script runs in the main interpreter"
    ("imports numpy, which cannot load in a sub-interpreter"); None when
    something else did."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        module = None
        if isinstance(current, SubinterpreterImportError):
            module = _top_level(current.name or "") or str(current)
        elif isinstance(current, ImportError):
            match = _REFUSAL.search(str(current))
            module = _top_level(match.group(1)) if match else None
        elif isinstance(current, RuntimeError):
            match = _PROCESS_REFUSAL.search(str(current))
            if match:
                return (
                    f"uses {match.group(1)} (subprocess, multiprocessing), which "
                    "sub-interpreters refuse"
                )
        if module:
            return f"imports {module}, which cannot load in a sub-interpreter"
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def warm_up(script: str) -> None:
    """Imports, in the main interpreter, the standard modules the script imports.

    gh-136421: on 3.13 a standard extension module first imported in a
    sub-interpreter (datetime, via _strptime...) can corrupt its state; imported
    in the main interpreter first, it is safe. CPython 3.14 initializes those
    types at interpreter start-up (gh-136583): nothing to do there.
    """
    if sys.version_info >= (3, 14):
        return
    import ast
    import importlib

    names = {"datetime", "_strptime", "json", "re", "threading", "traceback"}
    try:
        with open(script, "rb") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        tree = None  # load_script reports it
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    for name in sorted(names):
        if name.split(".")[0] in sys.stdlib_module_names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the script reports its own import errors
                pass


def load_script(path: str) -> None:
    """Imports the script as a module named after its file, as the existing plugin does."""
    import importlib.util
    import os

    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module", path=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def explain_load_failure(error: BaseException, interpreters: int) -> str:
    """One line telling the user what to do about an exception raised by the script."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError) and "subinterpreters" in str(current):
            # "module numpy.core._multiarray_umath does not support loading in subinterpreters"
            match = re.search(r"module (\S+) does not support", str(current))
            module = match.group(1) if match else (current.name or str(current))
            return (
                f"the module {module} cannot be loaded in a sub-interpreter "
                f'(PythonInterpreters is {interpreters}): set "PythonInterpreters": 1 '
                "to run this script, or avoid that module"
            )
        current = current.__cause__ or current.__context__
    return "fix the script (see the traceback above); Orthanc does not start with a failing script"


def _script_threads() -> list[threading.Thread]:
    """The threads the script (or a library it uses) started with `threading`,
    daemon or not, still running or about to: not the main thread, not the
    calling thread, not the `_DummyThread` entries of foreign threads that
    touched `threading` (Orthanc's HTTP threads, the OnChange delivery thread,
    whose cached thread states the plugin keeps)."""
    caller = threading.get_ident()  # not current_thread(): it would add a dummy
    main = threading.main_thread()
    return [
        thread
        for thread in threading.enumerate()
        if thread is not main
        and thread.ident != caller
        and not isinstance(thread, threading._DummyThread)  # noqa: SLF001
    ]


def runs_own_threads() -> bool:
    """Whether ORTHANC_STOPPED must reach this interpreter although it did not get
    ORTHANC_STARTED (see docs/dispatch.md): its script has threads to stop."""
    return bool(_script_threads())


def join_threads(timeout: float, daemon_grace: float | None) -> tuple[list[str], list[str]]:
    """Waits up to `timeout` seconds for the script's threads; returns the names of
    those still alive: (non-daemon, daemon).

    In the main interpreter daemon threads are not waited for (`daemon_grace` is
    None): finalization ends them, as in plain Python. A sub-interpreter cannot end
    while one runs (Py_EndInterpreter: "not the last thread"), so there they get
    `daemon_grace` seconds (within `timeout`) to finish what ORTHANC_STOPPED began.
    """
    deadline = time.monotonic() + timeout
    alive = []
    daemons = []
    for thread in _script_threads():
        if thread.daemon:
            daemons.append(thread)
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            alive.append(thread.name)
    alive_daemons = []
    if daemon_grace is not None:
        daemon_deadline = min(deadline, time.monotonic() + daemon_grace)
        for thread in daemons:
            thread.join(max(0.0, daemon_deadline - time.monotonic()))
            if thread.is_alive():
                alive_daemons.append(thread.name)
    return alive, alive_daemons


def flush_log_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, (LogStream, io.TextIOBase)):
            stream.flush()
