"""What `pip install .` put in the test environment, for both test layers."""

from __future__ import annotations

from pathlib import Path


def installed_stub() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("orthanc_python_multi")
    assert spec is not None and spec.origin is not None
    stub = Path(spec.origin).parents[1] / "orthanc-stubs" / "__init__.pyi"
    assert stub.is_file(), "pip install . installs the orthanc-stubs package"
    return stub
