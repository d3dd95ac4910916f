"""Evaluate binomial piano-roll diffusion on the test split: harmonisation and infill, scored like FGG.

    python -m symbolic.evaluate_binomial --checkpoint checkpoints/binomial --data data.safetensors --num-samples 100

For each non-overlapping, untransposed 4-bar test slice the model gets the task's known bits
(harmonize: the melody; infill: all four channels in the first and last bar) and generates the rest. The
accompaniment it returns is scored with the FGG metrics against the slice's chords and its true
accompaniment: out-of-key rate, chord accuracy, chord similarity, IoU and onsets per sample. The true
accompaniment is scored the same way as a reference. Infill scores the whole slice, known bars included,
so its IoU is not comparable with harmonisation's.

``harmonize_long`` harmonises whole song openings of ``--long-bars`` bars the way ``musicprod harmonize``
does (4-bar windows, each inheriting two bars from the one before), from the first downbeat of each song
that starts that many regular bars, intros without melody included. The result is cut into 4-bar chunks and
scored like the slices, against the same chunks of the real accompaniment (``harmonize_long_truth``).
``--num-samples`` counts chunks there too.

``--untrained`` scores the checkpoint's network with its residual at zero instead: the exact denoiser of
notes scattered independently at the data's density, the floor a trained model has to beat.
"""

from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm

from musicprod_common.errors import InputError

from .binomial import (
    ACCOMPANIMENT,
    MELODY,
    build_binomial,
    load_binomial,
    sample_binomial,
    sample_binomial_long,
    task_mask,
)
from .data import BAR_STEPS, SLICE_BARS, SLICE_STEPS, DenseSong, PianoRollDataset, make_example
from .evaluation import (
    add_scores,
    evaluation_batches,
    evaluation_parser,
    evaluation_slices,
    metrics_table,
    write_report,
)

SLICE_TASKS = ("harmonize", "infill")
LONG_TASK = "harmonize_long"
TASKS = (*SLICE_TASKS, LONG_TASK)


@torch.no_grad()
def evaluate(
    model,
    dataset: PianoRollDataset,
    *,
    num_samples: int,
    batch_size: int,
    tasks=SLICE_TASKS,
    seed: int = 0,
    noise_known: bool = False,
    long_bars: int = 16,
    progress=None,
) -> dict:
    n = min(num_samples, len(dataset))
    if n < 1:
        raise InputError(
            "no test slices to evaluate; pass the file from `python -m symbolic.data` built on all of POP909"
        )
    sums: dict[str, float] = {}
    done = 0
    slice_tasks = [t for t in tasks if t in SLICE_TASKS]
    for first, batch in evaluation_batches(dataset, num_samples if slice_tasks else 0, batch_size):
        known = torch.cat([batch["x0"], batch["melody"]], dim=1)  # (B, 4, T, P) in the model's channel order
        rolls = {"ground_truth": batch["x0"]}
        for task in slice_tasks:
            out = sample_binomial(
                model,
                known=known,
                known_mask=task_mask(task, tuple(known.shape)),
                noise_known=noise_known,
                generator=torch.Generator().manual_seed(seed + first),
            )
            rolls[task] = out[:, list(ACCOMPANIMENT)].float().cpu()
        for name, roll in rolls.items():
            add_scores(sums, name, roll, batch)
        done += len(known)
        if progress is not None:
            progress(done, n)
    result = {k: v / done for k, v in sums.items()} if done else {}
    result.update(
        {"samples": done, "tasks": list(tasks), "num_timesteps": model.cfg.num_timesteps, "noise_known": noise_known}
    )
    if LONG_TASK in tasks:
        result.update(
            evaluate_long(
                model,
                dataset.songs,
                bars=long_bars,
                num_chunks=num_samples,
                seed=seed,
                noise_known=noise_known,
                progress=progress,
            )
        )
    return result


def opening_window(song: DenseSong, bars: int) -> int | None:
    """The first downbeat step that starts ``bars`` regular bars of ``song`` (None if there is none)."""
    downbeats = set(song.downbeats.tolist())
    for d in song.downbeats.tolist():
        if d + bars * BAR_STEPS > len(song.piano):
            return None
        if all(d + k * BAR_STEPS in downbeats for k in range(1, bars)):
            return d
    return None


@torch.no_grad()
def evaluate_long(
    model,
    songs: list[DenseSong],
    *,
    bars: int,
    num_chunks: int,
    seed: int = 0,
    noise_known: bool = False,
    progress=None,
) -> dict:
    """:data:`LONG_TASK` scores (keys ``harmonize_long/*``, ``harmonize_long_truth/*``, ``long_chunks``)."""
    if bars < SLICE_BARS or bars % SLICE_BARS:
        raise InputError(f"--long-bars {bars}: use a multiple of {SLICE_BARS} (e.g. 16)")
    per_song = bars // SLICE_BARS
    openings = [(song, d) for song in songs if (d := opening_window(song, bars)) is not None]
    if not openings:
        raise InputError(f"no song of the split has {bars} regular bars; lower --long-bars")
    picks = torch.linspace(0, len(openings) - 1, min(len(openings), -(-num_chunks // per_song))).round().long().tolist()
    sums: dict[str, float] = {}
    for n, i in enumerate(picks):
        song, start = openings[i]
        chunks = [make_example(song, start + k * SLICE_STEPS) for k in range(per_song)]
        batch = {k: torch.stack([c[k] for c in chunks]) for k in chunks[0]}
        known = torch.zeros(4, bars * BAR_STEPS, model.cfg.pitches)
        known[list(MELODY)] = torch.cat(list(batch["melody"]), dim=1)
        mask = task_mask("harmonize", (1, *known.shape))[0]
        out = sample_binomial_long(
            model, known, mask, noise_known=noise_known, generator=torch.Generator().manual_seed(seed + i)
        )
        roll = torch.stack(out[list(ACCOMPANIMENT)].split(SLICE_STEPS, dim=1))
        add_scores(sums, LONG_TASK, roll, batch)
        add_scores(sums, LONG_TASK + "_truth", batch["x0"], batch)
        if progress is not None:
            progress(n + 1, len(picks))
    chunks = len(picks) * per_song
    return {
        **{k: v / chunks for k, v in sums.items()},
        "long_chunks": chunks,
        "long_songs": len(picks),
        "long_bars": bars,
    }


def markdown(result: dict) -> str:
    names = [t for t in result["tasks"] if t in SLICE_TASKS] + (["ground_truth"] if result["samples"] else [])
    names += [LONG_TASK, LONG_TASK + "_truth"] if LONG_TASK in result["tasks"] else []
    rows = metrics_table(result, [(name, name) for name in names])
    split = result.get("split", "test")
    rows.append(f"\n{result['samples']} {split}-split 4-bar slices, {result['num_timesteps']} reverse steps each.")
    if LONG_TASK in result["tasks"]:
        rows.append(
            f"{LONG_TASK}: the first {result['long_bars']} regular bars of {result['long_songs']} {split}-split songs, "
            f"scored as {result['long_chunks']} 4-bar chunks."
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = evaluation_parser(
        "python -m symbolic.evaluate_binomial",
        __doc__.splitlines()[0],
        model="binomial",
        num_samples=100,
        batch_size=25,
    )
    parser.add_argument("--tasks", default=",".join(SLICE_TASKS), help="comma-separated: " + ", ".join(TASKS))
    parser.add_argument(
        "--long-bars", type=int, default=16, help=f"song opening length for {LONG_TASK} (a multiple of 4)"
    )
    parser.add_argument(
        "--noise-known",
        action="store_true",
        help="noise the known bits to each level (RePaint-style) instead of showing them clean",
    )
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="baseline: the checkpoint's config with the residual at zero (independent notes at density r)",
    )
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

        with tqdm(desc="evaluate", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                if bar.total != total:  # the slice tasks count slices, the long task songs
                    bar.reset(total)
                bar.update(done - bar.n)

            result = evaluate(
                model,
                dataset,
                num_samples=args.num_samples,
                batch_size=args.batch_size,
                tasks=tasks,
                seed=args.seed,
                noise_known=args.noise_known,
                long_bars=args.long_bars,
                progress=progress,
            )
    except InputError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    write_report(result, args, markdown, checkpoint=str(args.checkpoint) + (" (untrained)" if args.untrained else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
