"""A tiny training job for the shared loop's tests: launched as a script, alone or under torchrun."""

from __future__ import annotations

import argparse
import os
import time

import torch

from musicprod_common.training import TrainConfig, example_randn, train


class ToyData(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 37

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(index)
        return {"audio": torch.randn(2, 16, generator=g)}


def toy_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]):
    x = batch["audio"]
    noisy = x + 0.1 * example_randn(batch["key"], tuple(x.shape[1:]), device=x.device)
    delay = float(os.environ.get("TOY_STEP_DELAY", "0"))
    if delay:
        time.sleep(delay)  # lets a test kill the run mid-way
    return torch.mean((model(noisy) - x) ** 2), {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16))
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=1e-2,
        warmup_steps=2,
        ema_decay=0.9,
        checkpoint_every=args.checkpoint_every,
        cpu=True,
        log_every=1,
    )
    train(model, toy_loss, ToyData(), cfg, args.out, progress=False)


if __name__ == "__main__":
    main()
