"""Style accuracy of a trained PaSST classifier on a folder of rendered clips (held-out songs).

    python -m guidance.evaluate_classifier --model runs/classifier/final --data DIR [--out metrics.json]

``DIR`` is rendered like the training folder (``manifest.jsonl`` with ``style``/``style_index``), from
test-split songs. Reports n, accuracy, per-class accuracy and the confusion matrix (rows: true style).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from musicprod_common.errors import InputError
from musicprod_common.files import write_json

from .passt import from_pretrained
from .train_classifier import evaluate_folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guidance.evaluate_classifier", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="classifier folder (config.json + model.safetensors)")
    p.add_argument("--data", required=True, help="folder of held-out clips with manifest.jsonl")
    p.add_argument("--out", help="write the metrics JSON here")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--cpu", action="store_true")
    args = p.parse_args(argv)

    try:
        model = from_pretrained(args.model)
        device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
        metrics = evaluate_folder(model.to(device), args.data, batch_size=args.batch_size, num_workers=args.num_workers)
    except InputError as err:
        sys.stderr.write(f"evaluate_classifier: error: {err}\n")
        return 2
    if args.out:
        write_json(args.out, metrics)
    print(f"n={metrics['n']} accuracy={metrics['accuracy']:.4f}")
    print(json.dumps(metrics["per_class"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
