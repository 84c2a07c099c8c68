"""The scripts in examples/ run as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import StartOrthanc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("interpreters", [1, 2])
def test_sample_script(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc((EXAMPLES / "sample.py").read_text(), interpreters=interpreters)
    assert server.get("/toto").text == "ok\n"
    assert server.get("/tata").text == "ok\n"
    where = server.get("/python/where").json()
    assert where["interpreters"] == interpreters
    assert 0 <= where["interpreter"] < interpreters
    assert server.log().count(f"Sample script loaded in {interpreters} interpreter(s)") == 1
