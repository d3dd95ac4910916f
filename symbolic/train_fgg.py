"""Train the FGG piano-roll model: ``python -m symbolic.train_fgg --preset small --data data.safetensors --out
runs/fgg``.

Also runs under ``accelerate launch -m symbolic.train_fgg ...``. Reads only the compact file written by
``python -m symbolic.data`` (no POP909 folder, no MIDI parsing, no FluidSynth) and exports
``OUT/final/`` (EMA weights + config.json), loadable with :func:`symbolic.fgg.load_fgg`. With
``--max-minutes`` the LR anneals over the budget, so ``--steps`` can be set large for a budgeted run.
"""

from __future__ import annotations

import argparse
import functools

from .data import PianoRollDataset
from .fgg import build_fgg, fgg_config, fgg_loss
from .training_cli import run


def setup(args: argparse.Namespace, dataset: PianoRollDataset):
    cfg = fgg_config(args.preset)
    return build_fgg(cfg), functools.partial(fgg_loss, cfg=cfg), cfg, ""


def main(argv: list[str] | None = None) -> int:
    return run("python -m symbolic.train_fgg", __doc__.splitlines()[0], setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
