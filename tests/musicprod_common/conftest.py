"""Fixtures for musicprod_common tests: the two bundled POP909 example songs (no dataset download needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pop909"


@pytest.fixture(scope="session")
def examples_root() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def song_001():
    from musicprod_common.pop909 import load_song

    return load_song(EXAMPLES / "001")


@pytest.fixture(scope="session")
def song_034():
    from musicprod_common.pop909 import load_song

    return load_song(EXAMPLES / "034")
