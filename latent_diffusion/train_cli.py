"""Command-line plumbing shared by ``latent_diffusion.train`` and ``waveform_diffusion.train``.

The TrainConfig flags come from :func:`musicprod_common.training.add_train_args`; what is shared here is
only what the two diffusion scripts add on top: ``--mixed-precision auto`` (bf16 where the GPU supports
it) and the export dtype.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from musicprod_common.errors import InputError
from musicprod_common.training import TrainConfig, add_train_args, train_config_from_args


def add_training_args(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """``--out``, ``--no-progress`` and every TrainConfig flag (``mixed_precision`` may default to "auto")."""
    parser.add_argument("--out", required=True, help="run folder: state.pt, losses.jsonl, tb/, final/ (resumes if state.pt exists)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_train_args(parser, defaults)


def resolve_mixed_precision(choice: str, cpu: bool) -> str:
    if choice != "auto":
        return choice
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig: ``--mixed-precision auto`` resolved, warm-up at most 5% of the steps (the default 1000 included)."""
    cfg = train_config_from_args(args)
    if cfg.steps < 1:
        raise InputError(f"--steps {cfg.steps}: must be at least 1")
    return dataclasses.replace(cfg, mixed_precision=resolve_mixed_precision(cfg.mixed_precision, cfg.cpu),
                               warmup_steps=min(cfg.warmup_steps, max(1, cfg.steps // 20)), ema_decay=cfg.ema_decay or None)
