"""Evaluate binomial piano-roll diffusion on the test split: harmonisation and infill, scored like FGG.

    python -m symbolic.evaluate_binomial --checkpoint checkpoints/binomial --data data.safetensors --num-samples 100

For each non-overlapping, untransposed 4-bar test slice the model gets the task's known bits
(harmonize: the melody; infill: all four channels in the first and last bar) and generates the rest. The
accompaniment it returns is scored with the FGG metrics against the slice's chords and its true
accompaniment: out-of-key rate, chord accuracy, chord similarity, IoU and onsets per sample. The true
accompaniment is scored the same way as a reference. Infill scores the whole slice, known bars included,
so its IoU is not comparable with harmonisation's.

``--untrained`` scores the checkpoint's network with its residual at zero instead: the exact denoiser of
notes scattered independently at the data's density, the floor a trained model has to beat.
"""
from __future__ import annotations

import sys

import torch

from musicprod_common.errors import InputError

from .binomial import ACCOMPANIMENT, build_binomial, load_binomial, sample_binomial, task_mask
from .data import PianoRollDataset
from .evaluation import add_scores, evaluation_batches, evaluation_parser, evaluation_slices, metrics_table, write_report

TASKS = ("harmonize", "infill")


@torch.no_grad()
def evaluate(model, dataset: PianoRollDataset, *, num_samples: int, batch_size: int, tasks=TASKS, seed: int = 0,
             noise_known: bool = False, progress=None) -> dict:
    n = min(num_samples, len(dataset))
    if n < 1:
        raise InputError("no test slices to evaluate; pass the file from `python -m symbolic.data` built on all of POP909")
    sums: dict[str, float] = {}
    done = 0
    for first, batch in evaluation_batches(dataset, num_samples, batch_size):
        known = torch.cat([batch["x0"], batch["melody"]], dim=1)  # (B, 4, T, P) in the model's channel order
        rolls = {"ground_truth": batch["x0"]}
        for task in tasks:
            out = sample_binomial(model, known=known, known_mask=task_mask(task, tuple(known.shape)), noise_known=noise_known,
                                  generator=torch.Generator().manual_seed(seed + first))
            rolls[task] = out[:, list(ACCOMPANIMENT)].float().cpu()
        for name, roll in rolls.items():
            add_scores(sums, name, roll, batch)
        done += len(known)
        if progress is not None:
            progress(done, n)
    result = {k: v / done for k, v in sums.items()}
    result.update({"samples": done, "tasks": list(tasks), "num_timesteps": model.cfg.num_timesteps, "noise_known": noise_known})
    return result


def markdown(result: dict) -> str:
    rows = metrics_table(result, [(name, name) for name in [*result["tasks"], "ground_truth"]])
    rows.append(f"\n{result['samples']} {result.get('split', 'test')}-split 4-bar slices, {result['num_timesteps']} reverse steps each.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = evaluation_parser("python -m symbolic.evaluate_binomial", __doc__.splitlines()[0], model="binomial",
                               num_samples=100, batch_size=25)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    parser.add_argument("--noise-known", action="store_true",
                        help="noise the known bits to each level (RePaint-style) instead of showing them clean")
    parser.add_argument("--untrained", action="store_true",
                        help="baseline: the checkpoint's config with the residual at zero (independent notes at density r)")
    args = parser.parse_args(argv)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    try:
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise InputError(f"--tasks {args.tasks!r}: choose from {', '.join(TASKS)}")
        model = load_binomial(args.checkpoint).eval()
        if args.untrained:
            model = build_binomial(model.cfg).eval()  # its output layer starts at zero
        dataset = evaluation_slices(args)
        from tqdm.auto import tqdm

        with tqdm(total=min(args.num_samples, len(dataset)), desc="evaluate", unit="slice", file=sys.stderr) as bar:
            result = evaluate(model, dataset, num_samples=args.num_samples, batch_size=args.batch_size, tasks=tasks,
                              seed=args.seed, noise_known=args.noise_known, progress=lambda done, total: bar.update(done - bar.n))
    except InputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    write_report(result, args, markdown, checkpoint=str(args.checkpoint) + (" (untrained)" if args.untrained else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
