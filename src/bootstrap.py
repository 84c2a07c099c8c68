"""Runs in every interpreter before the user's script (compiled into the plugin).

It becomes the module ``_orthanc_python_multi`` of each interpreter; the C++
side calls these functions with that interpreter's GIL held.
"""

from __future__ import annotations

import importlib.machinery
import io
import logging
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
    # Loaded here, on Orthanc's main thread, not lazily when the script first logs:
    # on 3.14 importing logging from an Orthanc HTTP thread (small stack) failed with
    # "MemoryError: Parser stack overflowed" (measured in forky).
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
    add_child_module_folder()


# The folder of the `orthanc` module of multiprocessing children, in this package.
_CHILD_FOLDER = ("orthanc_python_multi", "child")


def add_child_module_folder() -> None:
    """Appends the folder of the `orthanc` module of multiprocessing children to
    sys.path. Here the built-in `orthanc` module is found first (BuiltinImporter
    precedes the path); a child process started by spawn or forkserver gets this
    sys.path and, importing the script again, finds that file (docs/migration.md)."""
    import os

    for entry in list(sys.path):
        folder = os.path.join(entry, *_CHILD_FOLDER)
        if os.path.isfile(os.path.join(folder, "orthanc.py")):
            if folder not in sys.path:
                sys.path.append(folder)
            return


def _refused_module(message: str) -> str | None:
    """The module that CPython's message says refuses a sub-interpreter (the
    check_multi_interp_extensions setting: numpy chains it, Pillow raises it), or
    None. `re` is imported here, when an import failed, not in every interpreter."""
    import re

    match = re.search(r"module (\S+) does not support loading in subinterpreters", message)
    return match.group(1) if match else None


class SubinterpreterImportError(ModuleNotFoundError):
    """Raised by ImportGuard for a package that cannot load in this sub-interpreter."""


def _top_level(name: str) -> str:
    return name.partition(".")[0]


# A plain class, not an importlib.abc.MetaPathFinder: sys.meta_path needs only
# find_spec, and on 3.13 importing importlib.abc loads 40 more modules
# (importlib.resources, inspect, typing...) into every sub-interpreter, 2.5 MiB
# each (perf/costs.py).
class ImportGuard:
    """Makes a package look absent in a sub-interpreter once one of its extension
    modules refused to load there and the package could not do without it, as it
    would be if it were not installed.

    Libraries detect optional back-ends by importing them (pydicom: `import PIL`,
    then `from PIL import features`). Pillow's package imports (its __init__ is
    pure Python) but PIL.Image does not; the half-loaded package then passes a
    version check and pydicom dies with NameError. So when a refusal escapes the
    package (the outermost of its modules that was being executed raises), the
    package and its submodules leave sys.modules; from then on, importing the
    package, or a package whose own import failed that way (numpy), raises
    SubinterpreterImportError (a ModuleNotFoundError), quickly and with the cause.
    A package that catches the refusal itself (an optional speed-up, in its
    __init__ or in a submodule imported later, as propcache's for aiohttp) keeps
    working.
    """

    def __init__(self) -> None:
        self.refused: dict[str, tuple[str, ImportError]] = {}
        # Every extension module that refused this interpreter, in order: once the
        # script has loaded, each of these was caught by someone (see load_script).
        self.refusals: list[str] = []
        # Extension modules that refused, run from the Python source they were
        # compiled from instead (see _GuardedExtensionLoader).
        self.from_source: list[str] = []
        # The source modules each thread is executing, outermost first.
        self._executing = threading.local()
        # A module being executed -> the package whose refusal it holds: decided
        # when that module's execution ends.
        self._pending: dict[str, str] = {}

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
            spec.loader = _GuardedExtensionLoader(
                spec.loader.name, spec.loader.path, self, _python_source(spec.loader.path)
            )
        elif spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _TrackedSourceLoader(spec.loader.name, spec.loader.path, self)
        return spec

    def executing(self) -> list[str]:
        """The names of the source modules this thread is executing, outermost first."""
        stack: list[str] | None = getattr(self._executing, "stack", None)
        if stack is None:
            stack = self._executing.stack = []
        return stack

    def record(self, name: str, error: ImportError) -> None:
        top = _top_level(name)
        self.refused.setdefault(top, (name, error))
        if name not in self.refusals:
            self.refusals.append(name)
        package = sys.modules.get(top)
        if getattr(package, "__file__", None) is None:
            # Not loaded, or a namespace package (google): its portions are
            # separate distributions, and one refusal says nothing of the others.
            return
        importer = next((n for n in self.executing() if _top_level(n) == top), None)
        if importer is not None:
            # Decided when that module (the package's outermost being executed) ends.
            self._pending.setdefault(importer, top)
        elif not getattr(getattr(package, "__spec__", None), "_initializing", False):
            # Imported from outside the loaded package: it is half loaded now. (One
            # still initializing, by a loader not tracked, catches it or is dropped.)
            self._make_absent(top)

    def executed(self, name: str, failed: bool) -> None:
        """`name`'s execution ended: a refusal that escaped it escaped its package."""
        top = self._pending.pop(name, None)
        if top is not None and failed:
            self._make_absent(top)

    @staticmethod
    def _make_absent(top: str) -> None:
        for loaded in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            sys.modules.pop(loaded, None)


class _TrackedSourceLoader(importlib.machinery.SourceFileLoader):
    """A SourceFileLoader that tells the guard when it executes a module, so that the
    guard knows which module of a package an extension module was imported by."""

    def __init__(self, name: str, path: str, guard: ImportGuard) -> None:
        super().__init__(name, path)
        self._guard = guard

    def exec_module(self, module: types.ModuleType) -> None:
        executing = self._guard.executing()
        executing.append(self.name)
        failed = True
        try:
            super().exec_module(module)
            failed = False
        finally:
            executing.pop()
            self._guard.executed(self.name, failed)


def _python_source(extension: str) -> str | None:
    """The .py file next to `extension` with its module name, if there is one."""
    import os

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if extension.endswith(suffix):
            source = extension[: -len(suffix)] + ".py"
            return source if os.path.isfile(source) else None
    return None


class _GuardedExtensionLoader(importlib.machinery.ExtensionFileLoader):
    """An ExtensionFileLoader that reports a refusal of this sub-interpreter.

    An extension module compiled from the Python module shipped next to it
    (mypyc: charset_normalizer.md; Cython's pure-Python mode: SQLAlchemy's
    `_cy` modules, lxml.builder) runs from that source instead when it refuses:
    the same code, slower, as where no compiled wheel exists.
    """

    def __init__(self, name: str, path: str, guard: ImportGuard, source: str | None) -> None:
        super().__init__(name, path)
        self._guard = guard
        self._source = source
        self._source_loader: importlib.machinery.SourceFileLoader | None = None

    # None (importlib then makes a plain module) is allowed by the loader protocol.
    def create_module(  # type: ignore[override]
        self, spec: importlib.machinery.ModuleSpec
    ) -> types.ModuleType | None:
        try:
            return super().create_module(spec)
        except ImportError as error:
            if _refused_module(str(error)) is None:
                raise
            if self._source is not None:
                self._source_loader = importlib.machinery.SourceFileLoader(spec.name, self._source)
                if spec.name not in self._guard.from_source:
                    self._guard.from_source.append(spec.name)
                return None  # a plain module, filled by exec_module
            # CPython's message names the module as its C code does (lz4's
            # "_version", zstandard's "backend_c"): `name` says what was imported.
            error.name = spec.name
            self._guard.record(spec.name, error)
            raise

    def exec_module(self, module: types.ModuleType) -> None:
        if self._source_loader is None:
            super().exec_module(module)
            return
        module.__file__ = self._source_loader.path
        module.__loader__ = self._source_loader
        self._source_loader.exec_module(module)


def install_import_guard() -> None:
    """In a sub-interpreter, before the script runs: see ImportGuard."""
    sys.meta_path.insert(0, ImportGuard())


def import_guard() -> ImportGuard | None:
    """This interpreter's ImportGuard; None in the main interpreter."""
    return next((f for f in sys.meta_path if isinstance(f, ImportGuard)), None)


def warn_of_swallowed_refusals(script: str) -> None:
    """After `script` loaded in a sub-interpreter: one warning line naming the
    extension modules that refused this interpreter while it loaded.

    The script loaded, so each refusal was caught, by the script or by a package
    with an optional back-end (psycopg with its pure-Python driver, pydicom without
    its Pillow decoder): that package runs degraded here, and without this line
    nothing would say so. Modules run from their Python source instead are named
    too: they are slower. One line per sub-interpreter: what a script imports can
    differ between them, and one interpreter cannot see another's imports.
    """
    guard = import_guard()
    if guard is None or not (guard.refusals or guard.from_source):
        return
    parts = []
    if guard.refusals:
        parts.append(
            f"without these extension modules, which cannot load in a sub-interpreter: "
            f"{', '.join(guard.refusals)} (an ImportError was caught, so the package that "
            "wanted them runs without them there)"
        )
    if guard.from_source:
        parts.append(
            "with these extension modules run from their Python source instead, slower, as "
            f"they cannot load in a sub-interpreter: {', '.join(guard.from_source)}"
        )
    orthanc.LogWarning(
        loggable(
            f"Python: sub-interpreter {orthanc.GetInterpreterIndex()} loaded {script} "
            f"{'; and '.join(parts)}; see docs/what-loads-where.md"
        )
    )


def _refused_process_call(message: str) -> str | None:
    """What CPython's message says an isolated sub-interpreter refused: fork, exec or
    subprocess (multiprocessing starts its workers with them); None otherwise."""
    import re

    match = re.search(
        r"\b(fork|exec|subprocess) not supported for (?:isolated )?subinterpreters", message
    )
    return match.group(1) if match else None


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
            refused = _refused_module(str(current))
            module = _top_level(current.name or refused) if refused else None
        elif isinstance(current, RuntimeError):
            call = _refused_process_call(str(current))
            if call:
                return f"uses {call} (subprocess, multiprocessing), which sub-interpreters refuse"
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
    _script_modules.add(name)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    warn_of_swallowed_refusals(path)
    if "multiprocessing" in sys.modules:
        pickle_script_functions_for_children()


# The module names of the scripts this interpreter loaded.
_script_modules: set[str] = set()


def _reduce_script_function(obj: object) -> object:
    """ForkingPickler.reducer_override: a function of the script, or of a module that
    imports `orthanc`, becomes a call of function_from_script in the child process
    (see orthanc_python_multi.multiprocessing_child); anything else pickles as usual."""
    if type(obj) is not types.FunctionType:
        return NotImplemented
    module = obj.__module__
    if (
        module not in _script_modules
        and getattr(sys.modules.get(module), "orthanc", None) is not orthanc
    ):
        return NotImplemented
    # As pickle does by name: the function must be what its module has under its name
    # (not a lambda, not a function made in a function).
    found: object = sys.modules.get(module)
    for part in obj.__qualname__.split("."):
        found = getattr(found, part, None)
    if found is not obj:
        return NotImplemented
    from orthanc_python_multi.multiprocessing_child import function_from_script

    return function_from_script, (module, obj.__qualname__)


def pickle_script_functions_for_children() -> None:
    """After the script imported multiprocessing: a child process that cannot import
    the script (spawn, forkserver) makes the pool's task fail with the cause instead
    of dying, which would leave the request waiting forever."""
    try:
        from multiprocessing.reduction import ForkingPickler

        import orthanc_python_multi.multiprocessing_child  # noqa: F401 - installed with the plugin
    except ImportError:
        return
    ForkingPickler.reducer_override = staticmethod(_reduce_script_function)  # type: ignore[assignment]


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
