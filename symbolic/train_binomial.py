"""Train the binomial-diffusion model: ``python -m symbolic.train_binomial --preset small --data data.safetensors --out runs/binomial``.

Also runs under ``accelerate launch -m symbolic.train_binomial ...``. The note density r of the
forward process is measured on the training split first and stored in the exported config.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

from musicprod_common.errors import InputError
from musicprod_common.training import train

from .binomial import binomial_config, binomial_loss, build_binomial
from .data import PianoRollDataset
from .train_fgg import add_train_args, resolve_steps, train_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symbolic.train_binomial", description=__doc__.splitlines()[0])
    add_train_args(parser, steps=None, batch=64, lr=2e-4)
    args = parser.parse_args(argv)
    try:
        dataset = PianoRollDataset(args.data, "train")
        density = tuple(round(float(v), 6) for v in dataset.note_density().clamp(1e-4, 0.5))
        cfg = dataclasses.replace(binomial_config(args.preset), density=density)
        model = build_binomial(cfg)
        loss_fn = functools.partial(binomial_loss, cfg=cfg)
        resolve_steps(model, loss_fn, dataset, args)
        summary = train(model, loss_fn, dataset, train_config(args), args.out,
                        model_config=cfg, progress=not args.no_progress)
    except InputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    print(f"trained {summary['steps']} steps in {summary['wall_seconds'] / 60:.1f} min; density r={density}; last {summary['last']}; weights in {args.out}/final")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
