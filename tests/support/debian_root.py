"""The Debian roots of scripts/debian-root.sh, driven from outside: a command run
through scripts/in-root.sh, and a disposable layer over a root to install packages
into without changing the root itself."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]

# What a command inside a root sees: none of this machine's Python or pip settings.
ROOT_ENVIRONMENT = [
    "HOME=/root",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "DEBIAN_FRONTEND=noninteractive",
]


def root_path(release: str) -> Path:
    """The root of `release`, built by scripts/debian-root.sh the first time."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "debian-root.sh"), release],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-6000:]
    return Path(result.stdout.strip())


def in_root(
    release: str, copy: str, *command: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`command` run by scripts/in-root.sh on the copy `copy` (a path inside the root)
    of this checkout."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPM_")}
    environment[f"OPM_{release.upper()}_COPY"] = copy
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "in-root.sh"), release, *command],
        capture_output=True, text=True, timeout=timeout, env=environment,
    )  # fmt: skip


class DisposableLayer:
    """A copy-on-write view of a Debian root: an overlayfs whose upper layer is a
    tmpfs, mounted with /proc, /sys and /dev in a private mount namespace that a
    holder process keeps alive. Commands enter that namespace (nsenter) and chroot
    into the view; what they change never reaches the root. Leaving the context
    unmounts everything, in the reverse order.

    - One layer per `with` block; not for use from several threads at once.
    - Needs root (mount, nsenter)."""

    _HOLDER = r"""
set -e
root=$1 scratch=$2
mount -t tmpfs -o size=4g,mode=0755 opm-layer "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/merged"
mount -t overlay opm-overlay \
  -o "lowerdir=$root,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/merged"
for fs in proc sys dev; do mount --rbind "/$fs" "$scratch/merged/$fs"; done
echo ready
read -r _ || true
for fs in dev sys proc; do umount -R "$scratch/merged/$fs"; done
umount "$scratch/merged"
umount "$scratch"
echo unmounted
"""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._scratch = Path(tempfile.mkdtemp(prefix="opm-layer-"))
        self.merged = self._scratch / "merged"  # a path in the holder's namespace only
        self.upper = self._scratch / "upper"
        self._holder: subprocess.Popen[str] | None = None

    def __enter__(self) -> DisposableLayer:
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private",
             "bash", "-c", self._HOLDER, "opm-layer", str(self.root), str(self._scratch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line.strip() != "ready":
            self._holder.wait(timeout=30)
            raise RuntimeError(f"the layer over {self.root} was not mounted: {self._holder.stderr}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        holder = self._holder
        assert holder is not None and holder.stdin is not None
        out, err = holder.communicate(input="\n", timeout=60)
        self._scratch.rmdir()
        assert holder.returncode == 0 and "unmounted" in out, err

    def command(self, *command: str, user: str | None = None) -> list[str]:
        """The command line running `command` in the layer (as `user`, or root)."""
        assert self._holder is not None
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        return [
            "nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt",
            "chroot", str(self.merged), "env", "-i", *ROOT_ENVIRONMENT, *as_user, *command,
        ]  # fmt: skip

    def run(
        self, *command: str, timeout: float = 300, check: bool = True, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*command, user=user), capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, (
                f"{' '.join(command)}: exit status {result.returncode}\n"
                f"{result.stdout[-6000:]}{result.stderr[-6000:]}"
            )
        return result

    def write(self, path: str, text: str) -> None:
        """Writes `text` to `path` (inside the layer), mode 0644, owned by root."""
        result = subprocess.run(
            self.command("sh", "-c", 'cat > "$0" && chmod 0644 "$0"', path),
            input=text, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def changed(self) -> Sequence[str]:
        """The paths that the layer changed or added (its upper layer), from /."""
        assert self._holder is not None
        result = subprocess.run(
            ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt",
             "find", str(self.upper), "-mindepth", "1", "-printf", "/%P\n"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()
