"""``musicprod regenerate SONG --start S --end E -o OUT``: re-create a region starting from the original there.

Unlike ``inpaint``, the sampler starts from k·noise + (1 − k)·original (Levy et al. 2023, k = 0.85), so the
new audio keeps some of the old region's shape. Same arguments and guarantees as ``musicprod inpaint``.
"""
from __future__ import annotations

import argparse

from .inpaint_cmd import add_region_parser, run_region
from .pipeline import regenerate


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_region_parser(subparsers, "regenerate", "re-create a region of a song, keeping its context and some of its shape",
                          __doc__.splitlines()[0].replace("``", ""))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    run_region(args, regenerate, "regenerate", "regenerated")
