"""What the FGG and binomial evaluations share: the test slices they score, how the metrics are summed,
their common flags and the report they write.

Both score non-overlapping, untransposed 4-bar slices spread evenly over a split, so two runs with the
same ``--num-samples`` see the same slices.
"""

from __future__ import annotations

import argparse
from typing import Callable, Iterator

import torch

from musicprod_common.files import write_json

from .data import PianoRollDataset
from .metrics import chord_accuracy, chord_similarity, out_of_key_rate, roll_iou


def evaluation_parser(
    prog: str, description: str, *, model: str, num_samples: int, batch_size: int
) -> argparse.ArgumentParser:
    """The flags every evaluation takes: checkpoint, data, split, sample count, batch size, seed, threads, output."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--checkpoint", required=True, help=f"trained {model} folder (e.g. checkpoints/{model})")
    parser.add_argument("--data", required=True, help="file from `python -m symbolic.data`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num-samples", type=int, default=num_samples)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    return parser


def evaluation_slices(args: argparse.Namespace) -> PianoRollDataset:
    """The split's non-overlapping, untransposed 4-bar slices (also applies ``--threads``)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return PianoRollDataset(args.data, args.split, transpose=False, hop_bars=4)


def evaluation_batches(
    dataset: PianoRollDataset, num_samples: int, batch_size: int
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """``(index of the first slice, stacked batch)`` over ``num_samples`` slices spread evenly over ``dataset``."""
    n = min(num_samples, len(dataset))
    picks = torch.linspace(0, len(dataset) - 1, n).round().long().tolist()
    for first in range(0, n, batch_size):
        items = [dataset[i] for i in picks[first : first + batch_size]]
        yield first, {k: torch.stack([it[k] for it in items]) for k in items[0]}


def score_slices(roll: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """All the metrics above for an accompaniment roll ``(B, 2, T, P)`` of a batch of dataset slices."""
    return {
        "out_of_key": out_of_key_rate(roll, batch["allowed"].bool()),
        "chord_accuracy": chord_accuracy(roll, batch["root"], batch["minor"]),
        "chord_similarity": chord_similarity(roll, batch["chroma"]),
        "iou": roll_iou(roll, batch["x0"]),
        "notes_per_sample": float((roll[:, 0] > 0.5).sum()) / roll.shape[0],
    }


def metrics_table(result: dict, runs: list[tuple[str, str]]) -> list[str]:
    """Markdown rows of :func:`score_slices` means stored as ``result["RUN/metric"]``, one row per ``(RUN, label)``."""
    rows = [
        "| run | out-of-key rate | chord accuracy | chord similarity | IoU vs truth | onsets/sample |",
        "|---|---|---|---|---|---|",
    ]
    for run, label in runs:
        rows.append(
            f"| {label} | {100 * result[f'{run}/out_of_key']:.2f}% | {result[f'{run}/chord_accuracy']:.3f} | "
            f"{result[f'{run}/chord_similarity']:.3f} | {result[f'{run}/iou']:.3f} | "
            f"{result[f'{run}/notes_per_sample']:.1f} |"
        )
    return rows


def add_scores(sums: dict[str, float], run: str, roll: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
    """Add :func:`score_slices` of ``roll``, weighted by its batch size, to ``sums["RUN/metric"]``."""
    for key, value in score_slices(roll, batch).items():
        sums[f"{run}/{key}"] = sums.get(f"{run}/{key}", 0.0) + value * roll.shape[0]


def write_report(
    result: dict, args: argparse.Namespace, markdown: Callable[[dict], str], *, checkpoint: str | None = None
) -> None:
    """Record the checkpoint and split in ``result``, write it to ``--out`` if given, print ``markdown(result)``."""
    result["checkpoint"], result["split"] = checkpoint or str(args.checkpoint), args.split
    if args.out:
        write_json(args.out, result)
    print(markdown(result))
