"""Where one VAE training step's time goes: the model against each reconstruction loss, forward and backward.

    python benchmarks/vae_train_step.py [--preset small] [--batch-size 8] [--crop-frames 64] [--threads 2] \
        [--mrstft-ffts 512 1024 2048 4096 8192] [--sum-diff-ffts 1024 2048 4096]

Random weights and audio (step time does not depend on them). Every figure is the median of ``--repeats`` timed
runs after one warm-up. The full step (``vae.train.VAELoss`` forward and backward) is timed as a whole, and each
loss term on its own against fixed inputs; the model's share is the full step minus the loss terms. On a shared
machine compare the parts of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vae import SpectrogramVAE  # noqa: E402
from vae.train import LossConfig, VAELoss  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    defaults = LossConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-frames", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mrstft-ffts", type=int, nargs="+", default=list(defaults.mrstft_ffts))
    p.add_argument("--sum-diff-ffts", type=int, nargs="+", default=list(defaults.sum_diff_ffts))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = SpectrogramVAE.from_preset(args.preset).train()
    cfg = model.config
    audio = 0.1 * torch.randn(args.batch_size, 2, args.crop_frames * cfg.latent_hop)
    loss_fn = VAELoss(
        LossConfig(mrstft_ffts=tuple(args.mrstft_ffts), sum_diff_ffts=tuple(args.sum_diff_ffts)),
        crop_samples=audio.shape[-1],
    )
    batch = {"audio": audio, "key": torch.arange(args.batch_size)}

    def full_step() -> None:
        model.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model, batch)
        loss.backward()

    with torch.no_grad():
        out, _, magnitude = model(audio)
        reference = model.input_magnitude(audio)
    out = out.detach().requires_grad_(True)
    magnitude = magnitude.detach().requires_grad_(True)

    def term(make: Callable[[], torch.Tensor], leaf: torch.Tensor) -> Callable[[], object]:
        return lambda: torch.autograd.grad(make(), leaf)

    parts = {
        "mrstft": term(lambda: loss_fn.mrstft(out, audio), out),
        "sum_diff": term(lambda: loss_fn.sum_diff(out, audio), out),
        "spectrum": term(lambda: loss_fn.spectrum(magnitude, reference), magnitude),
    }
    seconds = {name: median_seconds(fn, args.repeats) for name, fn in parts.items()}
    seconds["full_step"] = median_seconds(full_step, args.repeats)
    seconds["model"] = seconds["full_step"] - sum(seconds[name] for name in parts)
    report = {
        "preset": args.preset,
        "batch_size": args.batch_size,
        "crop_samples": audio.shape[-1],
        "threads": args.threads,
        "mrstft_ffts": args.mrstft_ffts,
        "sum_diff_ffts": args.sum_diff_ffts,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "share_of_step": {k: round(v / seconds["full_step"], 3) for k, v in seconds.items() if k != "full_step"},
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
