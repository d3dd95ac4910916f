"""Train the binomial-diffusion model: ``python -m symbolic.train_binomial --preset small --data data.safetensors --out
runs/binomial``.

Also runs under ``accelerate launch -m symbolic.train_binomial ...``. The note density r of the
forward process is measured on the training split first and stored in the exported config. With
``--max-minutes`` the LR anneals over the budget, so ``--steps`` can be set large for a budgeted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools

from musicprod_common.errors import InputError

from .binomial import binomial_config, binomial_loss, build_binomial
from .data import PianoRollDataset
from .training_cli import run


def setup(args: argparse.Namespace, dataset: PianoRollDataset):
    if not 0.0 <= args.known_prob <= 1.0:
        raise InputError(f"--known-prob {args.known_prob}: must be between 0 and 1")
    density = tuple(round(float(v), 6) for v in dataset.note_density().clamp(1e-4, 0.5))
    cfg = dataclasses.replace(binomial_config(args.preset), density=density)
    loss = functools.partial(binomial_loss, cfg=cfg, known_prob=args.known_prob)
    return build_binomial(cfg), loss, cfg, f" density r={density};"


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known-prob",
        type=float,
        default=0.0,
        help="share of examples whose task region (melody, first bars, ...) is shown clean, as the "
        "sampler shows it, and left out of the loss (0: Atassi's plain training)",
    )


def main(argv: list[str] | None = None) -> int:
    return run("python -m symbolic.train_binomial", __doc__.splitlines()[0], setup, argv, extra_args=add_args)


if __name__ == "__main__":
    raise SystemExit(main())
