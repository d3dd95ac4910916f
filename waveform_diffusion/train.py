"""Train the waveform U-Net with the v-objective on raw stereo audio windows.

    python -m waveform_diffusion.train --preset small --data AUDIO_DIR --out runs/unet --max-minutes 8 \
        --batch-size 32 --mixed-precision bf16
    accelerate launch -m waveform_diffusion.train ...      # same flags, N processes

``AUDIO_DIR`` is any folder :class:`musicprod_common.datasets.AudioFolderSegments` reads (clips plus an
optional ``manifest.jsonl``); it is cut into windows of ``config.window`` samples. ``OUT/final/`` is
loadable with ``WaveformUNet.from_pretrained``.
"""

from __future__ import annotations

import argparse

import torch

from guidance.objective import v_objective_loss
from musicprod_common.datasets import AudioFolderSegments
from musicprod_common.errors import InputError, OneLineParser, run_main
from musicprod_common.training import TrainConfig, add_training_args, example_rand, train, train_config

from .config import PRESETS, unet_preset
from .unet import WaveformUNet

PAPER_BATCH = 384  # Levy et al. 2023, waveform model global batch
DEFAULTS = TrainConfig(
    steps=100_000,
    batch_size=PAPER_BATCH,
    lr=3e-4,
    warmup_steps=1000,
    mixed_precision="auto",
    checkpoint_every=500,
    num_workers=8,
)  # 8 workers: decoding FLAC windows every step would otherwise starve the GPU
SWAP_SALT = 3  # salt of the per-draw channel-swap draw (the objective uses salts 1 and 2)


def unet_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """v-objective on stereo windows ``batch["audio"]`` ``(B, 2, T)``.

    Augmentation: left and right are swapped for a per-example half of the batch (a deterministic function
    of the draw's key, like all randomness in the loop); a mirrored stereo image is still music.
    """
    audio = batch["audio"]
    swap = example_rand(batch["key"], (), salt=SWAP_SALT, device=audio.device) < 0.5  # (B,)
    audio = torch.where(swap[:, None, None], audio.flip(1), audio)
    return v_objective_loss(model, audio, batch["key"]), {}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m waveform_diffusion.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--data", required=True, help="audio folder (clips + optional manifest.jsonl)")
    p.add_argument("--window", type=int, default=None, help="training window in samples (default: the preset's)")
    add_training_args(p, DEFAULTS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = True  # an entry point, not library code: these flags are ours to set
    torch.backends.cudnn.benchmark = True  # fixed window length: let cuDNN pick the fastest conv kernels
    overrides = {"window": args.window} if args.window else {}
    try:
        config = unet_preset(args.preset, **overrides)
    except ValueError as err:
        raise InputError(f"--window {args.window}: {err}") from None
    data = AudioFolderSegments(args.data, config.window / config.sample_rate, seed=args.seed)
    torch.manual_seed(args.seed)  # initial weights: a function of the seed
    model = WaveformUNet(config)
    cfg = train_config(args)
    train(model, unet_loss, data, cfg, args.out, model_config=config, progress=not args.no_progress)


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="waveform_diffusion.train"))
