"""Guidance cost: guided vs unguided 50-step latent infill of one 5.94 s window, timed in the same run.

    python benchmarks/guidance_cost.py [--dit runs/dit/final] [--vae runs/vae/final] [--steps 50] [--threads 1]

Without checkpoints the ``small`` DiT and VAE presets are built with random weights (the timing does not depend
on the weights). Each variant solves the paper's 2 s infill in the middle of the window:

* unguided:          ξ = 0, replacement-only projection (no gradients);
* guided-audio:      d = L1 after the VAE decoder, full backprop through the DiT (Levy et al. 2023, Alg. 2);
* guided-audio-x0:   same, with v_θ held constant (gradient through x̂0 and the decoder only);
* guided-audio-band(-x0): audio L1 on the known 0.5 s either side of the gap only, decoding just those frames;
* guided-mel-band-x0: log-mel spectrograms of the known 0.25 s either side (what ``guidance.solve`` does by
  default for the latent model);
* guided-latent:     d = L1 against the encoded measurement, full backprop through the DiT;
* guided-latent-x0:  latent measurement with v_θ held constant.

Prints one JSON line per variant, then a summary with the ratios to unguided.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from latent_models import load_latent_models

from guidance import infill_problem, latent_edit_model, solve

BAND_S = 0.5  # known audio each side of the gap for the band-limited L1 (the waveform preset's)
VARIANTS = {
    "unguided": dict(xi=0.0),
    "guided-audio": dict(space="audio", distance="l1", through_net=True, band_s=None),
    "guided-audio-x0": dict(space="audio", distance="l1", through_net=False, band_s=None),
    "guided-audio-band": dict(space="audio", distance="l1", through_net=True, band_s=BAND_S),
    "guided-audio-band-x0": dict(space="audio", distance="l1", through_net=False, band_s=BAND_S),
    "guided-mel-band-x0": dict(space="audio", distance="mel", through_net=False, band_s=0.25),  # the latent preset
    "guided-latent": dict(space="latent", distance="l1", through_net=True),
    "guided-latent-x0": dict(space="latent", distance="l1", through_net=False),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dit", help="DiT checkpoint folder (default: random-init small preset)")
    p.add_argument("--vae", help="VAE checkpoint folder (default: random-init small preset)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dit, vae, source = load_latent_models(args.vae, args.dit)
    model = latent_edit_model(dit, vae)
    audio = 0.1 * torch.randn(1, 2, model.window, generator=torch.Generator().manual_seed(0))
    gap = 2 * model.sample_rate
    start = (model.window - gap) // 2
    problem = infill_problem(audio, start, start + gap)
    solve(problem, model, model.sampler.but(steps=2, xi=0.0))  # warm-up (allocator, kernels)
    times: dict[str, float] = {}
    for _ in range(args.repeats):
        for name in args.variants:  # interleaved so load changes on the shared CPU hit every variant alike
            t0 = time.perf_counter()
            sampler = model.sampler.but(steps=args.steps, **VARIANTS[name])
            solve(problem, model, sampler, generator=torch.Generator().manual_seed(0))
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - t0)
            print(json.dumps({"variant": name, "seconds": round(times[name], 3)}), flush=True)
    base = times.get("unguided")
    summary = {
        "models": source,
        "steps": args.steps,
        "window_s": round(model.window / model.sample_rate, 3),
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "ratio_to_unguided": {k: round(v / base, 2) for k, v in times.items()} if base else None,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
