"""Shared fixtures. POP909 is read from ../shared/data/pop909 (or $MUSICPROD_POP909)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
POP909 = Path(os.environ.get("MUSICPROD_POP909", REPO.parent / "shared" / "data" / "pop909"))


def pytest_configure(config):
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def pop909_root() -> Path:
    if not (POP909 / "001" / "001.mid").exists():
        pytest.skip(f"POP909 not found at {POP909}; set MUSICPROD_POP909")
    return POP909


@pytest.fixture
def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(0)
