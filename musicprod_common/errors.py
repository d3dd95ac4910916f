"""The one exception type that means "the user gave us something we cannot use", and how a command reports it.

Every command line turns it into a single line on stderr and exit code 2 (:func:`run_main`, and
:class:`OneLineParser` for usage errors); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable


class InputError(ValueError):
    """Bad user input: the message names the offending file or value and says how to fix it."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and pointing at --help, and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def run_main(main: Callable[[list[str] | None], object], argv: list[str] | None = None, prog: str = "") -> int:
    """Run a command's ``main``: bad input is one line on stderr and exit code 2."""
    try:
        main(argv)
    except InputError as err:
        sys.stderr.write(f"{prog}: error: {err}\n")
        return 2
    return 0
