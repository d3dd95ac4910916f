"""Command-line plumbing shared by ``latent_diffusion.train`` and ``waveform_diffusion.train``.

Both scripts map flags onto :class:`musicprod_common.training.TrainConfig` the same way, and both can
size the run to a wall-clock budget: with ``--steps auto`` a few throwaway optimizer steps are timed on
the real device, and the step count (which sets the cosine LR schedule's length) is chosen so the schedule
ends just inside ``--max-minutes``. The chosen count is written to ``OUT/schedule.json`` and reused on
resume, so a resumed run follows the same schedule.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset, default_collate

from musicprod_common.errors import InputError
from musicprod_common.files import atomic_path
from musicprod_common.training import LossFn, TrainConfig, update_ema

SCHEDULE_NAME = "schedule.json"
BUDGET_FRACTION = 0.85  # of --max-minutes: leaves room for the loop's logging, checkpoints and the export


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 2, like the ``musicprod`` CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def add_training_args(parser: argparse.ArgumentParser, *, batch_size: int, lr: float) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--out", required=True, help="run folder: state.pt, losses.jsonl, tb/, final/ (resumes if state.pt exists)")
    g.add_argument("--steps", default="auto", help="optimizer steps, or 'auto' to fit the cosine schedule into --max-minutes")
    g.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget; the run stops, checkpoints and exports")
    g.add_argument("--batch-size", type=int, default=batch_size, help="global batch (over processes and accumulation)")
    g.add_argument("--grad-accum", type=int, default=1)
    g.add_argument("--lr", type=float, default=lr)
    g.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of the steps, at most 1000")
    g.add_argument("--ema-decay", type=float, default=0.999)
    g.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default="auto",
                   help="auto: bf16 on a GPU that supports it, else fp32")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    g.add_argument("--checkpoint-every", type=int, default=500)
    g.add_argument("--export-dtype", choices=["float16", "float32"], default="float16",
                   help="dtype of final/model.safetensors (fp16 halves the shipped size)")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve_mixed_precision(choice: str, cpu: bool) -> str:
    if choice != "auto":
        return choice
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def train_config_from_args(args: argparse.Namespace, steps: int) -> TrainConfig:
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, min(1000, steps // 20))
    return TrainConfig(
        steps=steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup_steps=warmup,
        ema_decay=args.ema_decay or None, mixed_precision=resolve_mixed_precision(args.mixed_precision, args.cpu),
        seed=args.seed, num_workers=args.num_workers, checkpoint_every=args.checkpoint_every,
        max_minutes=args.max_minutes, cpu=args.cpu,
    )


def export_dtype(args: argparse.Namespace) -> torch.dtype:
    return torch.float16 if args.export_dtype == "float16" else torch.float32


def _time_one(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure_step_seconds(model: torch.nn.Module, loss_fn: LossFn, dataset: Dataset, cfg: TrainConfig, *,
                         processes: int, device: torch.device, trials: int = 5) -> float:
    """Seconds per optimizer step on ``device``: a throwaway copy of the model, real data, real loss.

    Counts what the shared loop does per step — moving the batch to the device, forward, backward, gradient clipping, AdamW, the EMA
    update, reading the loss — and the data loading of one micro-batch; with worker processes the loading
    overlaps the model, so the slower of the two sets the pace.
    """
    local = max(1, cfg.batch_size // (processes * cfg.grad_accum))
    indices = [i % len(dataset) for i in range(local)]

    def fetch() -> dict:
        return default_collate([{**dataset[i], "index": torch.tensor(i)} for i in indices])

    fetch_s = _time_one(fetch, torch.device("cpu"))
    host_batch = fetch()
    trial = copy.deepcopy(model).to(device).train()
    ema = copy.deepcopy(trial).requires_grad_(False)
    optimizer = torch.optim.AdamW(trial.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.mixed_precision)

    def step() -> None:
        batch = {k: v.to(device) for k, v in host_batch.items()}  # the loop moves every batch to the device
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = loss_fn(trial, batch)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trial.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cfg.ema_decay:
            update_ema(ema, trial, cfg.ema_decay)
        float(loss.detach())  # the loop reads the loss every step, which synchronises

    for _ in range(2):  # warm-up: allocator, cuDNN autotuning, lazy init
        step()
    model_s = min(_time_one(step, device) for _ in range(trials))
    del trial, ema, optimizer
    data_s = fetch_s / max(1, cfg.num_workers)
    per_micro = max(model_s, data_s) if cfg.num_workers > 0 else model_s + data_s
    return per_micro * cfg.grad_accum


def resolve_steps(args: argparse.Namespace, model: torch.nn.Module, loss_fn: LossFn, dataset: Dataset) -> int:
    """``--steps N`` as given; ``--steps auto`` from a timing trial and ``--max-minutes`` (kept for resume)."""
    if args.steps != "auto":
        try:
            steps = int(args.steps)
        except ValueError:
            raise InputError(f"--steps {args.steps!r}: give a positive integer or 'auto'") from None
        if steps < 1:
            raise InputError(f"--steps {steps}: must be at least 1")
        return steps
    if args.max_minutes is None or args.max_minutes <= 0:
        raise InputError("--steps auto needs a positive --max-minutes; or pass --steps N")
    out = Path(args.out)
    saved = out / SCHEDULE_NAME
    if saved.exists():
        return int(json.loads(saved.read_text())["steps"])

    from accelerate import PartialState

    state = PartialState(cpu=args.cpu)
    cfg = train_config_from_args(args, steps=1)
    seconds = measure_step_seconds(model, loss_fn, dataset, cfg, processes=state.num_processes, device=state.device)
    steps = max(1, int(BUDGET_FRACTION * 60 * args.max_minutes / seconds))
    if state.num_processes > 1:  # every process must run the same schedule: take the most cautious one
        agreed = torch.tensor([steps], device=state.device)
        torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MIN)
        steps = int(agreed.item())
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps({"steps": steps, "seconds_per_step": seconds, "max_minutes": args.max_minutes}) + "\n")
    state.wait_for_everyone()
    return steps


def run_main(main: Callable[[list[str] | None], None], argv: list[str] | None = None, prog: str = "") -> int:
    """Run a training ``main``: bad input is one line on stderr and exit code 2."""
    try:
        main(argv)
    except InputError as err:
        sys.stderr.write(f"{prog}: error: {err}\n")
        return 2
    return 0
