"""The shared training loop: process-count invariance, exact resume after kill -9, safe state files."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from musicprod_common.checkpoint import load_training_state
from musicprod_common.errors import InputError
from musicprod_common.training import (
    StepBatchSampler,
    TrainConfig,
    cosine_with_warmup,
    draw_keys,
    example_randn,
    global_indices,
)

TOY = Path(__file__).with_name("toy_training.py")
REPO = Path(__file__).resolve().parents[2]


def _run(
    args: list[str], out: Path, env: dict | None = None, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + [str(TOY), "--out", str(out), *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=300)


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "losses.jsonl").read_text().splitlines()]


def test_global_batches_are_split_across_processes_without_overlap():
    cfg = TrainConfig(steps=3, batch_size=8, grad_accum=2)
    per_rank = [list(StepBatchSampler(37, cfg, 0, rank, 2)) for rank in range(2)]
    for step in range(3):
        expected = list(zip(global_indices(step, 8, 37, cfg.seed), draw_keys(step, 8, cfg.seed)))
        got = per_rank[0][2 * step] + per_rank[1][2 * step] + per_rank[0][2 * step + 1] + per_rank[1][2 * step + 1]
        assert got == expected
    assert sorted(global_indices(0, 37, 37, 0)) == list(range(37))  # one epoch is a permutation


def test_an_example_drawn_again_gets_new_noise():
    """Keyed by the example's index, every epoch would repeat each example's t and noise: keyed by the draw, it does
    not."""
    cfg = TrainConfig(steps=4, batch_size=5)
    keys_of: dict[int, list[int]] = {}
    for batch in StepBatchSampler(5, cfg, 0, 0, 1):  # one epoch per step
        for index, key in batch:
            keys_of.setdefault(index, []).append(key)
    assert all(len(set(keys)) == 4 for keys in keys_of.values())
    noise = [example_randn(torch.tensor(keys_of[0][:2]), (3,))[i] for i in range(2)]
    assert not torch.equal(noise[0], noise[1])


def test_cosine_schedule_warms_up_then_decays_to_zero():
    assert cosine_with_warmup(0, 10, 100) == pytest.approx(0.1)
    assert cosine_with_warmup(9, 10, 100) == pytest.approx(1.0)
    assert cosine_with_warmup(100, 10, 100) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
def test_two_processes_match_one_process_with_double_batch(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    assert _run(["--batch-size", "8"], single).returncode == 0
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    result = _run(["--batch-size", "8"], double, launcher=launcher)
    assert result.returncode == 0, result.stderr[-2000:]
    a, b = (load_training_state(p / "state.pt") for p in (single, double))
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=1e-5, atol=1e-6)
    assert _losses(single) == pytest.approx(_losses(double), rel=1e-5)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    args = ["--steps", "30", "--checkpoint-every", "5"]
    assert _run(args, reference).returncode == 0

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOY_STEP_DELAY": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, str(TOY), "--out", str(killed), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        log = killed / "losses.jsonl"
        if (killed / "state.pt").exists() and log.exists() and len(log.read_text().splitlines()) >= 12:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = load_training_state(killed / "state.pt")["step"]
    assert 5 <= interrupted_at < 30

    assert _run(args, killed).returncode == 0
    assert _losses(killed) == _losses(reference)  # bit-identical, not merely close


def test_pickle_with_a_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "state.pt"
    with path.open("wb") as f:
        pickle.dump({"step": Payload()}, f)
    with pytest.raises(InputError, match="refused"):
        load_training_state(path)
    assert not marker.exists()


def test_truncated_state_names_the_file(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"step": 3, "w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=str(path)):
        load_training_state(path)


def test_train_args_round_trip_with_script_defaults():
    """``add_train_args`` exposes every TrainConfig field with the script's defaults; flags override them."""
    import argparse

    from musicprod_common.training import add_train_args, train_config_from_args

    defaults = TrainConfig(steps=123, batch_size=16, lr=3e-4, num_workers=2)
    parser = argparse.ArgumentParser()
    add_train_args(parser, defaults)
    assert train_config_from_args(parser.parse_args([])) == defaults
    cfg = train_config_from_args(
        parser.parse_args(
            [
                "--steps",
                "1000000",
                "--max-minutes",
                "8",
                "--mixed-precision",
                "bf16",
                "--grad-accum",
                "2",
                "--cpu",
                "--betas",
                "0.8",
                "0.99",
                "--export-dtype",
                "float32",
            ]
        )
    )
    assert (cfg.steps, cfg.max_minutes, cfg.mixed_precision, cfg.grad_accum, cfg.cpu, cfg.betas, cfg.export_dtype) == (
        1000000,
        8.0,
        "bf16",
        2,
        True,
        (0.8, 0.99),
        "float32",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--export-dtype", "int8"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixed-precision", "auto"])  # only where the script's default is "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["--steps", "auto"])


def _linear_run(tmp_path, cfg: TrainConfig, on_step=None):
    """Train a 4×4 linear map on a ramp with the shared loop; ``on_step(n)`` runs inside the n-th loss call."""
    from musicprod_common.training import train

    class Ramp(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {"x": torch.full((4,), float(index))}

    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        if on_step is not None:
            on_step(calls["n"])
        return model(batch["x"]).square().mean(), {}

    @dataclasses.dataclass
    class LinearConfig:
        width: int = 4

    torch.manual_seed(0)
    return train(torch.nn.Linear(4, 4), loss_fn, Ramp(), cfg, tmp_path, model_config=LinearConfig(), progress=False)


@pytest.mark.parametrize("export_dtype", ["float16", "float32"])
def test_final_weights_are_exported_in_the_configured_dtype(tmp_path, export_dtype):
    from safetensors.torch import load_file

    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, cpu=True, export_dtype=export_dtype)
    _linear_run(tmp_path, cfg)
    weights = load_file(tmp_path / "final" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {getattr(torch, export_dtype)}


def test_sigterm_checkpoints_exports_and_stops(tmp_path):
    """A preempted run (SIGTERM) stops after the current step with its state and final weights written."""
    cfg = TrainConfig(steps=50, batch_size=4, warmup_steps=1, cpu=True, checkpoint_every=1000)
    summary = _linear_run(tmp_path, cfg, on_step=lambda n: n == 3 and os.kill(os.getpid(), signal.SIGTERM))
    assert summary["steps"] == 3
    state = load_training_state(tmp_path / "state.pt")
    assert state["step"] == 3 and state["elapsed_seconds"] > 0
    assert (tmp_path / "final" / "model.safetensors").is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the loop's only while it runs


def test_max_minutes_is_the_budget_of_the_whole_run_across_resumes(tmp_path):
    """The time used before a resume counts: a run whose state has used its budget stops after one step."""
    cfg = TrainConfig(steps=50, batch_size=4, warmup_steps=1, cpu=True, checkpoint_every=1000, max_minutes=10.0)
    _linear_run(tmp_path, cfg, on_step=lambda n: n == 2 and os.kill(os.getpid(), signal.SIGTERM))
    state = load_training_state(tmp_path / "state.pt")
    assert state["step"] == 2
    state["elapsed_seconds"] = 10.0 * 60  # as if the first part had run for the whole budget
    torch.save(state, tmp_path / "state.pt")
    assert _linear_run(tmp_path, cfg)["steps"] == 3
