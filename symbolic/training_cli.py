"""Command line shared by ``symbolic.train_fgg`` and ``symbolic.train_binomial``: flags, config, error handling."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Callable

from musicprod_common.checkpoint import WEIGHTS_NAME, load_weights, resolve_pretrained
from musicprod_common.errors import InputError
from musicprod_common.training import TrainConfig, add_train_args, train, train_config_from_args

from .data import PianoRollDataset

DEFAULTS = TrainConfig(steps=20000, batch_size=64, lr=2e-4, warmup_steps=500, num_workers=6, checkpoint_every=1000)

# setup(args, dataset) -> (model, loss_fn, model_config, note for the summary line)
Setup = Callable[[argparse.Namespace, PianoRollDataset], tuple[Any, Callable, Any, str]]


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--preset", default="small", help="tiny | small | paper")
    parser.add_argument("--data", required=True, help="file from `python -m symbolic.data`")
    parser.add_argument("--out", required=True, help="run folder (resumes from OUT/state.pt)")
    parser.add_argument(
        "--init",
        default=None,
        metavar="CHECKPOINT",
        help="fine-tune: start from this checkpoint folder's weights (its config must match the preset's)",
    )
    parser.add_argument("--no-progress", action="store_true")
    add_train_args(parser, DEFAULTS)
    return parser


def load_init_weights(model, folder: str) -> None:
    """Copy a checkpoint's weights into ``model``; a shape or key mismatch is bad input, not a traceback."""
    weights = load_weights(resolve_pretrained(folder) / WEIGHTS_NAME)
    try:
        model.load_state_dict({k: v.float() for k, v in weights.items()})
    except RuntimeError as err:
        raise InputError(
            f"--init {folder}: its weights do not fit this preset ({str(err).splitlines()[0]}); "
            "pass the preset it was trained with"
        ) from None


def run(
    prog: str,
    description: str,
    setup: Setup,
    argv: list[str] | None = None,
    extra_args: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse the flags, build model and loss with ``setup``, train; bad input is one line and exit code 2."""
    parser = build_parser(prog, description)
    if extra_args is not None:
        extra_args(parser)
    args = parser.parse_args(argv)
    cfg = train_config_from_args(args)
    cfg = dataclasses.replace(cfg, warmup_steps=min(cfg.warmup_steps, max(1, cfg.steps // 10)))
    try:
        dataset = PianoRollDataset(args.data, "train")
        model, loss_fn, model_config, note = setup(args, dataset)
        if args.init:
            load_init_weights(model, args.init)
        summary = train(
            model, loss_fn, dataset, cfg, args.out, model_config=model_config, progress=not args.no_progress
        )
    except InputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    print(
        f"trained {summary['steps']} steps in {summary['wall_seconds'] / 60:.1f} min;{note} last {summary['last']}; "
        f"weights in {args.out}/final"
    )
    return 0
