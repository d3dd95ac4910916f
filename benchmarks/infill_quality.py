"""Infill quality: a 2 s gap in the middle of a 5.94 s window, multi-resolution mel distance inside the gap.

    python benchmarks/infill_quality.py --dit runs/dit/final --vae runs/vae/final [--data /work/shared/data/pop909] \
        [--n 16] [--steps 50] [--paper] [--threads 2] [--split valid] [--only replacement] \
        [--eta E] [--xi X] [--distance mel|l1 --band S] [--resample R --jump J] [--erode F] \
        [--prior crossfade|original [--k K] [--strength S]]

Settings are chosen on ``--split valid`` and reported once on the test split.

Clips are held-out POP909 test-split renders (``Pop909Segments(split="test")``, one window per song). Methods:

* crossfade:   ``guidance.neighbour_crossfade``, the audio before the gap fading into the audio after it (no model);
* replacement: the latent model with ξ = 0, replacement-only projection (RePaint-style);
* guided:      the latent model with its sampler preset (``guidance.config``: log-mel distance on the decoded 0.25 s
               each side of the gap, ξ = 3e-2; ``--distance l1 --band 0.5`` for the paper's waveform L1 on 0.5 s);
* paper:       with ``--paper``, Algorithm 2 verbatim (waveform L1, full backprop through the DiT, whole known region);
* vae_ceiling: not a method: the VAE's own reconstruction of the true window, the best any latent-model fill
               can score (a perfect DiT would produce this latent).
* vae_crossfade: not a method: the VAE's reconstruction of the crossfade, what a fill exactly as plausible as
               the neighbouring audio scores once it has gone through this VAE's decoder.

``--prior crossfade`` starts the model fills the way the paper starts a transition, x̄ being the crossfade;
``--prior original`` regenerates the gap from the true audio (``musicprod regenerate``), so the distance then says
how much of the original survives, not how good a fill is. ``--k`` (default 0.85) and ``--strength`` (default 1,
SDEdit below that) set how far from x̄ the sampler starts.

The target: guided beats both crossfade and replacement. Prints one JSON line per clip, then a summary.
Without --dit/--vae it runs random-init ``small`` models (a smoke test of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
from latent_models import load_latent_models

from guidance import (
    K_PRIOR,
    infill_problem,
    latent_edit_model,
    neighbour_crossfade,
    regenerate_problem,
    sampler_preset,
    solve,
)
from musicprod_common.datasets import Pop909Segments
from musicprod_common.features import MelDistance

GAP_S = 2.0  # Levy et al. 2023: the middle two seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dit")
    p.add_argument("--vae")
    p.add_argument("--data", default="/work/shared/data/pop909")
    p.add_argument(
        "--split", default="test", choices=("valid", "test"), help="valid: for choosing settings; test: for reporting"
    )
    p.add_argument("--n", type=int, default=16, help="number of clips")
    p.add_argument("--steps", type=int, help="sampling steps (default: the latent model's preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper", action="store_true", help="also run Algorithm 2 verbatim (slow)")
    p.add_argument("--eta", type=float, help="DDIM η for the model fills (default: the latent model's)")
    p.add_argument("--xi", type=float, help="ξ of the guided fills (default: the latent model's)")
    p.add_argument(
        "--distance",
        choices=("mel", "l1"),
        help="the guided fills' reconstruction distance (default: the latent model's)",
    )
    p.add_argument("--band", type=float, help="seconds of known audio each side the guided fills measure")
    p.add_argument("--resample", type=int, help="RePaint resampling: walk every --jump steps this many times")
    p.add_argument("--jump", type=int)
    p.add_argument("--erode", type=int, help="latent frames next to the gap treated as unknown (default: the codec's)")
    p.add_argument(
        "--prior", choices=("crossfade", "original"), help="start the model fills from this x̄ (default: pure noise)"
    )
    p.add_argument(
        "--k",
        type=float,
        default=K_PRIOR,
        help="with --prior: the weight of the noise in x_T (default the paper's 0.85)",
    )
    p.add_argument(
        "--strength", type=float, help="with --prior: the noise level to start from (SDEdit below 1; default 1)"
    )
    p.add_argument(
        "--level-band",
        type=float,
        help="correct the decoded level to the truth's over this many seconds of known audio each side of the gap",
    )
    p.add_argument(
        "--only", nargs="*", choices=("replacement", "guided"), help="run only these model fills (none: baselines only)"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dit, vae, _ = load_latent_models(args.vae, args.dit)
    model = latent_edit_model(dit, vae)
    if args.erode is not None:
        model.codec.erode = args.erode
    clips = Pop909Segments(args.data, args.split, model.window / model.sample_rate, items_per_song=1, seed=args.seed)
    gap = int(GAP_S * model.sample_rate)
    start = (model.window - gap) // 2
    mel = MelDistance(model.sample_rate)
    shared = dict(
        steps=args.steps,
        eta=args.eta,
        resample=args.resample,
        jump=args.jump,
        strength=args.strength,
        level_band_s=args.level_band,
    )
    base = model.sampler.but(**shared)
    guided = base.but(xi=args.xi, distance=args.distance, band_s=args.band)
    methods = {"replacement": base.but(xi=0.0), "guided": guided}
    if args.only is not None:
        methods = {name: methods[name] for name in args.only}
    if args.paper:
        methods["paper"] = sampler_preset("latent", "paper").but(**shared, xi=args.xi)
    setting = {
        **dataclasses.asdict(guided),
        **({"prior": args.prior, "k": args.k} if args.prior else {}),
    }
    problem = {
        None: lambda ref: infill_problem(ref, start, start + gap),
        "crossfade": lambda ref: infill_problem(ref, start, start + gap, args.k),
        "original": lambda ref: regenerate_problem(ref, start, start + gap, args.k),
    }[args.prior]
    scores: dict[str, list[float]] = {
        "crossfade": [],
        "vae_ceiling": [],
        "vae_crossfade": [],
        **{name: [] for name in methods},
    }
    for i in range(min(args.n, len(clips))):
        ref = clips[i]["audio"][None, :, : model.window]  # (1, 2, T)
        outs = {"crossfade": neighbour_crossfade(ref, start, start + gap)}
        with torch.no_grad():
            outs["vae_ceiling"] = vae.decode(vae.encode(ref).mode(), ref.shape[-1])
            outs["vae_crossfade"] = vae.decode(vae.encode(outs["crossfade"]).mode(), ref.shape[-1])
        for name, sampler in methods.items():
            gen = torch.Generator().manual_seed(args.seed + i)
            outs[name] = solve(problem(ref), model, sampler, generator=gen)
        row = {
            name: float(mel(out[..., start : start + gap], ref[..., start : start + gap])) for name, out in outs.items()
        }
        for name, value in row.items():
            scores[name].append(value)
        print(json.dumps({"clip": i, **{k: round(v, 4) for k, v in row.items()}}), flush=True)
    mean = {k: round(sum(v) / len(v), 4) for k, v in scores.items() if v}
    summary = {
        "models": "checkpoints" if args.dit and args.vae else "random-init small presets (smoke test only)",
        "clips": len(scores["crossfade"]),
        **{k: v for k, v in setting.items() if v is not None},
        "erode": model.codec.erode,
        "mel_distance_in_gap": mean,
    }
    if "guided" in mean and "replacement" in mean:
        summary["guided_beats_both"] = mean["guided"] < min(mean["crossfade"], mean["replacement"])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
