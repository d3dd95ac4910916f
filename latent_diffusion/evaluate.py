"""The DiT's v-objective on latents it never trained on, at a fixed grid of diffusion times and fixed noise.

    python -m latent_diffusion.evaluate --dit checkpoints/dit [runs/other/final ...] \
        --latents HELDOUT_CACHE [TRAIN_CACHE ...] [--windows 200] [--threads 2] [--gap-frames 86]

The training log's loss is a poor guide to a diffusion model: it is a different random t and noise each step,
and a loop that gave an example the *same* t and noise in every epoch would let a model drive it down by
learning those pairs. This script scores every checkpoint on the same windows, the same times and
the same noise, each model normalising with its own statistics. Pass a training cache as well to see the gap
between seen and unseen windows.

Reading the numbers: at small t the v-error is the x0-error divided by σ_t², so a model that denoises no
better than returning x_t scores about 1 there; a useful denoiser scores below 1 at every t.
``--gap-frames N`` scores only a gap of N frames in the middle of each window (86 frames is the infill
benchmark's 2 s), with the frames around it shown clean to a DiT trained with ``known_conditioning``; an
unconditional DiT is scored on the same frames without them, so the two numbers say what the context is worth.
Prints one JSON line per (checkpoint, cache).
"""

from __future__ import annotations

import argparse
import json

import torch

from guidance.objective import v_squared_error

from .dit import DiT
from .latent_cache import LatentCache

TIMES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def centred_gap_mask(frames: int, gap: int) -> torch.Tensor:
    """``(1, 1, frames)``: 1 = known, 0 on ``gap`` frames in the middle."""
    mask = torch.ones(1, 1, frames)
    start = (frames - gap) // 2
    mask[..., start : start + gap] = 0.0
    return mask


@torch.no_grad()
def v_errors(
    model: torch.nn.Module, latents: torch.Tensor, *, seed: int = 0, batch: int = 50, gap: int | None = None
) -> list[float]:
    """Mean squared v-error at each of :data:`TIMES` for raw latents ``(N, C, L)``; the noise depends only on ``seed``.

    ``model`` is a DiT or anything with its ``normalize_latents`` and ``forward(x_t, t)``. With ``gap``, only a
    centred gap of that many frames is scored, and a model with ``config.known_conditioning`` sees the rest clean.
    """
    x0_all = model.normalize_latents(latents)
    mask = None if gap is None else centred_gap_mask(x0_all.shape[-1], gap)
    weight = torch.ones(1, 1, x0_all.shape[-1]) if mask is None else 1.0 - mask  # (1, 1, L): the scored frames
    conditioned = mask is not None and getattr(getattr(model, "config", None), "known_conditioning", False)
    generator = torch.Generator().manual_seed(seed)
    errors = []
    for t in TIMES:
        total = 0.0
        for start in range(0, len(x0_all), batch):
            x0 = x0_all[start : start + batch]
            eps = torch.randn(x0.shape, generator=generator)
            known = dict(known=x0, known_mask=mask.expand(len(x0), -1, -1)) if conditioned else {}
            total += float((v_squared_error(model, x0, torch.full((len(x0),), t), eps, **known) * weight).sum())
        errors.append(total / (float(weight.sum()) * len(x0_all) * x0_all.shape[1]))
    return errors


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m latent_diffusion.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--dit", nargs="+", required=True, help="DiT checkpoint folders")
    p.add_argument("--latents", nargs="+", required=True, help="latent caches, each scored on its own")
    p.add_argument("--windows", type=int, default=200, help="the first N windows of each cache")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--gap-frames", type=int, default=None, help="score only a centred gap of this many frames (86 = 2 s)"
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for ckpt in args.dit:
        model = DiT.from_pretrained(ckpt).float().eval()
        for cache in args.latents:
            latents = LatentCache(cache, normalize=False).raw[: args.windows]
            errors = v_errors(model, latents, seed=args.seed, gap=args.gap_frames)
            print(
                json.dumps(
                    {
                        "dit": ckpt,
                        "latents": cache,
                        "windows": len(latents),
                        "gap_frames": args.gap_frames,
                        "v_mse": {str(t): round(e, 4) for t, e in zip(TIMES, errors)},
                        "mean": round(sum(errors) / len(errors), 4),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
