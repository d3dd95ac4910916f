"""``musicprod regenerate SONG --start S --end E -o OUT``: re-create a region starting from the original there.

Unlike ``inpaint``, the sampler starts from the original: by default from k·noise + (1 − k)·original at full noise
(Levy et al. 2023, k = 0.85), which the shipped DiT mostly forgets; ``--strength`` below 1 starts part-way, from
the original noised to that level (SDEdit), so the new audio keeps its shape. Otherwise the same arguments and
guarantees as ``musicprod inpaint``.
"""

from __future__ import annotations

import argparse

from guidance.tasks import regenerate

from .cli_common import add_strength_arg, sampler_from_args
from .inpaint_cmd import add_region_parser, run_region


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_region_parser(
        subparsers,
        "regenerate",
        "re-create a region of a song, keeping its context and some of its shape",
        __doc__.splitlines()[0].replace("``", ""),
    )
    add_strength_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    run_region(args, regenerate, "regenerate", "regenerated", sampler_from_args(args, strength=args.strength))
