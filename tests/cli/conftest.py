"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import FLAG_ALL, FLAG_NONE, tiny_detectors


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``flag_all``/``flag_none``: the same tiny detector, flagging every judged image or
    none of them."""
    paths = tiny_detectors(tmp_path_factory.mktemp("models"))
    return {"flag_all": paths[FLAG_ALL], "flag_none": paths[FLAG_NONE]}
