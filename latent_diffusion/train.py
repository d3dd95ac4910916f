"""Train the latent DiT with the v-objective on a latent cache.

    python -m latent_diffusion.train --preset small --latents CACHE --out runs/dit --max-minutes 8 \
        --batch-size 96 --mixed-precision bf16
    python -m latent_diffusion.train --preset small --vae VAE_CKPT --data AUDIO_DIR --out runs/dit ...
    python -m latent_diffusion.train --init checkpoints/dit --latents CACHE --out runs/dit_ft ...   # fine-tune
    accelerate launch -m latent_diffusion.train ...      # same flags, N processes

With ``--vae`` and ``--data`` the cache is built first (on the main process, into ``--latents`` or
``OUT/latents.safetensors``) and reused if it already exists. ``OUT/final/`` is loadable with
``DiT.from_pretrained``; its config carries the latent statistics needed to decode samples.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import PartialState

from guidance.objective import v_objective_loss
from musicprod_common.datasets import AudioFolderSegments
from musicprod_common.errors import InputError, OneLineParser, run_main
from musicprod_common.training import TrainConfig, add_training_args, train, train_config
from vae import SpectrogramVAE

from .config import PRESETS, dit_preset
from .dit import DiT
from .known_masks import random_known_mask
from .latent_cache import LatentCache, LatentStats, build_latent_cache

PAPER_BATCH = 96  # Levy et al. 2023, latent model global batch
DEFAULTS = TrainConfig(
    steps=100_000, batch_size=PAPER_BATCH, lr=3e-4, warmup_steps=1000, mixed_precision="auto", checkpoint_every=500
)


def dit_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """v-objective on normalised latents ``batch["latents"]`` ``(B, C, L)``."""
    return v_objective_loss(model, batch["latents"], batch["key"]), {}


def known_frames_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`dit_loss` for a DiT with ``known_conditioning``: a random edit per draw (:func:`random_known_mask`), the
    known frames clean as its condition, the loss on the frames it has to generate (all of them when nothing is known).
    """
    x0 = batch["latents"]
    mask = random_known_mask(batch["key"], x0.shape[-1], device=x0.device)
    loss = v_objective_loss(model, x0, batch["key"], weight=1.0 - mask, known=x0, known_mask=mask)
    return loss, {"known_fraction": float(mask.mean())}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m latent_diffusion.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument(
        "--latents",
        nargs="+",
        default=None,
        help="latent cache(s) (.safetensors), read as one; built here (one path) if --vae and --data are given",
    )
    p.add_argument("--vae", default=None, help="VAE checkpoint folder or hub id, to build the cache")
    p.add_argument("--data", default=None, help="audio folder (clips + manifest.jsonl), to build the cache")
    p.add_argument("--encode-batch", type=int, default=16)
    p.add_argument(
        "--cache-only",
        action="store_true",
        help="build the latent cache and stop (e.g. encode here, train on a GPU machine)",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start from this DiT checkpoint's weights, config and latent statistics "
        "(fresh optimizer and LR schedule; --preset is ignored); the cache must come from the same VAE",
    )
    p.add_argument(
        "--init-stats",
        default="checkpoint",
        choices=["checkpoint", "cache"],
        help="with --init: normalise with the checkpoint's latent statistics (the same VAE) or the cache's "
        "own (a new VAE with the same latent shape: the weights are only a start)",
    )
    p.add_argument(
        "--known-conditioning",
        action="store_true",
        help="train the DiT to read the known frames of an edit (infill, continuation) as a clean condition; "
        "with --init, a checkpoint without it gains the input at zero, so it starts as it was",
    )
    add_training_args(p, DEFAULTS)
    return p


def ensure_cache(args: argparse.Namespace) -> list[Path]:
    """The cache paths; built first (main process only) when --vae/--data ask for it and it does not exist."""
    if (args.vae is None) != (args.data is None):
        raise InputError("--vae and --data go together (they build the latent cache); or pass only --latents CACHE")
    if args.vae is None:
        if args.latents is None:
            raise InputError("no training data: pass --latents CACHE, or --vae CKPT --data DIR to build one")
        return [Path(p) for p in args.latents]
    if args.latents is not None and len(args.latents) > 1:
        raise InputError("--vae/--data build one cache: pass at most one --latents path with them")
    cache = Path(args.latents[0]) if args.latents else Path(args.out) / "latents.safetensors"

    state = PartialState(cpu=args.cpu)
    with state.main_process_first():
        if state.is_main_process and not cache.exists():
            vae = SpectrogramVAE.from_pretrained(args.vae).to(state.device)
            window = dit_preset(args.preset).frames * vae.latent_hop
            dataset = AudioFolderSegments(args.data, window / vae.config.sample_rate, seed=args.seed)
            cache.parent.mkdir(parents=True, exist_ok=True)
            build_latent_cache(
                vae, dataset, cache, batch_size=args.encode_batch, device=state.device, source=str(args.data)
            )
            del vae
    return [cache]


def with_known_conditioning(model: DiT) -> DiT:
    """``model`` with the known-frame input added at zero: the same function until that input is trained."""
    if model.config.known_conditioning:
        return model
    grown = DiT(replace(model.config, known_conditioning=True))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("known_in.") for k in missing), (missing, unexpected)
    return grown


def initial_model(init: str, caches: list[Path], keep_stats: bool = True) -> tuple[DiT, LatentCache]:
    """A fine-tune's start: the checkpoint in float32, and the cache normalised with the checkpoint's statistics.

    The DiT learned ``(z - mean) / std`` with its own statistics; a new cache from the same VAE has slightly
    different ones, and renormalising with them would shift what the network sees. A cache from another VAE
    (``keep_stats=False``) is normalised with its own statistics, which the model's config then carries.
    """
    model = DiT.from_pretrained(init).float()
    config = model.config
    stats = (
        LatentStats(torch.tensor(config.latent_mean), torch.tensor(config.latent_std)) if config.latent_std else None
    )
    data = LatentCache(caches, stats=stats if keep_stats else None)
    got = (data.channels, data.frames, data.hop_samples, data.sample_rate)
    want = (config.in_channels, config.frames, config.hop_samples, config.sample_rate)
    if got != want:
        raise InputError(
            f"{data.name}: (channels, frames, hop, sample rate) {got} do not match --init {init} {want}; "
            "encode the cache with the VAE that checkpoint was trained on"
        )
    if not keep_stats:
        stats = data.dit_overrides()
        model.config = replace(config, latent_mean=stats["latent_mean"], latent_std=stats["latent_std"])
    return model, data


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = True  # an entry point, not library code: fp32 matmuls on tensor cores
    caches = ensure_cache(args)
    if args.cache_only:
        data = LatentCache(caches)
        print(f"{data.name}: {len(data)} windows of {data.frames} latent frames x {data.channels} channels")
        return
    if args.init is not None:
        model, data = initial_model(args.init, caches, keep_stats=args.init_stats == "checkpoint")
        if args.known_conditioning:
            model = with_known_conditioning(model)
        config = model.config
    else:
        data = LatentCache(caches)
        config = dit_preset(args.preset, **data.dit_overrides(), known_conditioning=args.known_conditioning)
        if config.frames % config.patch_size:
            raise InputError(
                f"{data.name}: {config.frames} latent frames is not a multiple of the patch size {config.patch_size}"
            )
        torch.manual_seed(args.seed)  # initial weights: a function of the seed
        model = DiT(config)
    cfg = train_config(args)
    loss = known_frames_loss if config.known_conditioning else dit_loss
    train(model, loss, data, cfg, args.out, model_config=config, progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="latent_diffusion.train"))
