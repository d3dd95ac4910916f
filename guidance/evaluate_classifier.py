"""Style accuracy of a trained PaSST classifier on a folder of rendered clips (held-out songs).

    python -m guidance.evaluate_classifier --model runs/classifier/final --data DIR [--out metrics.json]

``DIR`` is rendered like the training folder (``manifest.jsonl`` with ``style``/``style_index``), from
test-split songs. Reports n, accuracy, per-class accuracy and the confusion matrix (rows: true style).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from musicprod_common.errors import InputError

from .passt import PaSST


@torch.no_grad()
def evaluate_folder(model: PaSST, folder: str | Path, *, batch_size: int = 32, num_workers: int = 0) -> dict[str, Any]:
    """Accuracy of ``model`` on every clip in ``folder``; the model runs on its own device, in eval mode."""
    from .train_classifier import StyleClips

    dataset = StyleClips(folder, model.cfg.class_names)
    if dataset.sample_rate != model.cfg.input_sample_rate:
        model.cfg.input_sample_rate = dataset.sample_rate  # the front end resamples whatever rate it is told
    model.eval()
    device = next(model.parameters()).device
    k = model.cfg.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        logits = model.classify(batch["audio"].to(device)).float().cpu()
        for t, p in zip(batch["style"].tolist(), logits.argmax(-1).tolist()):
            confusion[t, p] += 1
    n = int(confusion.sum())
    names = list(model.cfg.class_names) or [str(i) for i in range(k)]
    per_class = {names[i]: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None) for i in range(k)}
    return {"n": n, "accuracy": float(confusion.diag().sum() / max(n, 1)), "per_class": per_class,
            "class_names": names, "confusion": confusion.tolist()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guidance.evaluate_classifier", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="classifier folder (config.json + model.safetensors)")
    p.add_argument("--data", required=True, help="folder of held-out clips with manifest.jsonl")
    p.add_argument("--out", help="write the metrics JSON here")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--cpu", action="store_true")
    args = p.parse_args(argv)
    from .passt import from_pretrained

    try:
        model = from_pretrained(args.model)
        device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
        metrics = evaluate_folder(model.to(device), args.data, batch_size=args.batch_size, num_workers=args.num_workers)
    except InputError as err:
        sys.stderr.write(f"evaluate_classifier: error: {err}\n")
        return 2
    if args.out:
        from musicprod_common.files import write_json

        write_json(args.out, metrics)
    print(f"n={metrics['n']} accuracy={metrics['accuracy']:.4f}")
    print(json.dumps(metrics["per_class"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
