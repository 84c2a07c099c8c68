"""scripts/package-deb.sh, tested where users are: the package built in the Debian
trixie root (Orthanc 1.12, CPython 3.13) and in the forky root (Orthanc 1.13,
CPython 3.14) of scripts/debian-root.sh, checked by that release's lintian, then
installed next to Debian's orthanc with apt-get, run by Debian's Orthanc with
Debian's /etc/orthanc/ configuration and a file naming a script, and purged.

The installs happen in a disposable layer over each root (tests/support/
debian_root.py): the roots that the rest of the suite uses never hold the package.
These tests drive the roots from outside, as root, so they run on the Debian 12
side of scripts/test.sh only (tests/conftest.py deselects them inside a root).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.debian_root import ROOT, DisposableLayer, in_root, root_path
from tests.support.process import free_ports

PACKAGE = "orthanc-python-multi"
# What each release's package is built against.
RELEASES = {"trixie": ("1.12", "3.13"), "forky": ("1.13", "3.14")}

SCRIPT = """\
import orthanc


def interpreter(output, uri, **request):
    answer = "%d of %d" % (orthanc.GetInterpreterIndex(), orthanc.GetInterpreterCount())
    output.AnswerBuffer(answer, "text/plain")


orthanc.RegisterRestCallback("/package-test/interpreter", interpreter)
"""


@dataclass(frozen=True)
class Built:
    release: str
    root: Path
    deb: str  # its path inside the root
    build_log: str


@pytest.fixture(scope="module", params=sorted(RELEASES))
def built(request: pytest.FixtureRequest) -> Built:
    release: str = request.param
    root = root_path(release)
    # A copy of its own in the root, apart from the test suite's (scripts/in-forky.sh)
    # and the developers' copies; its build/ stays, so the build is incremental.
    copy = f"/opt/opm-{ROOT.name}-package"
    result = in_root(release, copy, "bash", "scripts/package-deb.sh", timeout=2400)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    deb = f"{copy}/{result.stdout.strip().splitlines()[-1]}"
    assert (root / deb.lstrip("/")).is_file(), result.stdout
    return Built(release, root, deb, result.stderr)


def _chroot(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(root), "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
         *command],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_package_name_fields_and_layout(built: Built) -> None:
    orthanc, python = RELEASES[built.release]
    number = {"trixie": 13, "forky": 14}[built.release]
    assert re.fullmatch(
        rf"{built.deb.rsplit('/', 1)[0]}/{PACKAGE}_\d+\.\d+\.\d+-1\+deb{number}_amd64\.deb",
        built.deb,
    )
    fields = _chroot(built.root, "dpkg-deb", "--field", built.deb).stdout
    depends = re.search(r"^Depends: (.*)$", fields, re.M)
    assert depends, fields
    assert f"orthanc (>= {orthanc}." in depends.group(1)
    assert f"libpython{python} " in depends.group(1)
    assert re.search(r"^Conflicts: orthanc-python$", fields, re.M), fields
    contents = _chroot(built.root, "dpkg-deb", "--contents", built.deb).stdout
    paths = {line.split()[5].lstrip(".") for line in contents.splitlines()}
    links = dict(
        (line.split()[5].lstrip("."), line.split()[7])
        for line in contents.splitlines()
        if line.startswith("l")
    )
    version = built.deb.rsplit("_", 2)[1].split("-")[0]
    library = f"/usr/lib/orthanc/libOrthancPythonMulti.so.{version}"
    assert library in paths
    assert links["/usr/share/orthanc/plugins/libOrthancPythonMulti.so"] == (
        f"../../../lib/orthanc/libOrthancPythonMulti.so.{version}"
    )
    for path in (
        "/etc/orthanc/python-multi.json",
        "/usr/bin/orthanc-python-multi",
        "/usr/lib/python3/dist-packages/orthanc_python_multi/cli.py",
        "/usr/lib/python3/dist-packages/orthanc_python_multi/child/orthanc.py",
        "/usr/lib/python3/dist-packages/orthanc-stubs/__init__.pyi",
        f"/usr/share/doc/{PACKAGE}/README.Debian",
        f"/usr/share/doc/{PACKAGE}/copyright",
        f"/usr/share/man/man1/{PACKAGE}.1.gz",
    ):
        assert path in paths, contents


def test_lintian_is_clean(built: Built) -> None:
    # As an unprivileged user (lintian warns when run as root), every tag level;
    # packaging/debian/lintian-overrides explains what the package overrides.
    result = _chroot(
        built.root, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        "env", "HOME=/tmp", "lintian", "--pedantic", "--info",
        "--fail-on", "error,warning,info,pedantic", built.deb,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.fixture
def layer(built: Built) -> Iterator[DisposableLayer]:
    with DisposableLayer(built.root) as disposable:
        yield disposable
    # The root itself never saw the package.
    status = (built.root / "var/lib/dpkg/status").read_text()
    assert f"Package: {PACKAGE}\n" not in status


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for_http(server: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"Orthanc stopped: {server.communicate()[0][-6000:]}"
        try:
            if _get(port, "/system")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("Orthanc did not answer /system within 60 s")


def test_install_serve_two_interpreters_purge(built: Built, layer: DisposableLayer) -> None:
    # Installed next to Debian's orthanc (and orthanc-python, which it replaces).
    assert (
        "install ok installed"
        in layer.run("dpkg-query", "-W", "-f=${Status}", "orthanc-python").stdout
    )
    installed = layer.run("apt-get", "install", "-y", "-q", built.deb)
    assert re.search(r"REMOVED:\s+orthanc-python\s", installed.stdout), installed.stdout
    removed = layer.run("dpkg-query", "-W", "-f=${Status}", "orthanc-python").stdout
    assert removed == "deinstall ok config-files"
    # orthanc-python's python.json (a conffile, kept until purged) names a script
    # too; a machine that only ever had Debian's orthanc has none.
    layer.run("dpkg", "--purge", "orthanc-python")

    plugin = layer.run("orthanc-python-multi", "plugin-path").stdout.strip()
    assert re.fullmatch(r"/usr/lib/orthanc/libOrthancPythonMulti\.so\.[0-9.]+", plugin)
    assert (
        layer.run(
            "readlink", "-f", "/usr/share/orthanc/plugins/libOrthancPythonMulti.so"
        ).stdout.strip()
        == plugin
    )
    owner = layer.run("stat", "-c", "%U:%G %a", "/etc/orthanc/python-multi.json").stdout.strip()
    assert owner == "orthanc:orthanc 664"

    # Debian's configuration, on free loopback ports instead of 8042 and 4242, plus
    # a file naming a script; Orthanc run as the service runs it (its user, /etc/orthanc).
    http_port, dicom_port = free_ports(2)
    layer.run(
        "sed", "-i", "-e", f's/"HttpPort" : 8042,/"HttpPort" : {http_port},/',
        "-e", f's/"DicomPort" : 4242,/"DicomPort" : {dicom_port},/', "/etc/orthanc/orthanc.json",
    )  # fmt: skip
    ports = layer.run("grep", "-E", '"(Http|Dicom)Port" :', "/etc/orthanc/orthanc.json").stdout
    assert f'"HttpPort" : {http_port},' in ports and f'"DicomPort" : {dicom_port},' in ports
    layer.write("/etc/orthanc/package-test.py", SCRIPT)
    layer.write(
        "/etc/orthanc/package-test.json",
        '{"PythonScript": "/etc/orthanc/package-test.py", "PythonInterpreters": 2}\n',
    )
    server = subprocess.Popen(
        layer.command("/usr/sbin/Orthanc", "/etc/orthanc", user="orthanc"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_for_http(server, http_port)
        seen = set()
        for _ in range(20):
            status, answer = _get(http_port, "/package-test/interpreter")
            assert status == 200, answer
            seen.add(answer)
        assert seen == {"0 of 2", "1 of 2"}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        log = server.communicate(timeout=60)[0]
    assert server.returncode == 0, log[-6000:]
    assert "Fatal Python error" not in log
    assert "runs in 2 sub-interpreters" in log, log[-6000:]

    layer.run("apt-get", "purge", "-y", "-q", PACKAGE)
    assert layer.run("dpkg-query", "-W", PACKAGE, check=False).returncode != 0
    left = [
        path
        for path in layer.changed()
        if re.search(r"python-multi|PythonMulti|orthanc_python_multi|orthanc-stubs", path)
    ]
    assert left == []
    for path in (
        "/usr/lib/python3/dist-packages/orthanc_python_multi",
        "/usr/share/orthanc/plugins/libOrthancPythonMulti.so",
        plugin,
        "/etc/orthanc/python-multi.json",
    ):
        assert layer.run("test", "-e", path, check=False).returncode == 1, path
