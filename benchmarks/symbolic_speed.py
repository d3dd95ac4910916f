"""CPU speed of the symbolic commands: seconds to generate 8 bars with FGG (accompany) and with binomial
diffusion (harmonize), shipped checkpoints, one thread by default.

    python benchmarks/symbolic_speed.py [--threads 1] [--steps 50]
"""

from __future__ import annotations

import argparse
import time

import torch

from symbolic.binomial import sample_binomial_long
from symbolic.chords import parse_progression
from symbolic.generate import SamplingConfig, chord_track, generate_long
from symbolic.pipeline import load_binomial_checkpoint, load_fgg_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--bars", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    track = chord_track(parse_progression("C G Am F"), args.bars)
    fgg = load_fgg_checkpoint()
    for correction in (False, True):
        start = time.perf_counter()
        generate_long(
            fgg,
            track,
            sampling=SamplingConfig(steps=args.steps, correction=correction),
            generator=torch.Generator().manual_seed(0),
        )
        print(
            f"accompany {args.bars} bars, {args.steps} DDIM steps, correction={correction}: "
            f"{time.perf_counter() - start:.1f} s"
        )
    binom = load_binomial_checkpoint()
    steps = track.steps
    known = torch.zeros(4, steps, binom.cfg.pitches)
    mask = torch.zeros_like(known, dtype=torch.bool)
    mask[2:] = True
    start = time.perf_counter()
    sample_binomial_long(binom, known, mask, generator=torch.Generator().manual_seed(0))
    print(f"harmonize {args.bars} bars, T={binom.cfg.num_timesteps}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
