"""docker/: every step of the image recipe, run as the Dockerfile runs them, since
no Docker engine runs here: in a disposable layer over the Debian forky root (the
image's base), docker/build.sh builds the Debian package, docker/install.sh
installs it with apt-get, and docker/check.sh checks the installed plugin (2
interpreters, the sample answers)."""

from __future__ import annotations

from tests.support.debian_root import ROOT, DisposableLayer, in_root, root_path


def test_docker_recipe_steps() -> None:
    root = root_path("forky")
    # The sources, as `COPY . /src` puts them: the copy of tests/package/test_deb.py,
    # whose build folder makes the build incremental.
    copy = f"/opt/opm-{ROOT.name}-package"
    refreshed = in_root("forky", copy, "true", timeout=300)
    assert refreshed.returncode == 0, refreshed.stderr[-4000:]
    with DisposableLayer(root) as layer:
        layer.run("bash", f"{copy}/docker/build.sh", copy, timeout=2400)
        layer.run(
            "sh", "-c", 'bash "$0"/docker/install.sh "$0"/dist/orthanc-python-multi_*.deb', copy,
            timeout=600,
        )  # fmt: skip
        result = layer.run(
            "bash", f"{copy}/docker/check.sh", "/usr", f"{copy}/examples/sample.py", timeout=180
        )
    assert "check: the plugin answers with 2 interpreters" in result.stdout
