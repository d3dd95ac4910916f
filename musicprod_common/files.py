"""Atomic file writes: a crash or a bad input never leaves a partial output behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the target's suffix so writers that infer a format from it still work.
    """
    target = Path(path)
    if not target.parent.exists():
        raise InputError(f"{target}: its folder {target.parent} does not exist; create it or pick another output path")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
    except OSError as err:
        raise InputError(f"{target}: cannot write there ({err.strerror}); pick a writable output path") from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give the output the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def check_not_overwriting_input(output: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """Refuse an output path that is one of the inputs."""
    out = Path(output).resolve()
    for item in inputs:
        if Path(item).resolve() == out:
            raise InputError(f"{output}: the output would overwrite the input; choose another output path")
