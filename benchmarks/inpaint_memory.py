"""Peak memory of ``musicprod inpaint`` on a 10-minute song (target: < 3 GB RSS).

Writes a 10-minute 44.1 kHz stereo 16-bit wav (synthetic notes, generated block by block so this process
stays small), then runs the real command in a child process and reads the child's peak RSS from
``getrusage(RUSAGE_CHILDREN)``. The command's default ``--source auto`` searches the whole song for a passage first
(the synthetic notes repeat within each 10 s block, so it copies one); ``--source model`` measures the model's fill.
Memory does not depend on training, so without ``--checkpoints`` the ``small`` presets (the shipped
architecture) are saved with random weights and used.

    python benchmarks/inpaint_memory.py                        # small presets, latent model
    python benchmarks/inpaint_memory.py --checkpoints checkpoints --model waveform --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from latent_diffusion import dit_preset
from latent_diffusion.dit import DiT
from musicprod_common.checkpoint import save_pretrained
from vae import SpectrogramVAE, get_config
from waveform_diffusion import WaveformUNet, unet_preset

TARGET_GB = 3.0
SR = 44100


def write_long_song(path: Path, minutes: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    block = 10 * SR
    total = int(minutes * 60 * SR)
    with sf.SoundFile(str(path), "w", SR, 2, subtype="PCM_16") as fh:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = np.arange(n) / SR
            f0 = 110.0 * 2 ** (rng.integers(0, 24, size=8) / 12)
            x = sum(np.sin(2 * np.pi * f * t) * np.exp(-((t % 1.25) * 3.0)) for f in f0) * 0.05
            x += 0.005 * rng.standard_normal(n)
            fh.write(np.stack([x, 0.9 * x], axis=1).astype(np.float32))


def save_small_presets(root: Path) -> Path:
    torch.manual_seed(0)
    vae_cfg = get_config("small")
    dit_cfg = dit_preset("small", in_channels=vae_cfg.latent_channels, hop_samples=vae_cfg.latent_hop)
    unet_cfg = unet_preset("small")
    save_pretrained(SpectrogramVAE(vae_cfg), vae_cfg, root / "vae")
    save_pretrained(DiT(dit_cfg), dit_cfg, root / "dit")
    save_pretrained(WaveformUNet(unet_cfg), unet_cfg, root / "unet")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--model", choices=["latent", "waveform"], default="latent")
    ap.add_argument("--checkpoints", type=Path, default=None, help="default: random-init `small` presets")
    ap.add_argument("--steps", type=int, default=4, help="memory peaks within one step; more steps only take longer")
    ap.add_argument("--start", type=float, default=300.0, help="region start, seconds (default: mid-song)")
    ap.add_argument("--length", type=float, default=2.0, help="region length, seconds")
    ap.add_argument("--source", choices=["auto", "song", "model"], default="auto", help="musicprod inpaint --source")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song = tmp / "song.wav"
        write_long_song(song, args.minutes)
        ckpt = args.checkpoints or save_small_presets(tmp / "checkpoints")
        cmd = [
            sys.executable,
            "-m",
            "recipes.cli",
            "inpaint",
            str(song),
            "--start",
            str(args.start),
            "--end",
            str(args.start + args.length),
            "-o",
            str(tmp / "out.wav"),
            "--model",
            args.model,
            "--checkpoints",
            str(ckpt),
            "--steps",
            str(args.steps),
            "--source",
            args.source,
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"inpaint failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        # ru_maxrss is in KiB on Linux: the largest resident set any waited-for child reached.
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
        song_gb = song.stat().st_size / 1e9
    result = {
        "benchmark": "inpaint_memory",
        "minutes": args.minutes,
        "model": args.model,
        "checkpoints": str(args.checkpoints) if args.checkpoints else "random-init small presets",
        "region_s": [args.start, args.start + args.length],
        "source": args.source,
        "steps": args.steps,
        "wav_GB": round(song_gb, 3),
        "peak_rss_GB": round(peak_gb, 3),
        "target_GB": TARGET_GB,
        "pass": peak_gb < TARGET_GB,
        "wall_s": round(wall, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads default",
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
