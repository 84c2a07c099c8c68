"""An Orthanc process on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orthanc_python_multi.server import build_config, find_orthanc

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


def _server_port_range() -> range:
    """Ports below the kernel's ephemeral range: an outgoing connection (an HTTP
    client of the tests, a C-STORE) never takes one of them between a server's
    stop and its restart on the same port.

    OPM_TEST_PORTS=LOW-HIGH narrows it: scripts/test.sh gives each environment it
    runs at the same time a band of its own, so that one never takes a port that the
    other's server left for a moment while restarting on it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    band = os.environ.get("OPM_TEST_PORTS", "")
    if band:
        first, last = (int(port) for port in band.split("-"))
        return range(max(first, 1024), min(last + 1, low))
    return range(10000, low) if low > 11000 else range(0)


# Ports this process has handed out: a server made but not started yet has not
# bound its ports, so a later call must not choose them again.
_handed_out: set[int] = set()


def free_ports(count: int) -> list[int]:
    """`count` TCP ports free on 127.0.0.1 right now, never handed out before by this
    process, taken at random below the ephemeral range (or from the kernel where that
    range leaves no room)."""
    candidates = _server_port_range()
    chooser = random.SystemRandom()
    sockets: list[socket.socket] = []
    try:
        for _attempt in range(1000):
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", chooser.choice(candidates) if candidates else 0))
            except OSError:  # in use
                sock.close()
                continue
            if int(sock.getsockname()[1]) in _handed_out:
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise RuntimeError(f"no {count} free TCP ports on 127.0.0.1")
        ports = [int(sock.getsockname()[1]) for sock in sockets]
        _handed_out.update(ports)
        return ports
    finally:
        for sock in sockets:
            sock.close()


class OrthancProcess:
    """One Orthanc server started by us, its log in `folder/orthanc.log`.

    Only this process is ever signalled or killed, by its own PID.
    """

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        *,
        verbose: bool = True,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.config = config
        self.verbose = verbose
        # Added to this process's environment for Orthanc (PYTHONPATH for the existing plugin).
        self.environment = environment or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.return_code: int | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "orthanc.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['HttpPort']}"

    @property
    def dicom_port(self) -> int:
        return int(self.config["DicomPort"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, wait: bool = True) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "orthanc.json"
        config_file.write_text(json.dumps(self.config, indent=2))
        self.return_code = None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [find_orthanc(), *(["--verbose"] if self.verbose else []), str(config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env={**os.environ, **self.environment} if self.environment else None,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with {self.process.returncode} at start:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/system", timeout=2):
                    pass
            except urllib.error.HTTPError:
                pass  # it answers (401 when authentication is on): it is up
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
                continue
            self._wait_for_signal_handler(deadline)
            return
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self.log()}")

    def _wait_for_signal_handler(self, deadline: float) -> None:
        """Orthanc answers HTTP (and sends ORTHANC_STARTED) a moment before it
        installs its SIGTERM handler: a SIGTERM in between kills it (exit -15)
        instead of stopping it. Waits until the process catches SIGTERM."""
        status = Path(f"/proc/{self.pid}/status")
        while time.monotonic() < deadline:
            try:
                caught = next(
                    int(line.split()[1], 16)
                    for line in status.read_text().splitlines()
                    if line.startswith("SigCgt:")
                )
            except (OSError, StopIteration, ValueError):
                return  # no procfs here, or the process is gone: nothing to wait for
            if caught & (1 << (signal.SIGTERM - 1)):
                return
            time.sleep(0.02)

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

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code; killed (and an error raised) if it hangs."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"Orthanc did not stop within {timeout} s") from None
        self.return_code = self.process.returncode
        return self.return_code


def make_orthanc(
    folder: Path,
    script: str,
    *,
    plugin: Path,
    interpreters: int | str = 1,
    extra: dict[str, Any] | None = None,
    verbose: bool = True,
    environment: dict[str, str] | None = None,
) -> OrthancProcess:
    """An Orthanc (not started) with `plugin`, running `script` (source text), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    script_file = folder / "plugin_script.py"
    script_file.write_text(script)
    http_port, dicom_port = free_ports(2)
    config = build_config(
        plugin=plugin,
        script=script_file,
        storage=folder / "storage",
        interpreters=interpreters,
        http_port=http_port,
        dicom_port=dicom_port,
        name=folder.name,
        extra=extra,
    )
    return OrthancProcess(folder, config, verbose=verbose, environment=environment)


def wrk_requests(url: str, wanted: int, time_limit: float = 120.0) -> int:
    """Loads `url` (loopback only) with wrk, in 2-second runs, until about `wanted`
    requests were answered with a 2xx or 3xx status or `time_limit` seconds
    passed; returns the count of those answers (errors are not counted)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only ever sent to 127.0.0.1")
    done = 0
    deadline = time.monotonic() + time_limit
    while done < wanted and time.monotonic() < deadline:
        out = subprocess.run(
            ["wrk", "-t1", "-c4", "-d2s", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        done += int(out.split(" requests in ")[0].split()[-1])
        if "Non-2xx or 3xx responses:" in out:
            done -= int(out.split("Non-2xx or 3xx responses:")[1].split()[0])
    return done
