"""Helpers for the generator tests: parse tiny inline C headers, as ctypeslib's tests do."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.manifest import Manifest
from generator.model import Model, build_model
from generator.parse import RawHeader, parse_header

# The few declarations every SDK header starts with.
PRELUDE = """
#include <stdint.h>
typedef struct _OrthancPluginContext_t { int (*InvokeService)(void); } OrthancPluginContext;
typedef enum {
  OrthancPluginErrorCode_Success = 0,
  OrthancPluginErrorCode_Plugin = 1,
  _OrthancPluginErrorCode_INTERNAL = 0x7fffffff
} OrthancPluginErrorCode;
typedef struct { void* data; uint32_t size; } OrthancPluginMemoryBuffer;
"""

ParseHeader = Callable[[str], RawHeader]
BuildModel = Callable[..., Model]


@pytest.fixture
def parse(tmp_path: Path) -> ParseHeader:
    def run(body: str) -> RawHeader:
        header = tmp_path / "OrthancCPlugin.h"
        header.write_text(PRELUDE + textwrap.dedent(body))
        return parse_header(header)

    return run


@pytest.fixture
def model(parse: ParseHeader) -> BuildModel:
    def run(body: str, manifest: Manifest | None = None) -> Model:
        return build_model(parse(body), manifest or Manifest())

    return run
