"""One training loop for every model in musicprod, run under ``accelerate launch`` or ``torchrun``.

Determinism is built in rather than saved: the examples of step ``s`` and every random number a loss
draws are functions of ``(seed, s, position in the global batch)``. That gives three properties for free:

* exact resume: a run killed with ``kill -9`` and resumed logs the same losses as an uninterrupted one;
* N processes with batch b see the same examples and noise as 1 process with batch N·b;
* the data order needs no sampler state in the checkpoint.

A dataset is any map-style dataset whose items are dicts of tensors; the loop adds ``"key"``, one random
key per draw, which losses pass to :func:`example_randn` and :func:`example_rand`. The key belongs to the
draw, not the example: an example seen again in a later epoch gets a new diffusion time and new noise.
(Keyed by the example's index instead, every epoch would repeat each example's t and noise, and a diffusion
model would learn those fixed pairs instead of the denoiser; a test guards against it.)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .checkpoint import load_training_state, save_pretrained, save_training_state
from .errors import InputError

LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, Mapping[str, float]]]
STATE_NAME = "state.pt"
LOSS_LOG_NAME = "losses.jsonl"


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8  # global: summed over processes and accumulation micro-steps
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.999)  # Levy et al. 2023: AdamW, no weight decay
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    mixed_precision: str = "no"  # "bf16" on GPUs that support it
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 250
    num_workers: int = 0
    max_minutes: float | None = None  # wall-clock budget of the whole run, resumes included: the LR anneals over it
    cpu: bool = False
    export_dtype: str = "float16"  # of final/model.safetensors: shipped checkpoints are fp16, half the size


EXPORT_DTYPES = {"float16": torch.float16, "float32": torch.float32}


MIXED_PRECISION = ("no", "bf16", "fp16")
TRAIN_ARG_HELP = {
    "steps": "optimizer steps; with --max-minutes the LR anneals over whichever ends first, so --steps can be set "
    "large for a budgeted run",
    "max_minutes": "wall-clock budget of the whole run, summed over resumes: the LR cosine anneals over it; the run "
    "stops, checkpoints and exports in time (SIGTERM also checkpoints, exports and stops)",
    "batch_size": "global batch (over processes and accumulation micro-steps)",
    "export_dtype": "dtype of final/model.safetensors (fp16 halves the shipped size)",
}


def add_train_args(parser: "argparse.ArgumentParser", defaults: TrainConfig) -> None:
    """Expose every TrainConfig field as ``--field-name`` so all training scripts share one vocabulary.

    ``defaults`` is the script's own TrainConfig of default values. A ``mixed_precision`` default of
    ``"auto"`` adds that choice; the script resolves it before calling :func:`train`.
    """
    group = parser.add_argument_group("training")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        extra: dict[str, Any] = {"default": default, "help": TRAIN_ARG_HELP.get(field.name)}
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **extra)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=float, nargs=len(default), **extra)
        elif field.name == "export_dtype":
            group.add_argument(flag, choices=tuple(EXPORT_DTYPES), **extra)
        elif field.name == "mixed_precision":
            group.add_argument(flag, choices=(("auto",) if default == "auto" else ()) + MIXED_PRECISION, **extra)
        else:
            kind = float if field.name in {"max_minutes", "grad_clip", "ema_decay"} else type(default)
            group.add_argument(flag, type=kind, **extra)


def train_config_from_args(args: "argparse.Namespace") -> TrainConfig:
    return TrainConfig(
        **{
            f.name: (tuple(v) if isinstance(v := getattr(args, f.name), list) else v)
            for f in dataclasses.fields(TrainConfig)
        }
    )


def add_training_args(parser: "argparse.ArgumentParser", defaults: TrainConfig) -> None:
    """What every training script adds: ``--out``, ``--no-progress`` and every TrainConfig flag (``mixed_precision``
    may default to "auto")."""
    parser.add_argument(
        "--out", required=True, help="run folder: state.pt, losses.jsonl, tb/, final/ (resumes if state.pt exists)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_train_args(parser, defaults)


def resolve_mixed_precision(choice: str, cpu: bool) -> str:
    """``"auto"``: bf16 where the GPU supports it, else none; any other choice as given."""
    if choice != "auto":
        return choice
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def train_config(args: "argparse.Namespace") -> TrainConfig:
    """The run's TrainConfig: ``--mixed-precision auto`` resolved, warm-up at most 5% of the steps (the default 1000
    included)."""
    cfg = train_config_from_args(args)
    if cfg.steps < 1:
        raise InputError(f"--steps {cfg.steps}: must be at least 1")
    return dataclasses.replace(
        cfg,
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision, cfg.cpu),
        warmup_steps=min(cfg.warmup_steps, max(1, cfg.steps // 20)),
        ema_decay=cfg.ema_decay or None,
    )


def mix_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (SplitMix64 finaliser), independent of PYTHONHASHSEED."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return x >> 1


def example_randn(
    keys: torch.Tensor, shape: tuple[int, ...], *, salt: int = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Per-draw standard normal noise ``(B, *shape)``, a function of each draw's key (``batch["key"]``)."""
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(mix_seed(int(k), salt))) for k in keys.tolist()]
    return torch.stack(rows).to(device)


def example_rand(
    keys: torch.Tensor, shape: tuple[int, ...], *, salt: int = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Per-draw uniform [0, 1) numbers ``(B, *shape)``, like :func:`example_randn`."""
    rows = [torch.rand(shape, generator=torch.Generator().manual_seed(mix_seed(int(k), salt))) for k in keys.tolist()]
    return torch.stack(rows).to(device)


def draw_keys(step: int, batch_size: int, seed: int) -> list[int]:
    """The random keys of the global batch of ``step``, one per position: new for every draw of an example."""
    return [mix_seed(seed, step, position) for position in range(batch_size)]


def global_indices(step: int, batch_size: int, dataset_len: int, seed: int) -> list[int]:
    """Indices of the global batch of ``step``: epochs of seeded permutations, read in order."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), dataset_len)
        perm = torch.randperm(dataset_len, generator=torch.Generator().manual_seed(mix_seed(seed, epoch)))
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return out


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this process's micro-batches for steps ``start_step..steps-1``, as ``(example index, draw key)`` pairs."""

    def __init__(self, dataset_len: int, cfg: TrainConfig, start_step: int, rank: int, world: int):
        if cfg.batch_size % (world * cfg.grad_accum):
            raise ValueError(
                f"batch_size {cfg.batch_size} must divide by processes × grad_accum = {world * cfg.grad_accum}"
            )
        self.dataset_len, self.cfg, self.start_step, self.rank, self.world = dataset_len, cfg, start_step, rank, world
        self.local = cfg.batch_size // (world * cfg.grad_accum)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.cfg.steps):
            batch = list(
                zip(
                    global_indices(step, self.cfg.batch_size, self.dataset_len, self.cfg.seed),
                    draw_keys(step, self.cfg.batch_size, self.cfg.seed),
                )
            )
            for micro in range(self.cfg.grad_accum):
                first = (micro * self.world + self.rank) * self.local
                yield batch[first : first + self.local]

    def __len__(self) -> int:
        return (self.cfg.steps - self.start_step) * self.cfg.grad_accum


class _KeyedDataset(Dataset):
    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index_and_key: tuple[int, int]) -> dict[str, Any]:
        index, key = index_and_key
        item = self.dataset[index]
        if not isinstance(item, Mapping):
            item = {"audio": item}
        return {**item, "key": torch.tensor(key)}


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up, then a cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    ema_params = list(ema.parameters())
    params = [p.detach().to(p_ema.dtype) for p_ema, p in zip(ema_params, model.parameters())]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)  # one fused launch instead of one per tensor (GPU)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def train(
    model: torch.nn.Module,
    loss_fn: LossFn,
    dataset: Dataset,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    model_config: Any = None,
    parameters: Callable[[torch.nn.Module], Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` to ``cfg.steps``, resuming from ``out_dir/state.pt`` if it is there.

    Writes ``state.pt`` (atomic), ``losses.jsonl``, TensorBoard logs under ``tb/`` and, at the end, the
    EMA weights (or the raw ones without EMA) as ``final/`` via :func:`save_pretrained`.
    SIGTERM (a scheduler's preemption, ``timeout``) ends the run after the current step the same way:
    checkpoint, export. The state records the training time used, so ``max_minutes`` is the budget of the
    whole run and a resumed run continues the same LR cosine instead of restarting it.
    ``parameters`` picks what the optimizer trains (default: all), e.g. a decoder-only fine-tune.
    Returns a summary: steps done, wall time, last losses.
    """
    from accelerate import Accelerator  # 0.6 s, and every command imports this module: only training pays it

    out_dir = Path(out_dir)
    accelerator = Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    trainable = list(parameters(model) if parameters else model.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    # With a wall-clock budget the cosine runs over whichever ends first, the steps or the minutes, so a
    # budgeted run still anneals. Only runs without max_minutes resume bit-exactly.
    budget_used = {"fraction": 0.0}

    def lr_multiplier(s: int) -> float:
        return cosine_with_warmup(max(s, int(budget_used["fraction"] * cfg.steps)), cfg.warmup_steps, cfg.steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier)
    ema = copy.deepcopy(model).float().eval().requires_grad_(False) if cfg.ema_decay else None

    start_step, elapsed_before = 0, 0.0
    state_path = out_dir / STATE_NAME
    if state_path.exists():
        state = load_training_state(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start_step = int(state["step"])
        elapsed_before = float(state.get("elapsed_seconds", 0.0))

    model, optimizer = accelerator.prepare(model, optimizer)
    if ema is not None:
        ema.to(accelerator.device)
    loader = DataLoader(
        _KeyedDataset(dataset),
        batch_sampler=StepBatchSampler(len(dataset), cfg, start_step, rank, world),
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )

    log_path = out_dir / LOSS_LOG_NAME
    writer = None
    if main:
        _truncate_log(log_path, start_step)
        from torch.utils.tensorboard import SummaryWriter  # 0.3 s: only training pays it

        writer = SummaryWriter(str(out_dir / "tb"))

    def checkpoint(step: int) -> None:
        if main:
            unwrapped = accelerator.unwrap_model(model)
            save_training_state(
                {
                    "model": unwrapped.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else {},
                    "step": step,
                    "train_config": dataclasses.asdict(cfg),
                    "elapsed_seconds": time.monotonic() - started,
                },
                state_path,
            )
        accelerator.wait_for_everyone()

    started = time.monotonic() - elapsed_before
    terminated = {"flag": False}
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: terminated.update(flag=True))
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not (main and progress), desc="train", unit="step")
    batches = iter(loader)
    step = start_step
    last: dict[str, float] = {}
    model.train()
    while step < cfg.steps:
        torch.manual_seed(mix_seed(cfg.seed, step, rank))  # dropout and the like: a function of the step
        totals: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in next(batches).items()}
            sync = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                with accelerator.autocast():
                    loss, logs = loss_fn(model, batch)
                accelerator.backward(loss / cfg.grad_accum)
            for k, v in {"loss": float(loss.detach()), **logs}.items():
                totals[k] = totals.get(k, 0.0) + float(v) / cfg.grad_accum
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            update_ema(ema, accelerator.unwrap_model(model), min(cfg.ema_decay, (1 + step) / (10 + step)))
        step += 1

        reduced = accelerator.reduce(torch.tensor(list(totals.values()), device=accelerator.device), reduction="mean")
        last = dict(zip(totals, reduced.tolist()))
        if main:
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, **last}) + "\n")
            if step % cfg.log_every == 0 or step == cfg.steps:
                for k, v in last.items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            bar.set_postfix(loss=f"{last['loss']:.4f}")
        bar.update(1)
        # every rank must see the same budget fraction (or their LRs would differ) and the same stop decision
        fraction = (time.monotonic() - started) / (60 * cfg.max_minutes) if cfg.max_minutes is not None else 0.0
        shared = accelerator.reduce(
            torch.tensor([fraction, float(terminated["flag"])], device=accelerator.device), reduction="sum"
        )
        budget_used["fraction"] = float(shared[0]) / world
        stop = budget_used["fraction"] >= 1.0 or float(shared[1]) > 0
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
            checkpoint(step)
        if stop:
            break
    bar.close()
    if in_main_thread:
        signal.signal(signal.SIGTERM, previous_handler)

    if main:
        final = ema if ema is not None else accelerator.unwrap_model(model)
        if model_config is not None:
            save_pretrained(final, model_config, out_dir / "final", dtype=EXPORT_DTYPES[cfg.export_dtype])
        writer.close()
    accelerator.wait_for_everyone()
    return {"steps": step, "wall_seconds": time.monotonic() - started, "last": last, "world_size": world}


def _truncate_log(path: Path, upto_step: int) -> None:
    """Drop log lines past the resumed step, so a resumed run's log reads like an uninterrupted one."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= upto_step]
    path.write_text("".join(line + "\n" for line in kept))
