"""Files that ship with musicprod: the checkpoints and the bundled example song.

In a source checkout they sit beside the packages (``checkpoints/``, ``examples/``). ``pip install .`` copies them
into ``<prefix>/share/musicprod/`` (``setup.cfg``, ``[options.data_files]``), so an installed copy finds them there,
wherever it is run from.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parents[1]


def shipped(relative: str) -> Path:
    """The shipped file or folder ``relative`` (e.g. ``"checkpoints"``): in the source tree when run from a checkout,
    else under the installation's ``share/musicprod`` (the environment's, then the user's); the source-tree path when
    it exists nowhere, so that errors name the expected place."""
    candidates = [SOURCE_TREE / relative]
    for base in (sys.prefix, site.getuserbase()):
        candidates.append(Path(base) / "share" / "musicprod" / relative)
    return next((c for c in candidates if c.exists()), candidates[0])
