"""Lists the files of the Debian forky root that perf/bench.py needs (scripts/bench-bundle.sh).

Runs inside the root (scripts/in-forky.sh), in the checkout copy that was built there,
and writes one absolute path a line to the file named by its argument: the whole file
lists of a few Debian packages (Orthanc, the existing plugin, CPython 3.14 and its
standard library, wrk; without their documentation), the checkout's .venv cut down to
what bench.py imports (this plugin's package and psutil), the imaging venv of the
`mixed` scenario where it was made, perf/ and the test helpers bench.py imports, then
every shared library these executables and modules load (ldd), and every symbolic link
on the way to each of these files (/lib -> usr/lib on a merged-/usr system).

    .venv/bin/python scripts/bundle-files.py LIST
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# What bench.py runs and loads: Orthanc and the existing plugin, the CPython both
# plugins run (3.14: the standard library with its compiled modules, libpython), wrk,
# the shells and tools bench.py calls (ldd is a bash script; dpkg-query tells the
# existing plugin's version), and the interpreter that runs it.
PACKAGES = [
    "orthanc",
    "orthanc-python",
    "wrk",
    "python3.14-minimal",
    "libpython3.14-minimal",
    "libpython3.14-stdlib",
    "libpython3.14",
    "bash",
    "dash",
    "libc-bin",
]

# Single files of other packages: the dynamic loader's configuration, the account and
# host databases, the OS description bench.py records, dpkg-query and the status file
# it reads, the DICOM dictionaries Orthanc loads from DCMTK's data folder (/usr/share/dcmtk), the
# time zones Python and Orthanc may ask for.
EXTRA_FILES = [
    "/bin/sh",
    "/bin/bash",
    "/lib64/ld-linux-x86-64.so.2",
    "/etc/ld.so.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/localtime",
    "/usr/bin/dpkg-query",
    "/usr/bin/env",
    "/var/lib/dpkg/status",
]
EXTRA_GLOBS = [
    "/etc/ld.so.conf.d/*",
    "/usr/share/dcmtk*/*.dic",
    "/usr/share/libdcmtk*/*.dic",
    "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules",
    "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/*",
]

# Parts of the packages above that no benchmark reads.
DROPPED_PREFIXES = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/lintian/",
    "/usr/share/locale/",
    "/usr/share/bash-completion/",
    "/usr/share/binfmts/",
    "/usr/lib/binfmt.d/",
    "/usr/lib/systemd/",
    "/usr/lib/sysusers.d/",
    "/usr/lib/tmpfiles.d/",
    "/etc/init.d/",
    "/usr/lib/python3.14/test/",
    "/usr/lib/python3.14/idlelib/",
    "/usr/lib/python3.14/tkinter/",
    "/usr/lib/python3.14/turtledemo/",
    "/usr/lib/python3.14/pydoc_data/",
    "/usr/lib/python3.14/ensurepip/",
)

# In the checkout copy: what bench.py imports and runs.
CHECKOUT_PARTS = ["perf", "tests/__init__.py", "tests/support", "pyproject.toml"]
# In its .venv: bench.py's imports (the plugin's package, psutil) and the venv itself.
VENV_PACKAGES = ("orthanc_python_multi", "psutil")
# In the imaging venv's site-packages: what numpy, Pillow and pydicom do not need at
# run time (pip, their own tests and test data).
IMAGING_DROPPED = ("pip/", "pip-", "numpy/_core/tests/", "numpy/tests/", "pydicom/data/test_files/")


def package_files(packages: Iterable[str]) -> Iterator[str]:
    listed = subprocess.run(
        ["dpkg", "-L", *packages], capture_output=True, text=True, check=True
    ).stdout
    for line in listed.splitlines():
        if line.startswith("/") and not line.startswith(DROPPED_PREFIXES):
            yield line


def walk(folder: Path, dropped: tuple[str, ...] = ()) -> Iterator[str]:
    """The files and links under `folder`, but those whose path relative to it
    starts with one of `dropped`."""
    for path in sorted(folder.rglob("*")):
        if path.relative_to(folder).as_posix().startswith(dropped):
            continue
        if path.is_symlink() or path.is_file():
            yield str(path)


def checkout_files(checkout: Path) -> Iterator[str]:
    for part in CHECKOUT_PARTS:
        path = checkout / part
        if path.is_dir():
            yield from (p for p in walk(path) if "/results/" not in p and "__pycache__" not in p)
        elif path.exists():
            yield str(path)
    venv = checkout / ".venv"
    yield str(venv / "pyvenv.cfg")
    # Its interpreter only (the links to the root's python3.14), not its tools (ruff...).
    yield from (str(p) for p in sorted((venv / "bin").glob("python*")))
    for site in venv.glob("lib/python3*/site-packages"):
        for entry in site.iterdir():
            if entry.name.split("-")[0].split(".")[0] in VENV_PACKAGES:
                yield from [str(entry)] if entry.is_file() else walk(entry)
    imaging = checkout / ".venv-imaging"
    if (imaging / "opm-installed").exists():
        yield str(imaging / "opm-installed")
        yield str(imaging / "pyvenv.cfg")
        yield from (str(p) for p in sorted((imaging / "bin").glob("python*")))
        for site in imaging.glob("lib/python3*/site-packages"):
            yield from walk(site, IMAGING_DROPPED)


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def libraries(path: str) -> list[str]:
    """The shared libraries `path` loads, as ldd resolves them here."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and parts[-1].startswith("("):
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                found.append(target)
        elif parts and parts[0].startswith("/"):
            found.append(parts[0])  # the dynamic loader
    return found


def with_links(path: str) -> Iterator[str]:
    """`path` and every symbolic link met resolving it (folders included), each
    with its own resolution, so that the copy resolves as the root does."""
    seen: set[str] = set()
    pending = [path]
    while pending:
        current = os.path.normpath(pending.pop())
        if current in seen:
            continue
        seen.add(current)
        parts = current.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            if os.path.islink(prefix):
                target = os.readlink(prefix)
                resolved = os.path.join(os.path.dirname(prefix), target)
                yield prefix
                pending.append(os.path.join(resolved, *parts[i:]))
                break
        else:
            if os.path.lexists(current):
                yield current


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    checkout = Path.cwd()
    wanted: set[str] = set()
    sources = [package_files(PACKAGES), EXTRA_FILES, checkout_files(checkout)]
    for pattern in EXTRA_GLOBS:
        sources.append(str(p) for p in Path("/").glob(pattern.lstrip("/")))
    for source in sources:
        for path in source:
            wanted.update(with_links(path))
    # Compiled standard library: Debian compiles it at install time, not in the lists.
    for pyc in Path("/usr/lib/python3.14").rglob("__pycache__/*.pyc"):
        source_file = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
        if str(source_file) in wanted:
            wanted.add(str(pyc))
    files = [p for p in wanted if os.path.isfile(p) and not os.path.islink(p)]
    done: set[str] = set()
    pending = [p for p in files if is_elf(p)]
    while pending:
        elf = pending.pop()
        if elf in done:
            continue
        done.add(elf)
        for library in libraries(elf):
            for path in with_links(library):
                if path not in wanted:
                    wanted.add(path)
                    if os.path.isfile(path) and not os.path.islink(path):
                        pending.append(path)
    # Files and links (to folders too); folders come with their contents.
    kept = sorted(p for p in wanted if os.path.islink(p) or os.path.isfile(p))
    Path(sys.argv[1]).write_text("".join(p + "\n" for p in kept))
    print(f"bundle-files: {len(kept)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
