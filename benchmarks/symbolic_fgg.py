"""FGG benchmark for BENCHMARKS.md: test-split metrics with and without the fine-grained correction.

    python benchmarks/symbolic_fgg.py --checkpoint checkpoints/fgg --data symbolic_pop909.safetensors [--num-samples
    500]

Runs :mod:`symbolic.evaluate` for chord+melody conditioning (the default) and, with ``--rhythm``, adds the
rhythm condition; prints a markdown table with the machine, and writes the JSON next to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from symbolic.data import PianoRollDataset
from symbolic.evaluate import evaluate, markdown
from symbolic.fgg import load_fgg
from symbolic.generate import SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/fgg")
    parser.add_argument("--data", required=True)
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rhythm", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="benchmarks/symbolic_fgg.json")
    args = parser.parse_args()
    model = load_fgg(args.checkpoint).to(args.device)
    dataset = PianoRollDataset(args.data, "test", transpose=False, hop_bars=4)
    result = evaluate(
        model,
        dataset,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        sampling=SamplingConfig(steps=args.steps),
        use_rhythm=args.rhythm,
    )
    machine = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    result["machine"] = machine
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"### FGG on the POP909 test split ({machine})\n")
    print(markdown(result))
    print("\ntargets:", json.dumps(result["targets_met"]))


if __name__ == "__main__":
    main()
