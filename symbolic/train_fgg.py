"""Train the FGG piano-roll model: ``python -m symbolic.train_fgg --preset small --data data.safetensors --out runs/fgg``.

Also runs under ``accelerate launch -m symbolic.train_fgg ...``. Reads only the compact file written by
``python -m symbolic.data`` (no POP909 folder, no MIDI parsing, no FluidSynth) and exports
``OUT/final/`` (EMA weights + config.json), loadable with :func:`symbolic.fgg.load_fgg`.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import torch

from musicprod_common.errors import InputError
from musicprod_common.training import TrainConfig, train

from .data import PianoRollDataset
from .fgg import build_fgg, fgg_config, fgg_loss


def add_train_args(parser: argparse.ArgumentParser, *, steps: int | None, batch: int, lr: float) -> None:
    parser.add_argument("--preset", default="small", help="tiny | small | paper")
    parser.add_argument("--data", required=True, help="file from `python -m symbolic.data`")
    parser.add_argument("--out", required=True, help="run folder (resumes from OUT/state.pt)")
    parser.add_argument("--steps", default="auto" if steps is None else str(steps),
                        help="optimizer steps, or 'auto' (default): as many as fit in --max-minutes, measured before training")
    parser.add_argument("--batch-size", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup-steps", type=int, default=500)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--num-workers", type=int, default=6)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def auto_steps(model: torch.nn.Module, loss_fn, dataset, args: argparse.Namespace, *, trials: int = 12) -> int:
    """Steps that fit in ``--max-minutes``: time a few forward/backward passes on the training device, and the
    data loading of one batch (spread over the workers); take the slower of the two, keep 10% slack.

    The cosine LR schedule needs the step count up front, so it is measured rather than guessed.
    """
    if args.max_minutes is None:
        raise InputError("--steps auto needs --max-minutes; pass one or give --steps N")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each process would measure its own count and they must agree
        raise InputError("--steps auto works with one process only; with several processes give --steps N")
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    per = args.batch_size
    start = time.perf_counter()
    items = [dataset[i * 7919 % len(dataset)] for i in range(per)]
    data_s = (time.perf_counter() - start) / max(1, args.num_workers)
    batch = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
    batch["index"] = torch.arange(per, device=device)
    model = model.to(device)
    dtype = torch.bfloat16 if args.mixed_precision == "bf16" else torch.float16 if args.mixed_precision == "fp16" else None
    times = []
    for _ in range(trials):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss, _ = loss_fn(model, batch)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    model.to("cpu")
    step_s = max(sorted(times)[len(times) // 2] * 1.15, data_s)  # 1.15: optimizer, EMA, logging
    return max(10, int(0.9 * args.max_minutes * 60 / step_s))


def resolve_steps(model, loss_fn, dataset, args: argparse.Namespace) -> None:
    if str(args.steps) == "auto":
        args.steps = auto_steps(model, loss_fn, dataset, args)
    else:
        try:
            args.steps = int(args.steps)
        except ValueError:
            raise InputError(f"--steps {args.steps!r}: give a number or 'auto'") from None


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=min(args.warmup_steps, max(1, args.steps // 10)),
        max_minutes=args.max_minutes, mixed_precision=args.mixed_precision, num_workers=args.num_workers,
        checkpoint_every=args.checkpoint_every, seed=args.seed, cpu=args.cpu,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symbolic.train_fgg", description=__doc__.splitlines()[0])
    add_train_args(parser, steps=None, batch=64, lr=2e-4)
    args = parser.parse_args(argv)
    try:
        cfg = fgg_config(args.preset)
        dataset = PianoRollDataset(args.data, "train")
        model = build_fgg(cfg)
        loss_fn = functools.partial(fgg_loss, cfg=cfg)
        resolve_steps(model, loss_fn, dataset, args)
        summary = train(model, loss_fn, dataset, train_config(args), args.out,
                        model_config=cfg, progress=not args.no_progress)
    except InputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    print(f"trained {summary['steps']} steps in {summary['wall_seconds'] / 60:.1f} min; last {summary['last']}; weights in {args.out}/final")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
