"""Shared fixtures: the read-only ../shared/ folder and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's read-only data folder; tests that need it are skipped where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared/ is not present")
    return SHARED_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
