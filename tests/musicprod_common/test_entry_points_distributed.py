"""Every training entry point runs as 2 CPU processes under torchrun (gloo) and exports ``final/``.

``accelerate launch --cpu --num_processes 2`` needs MPI on a plain machine, so torchrun is the multi-CPU
launcher here; the scripts' ``Accelerator(cpu=True)`` then runs ``MULTI_CPU``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from musicprod_common.checkpoint import save_pretrained
from musicprod_common.styles import STYLE_NAMES

REPO = Path(__file__).resolve().parents[2]
COMMON = ["--steps", "2", "--batch-size", "4", "--cpu", "--no-progress"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pop909_root):
    root = tmp_path_factory.mktemp("entry_points")
    clips = root / "clips"
    clips.mkdir()
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(4):
        name = f"c{i}.flac"
        sf.write(clips / name, (0.1 * torch.randn(2 * 44100, 2, generator=g)).numpy(), 44100)
        rows.append({"file": name, "style": STYLE_NAMES[i % 2], "style_index": i % 2})
    (clips / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    from symbolic.data import build_dataset_file
    from vae import SpectrogramVAE

    build_dataset_file(pop909_root, root / "symbolic.safetensors", limit=2)
    vae = SpectrogramVAE.from_preset("tiny")
    save_pretrained(vae, vae.config, root / "vae")
    return root


CASES = {
    "vae.train": lambda d: ["--preset", "tiny", "--data", str(d / "clips"), "--num-workers", "0"],
    "latent_diffusion.train": lambda d: ["--preset", "tiny", "--vae", str(d / "vae"), "--data", str(d / "clips")],
    "waveform_diffusion.train": lambda d: ["--preset", "tiny", "--data", str(d / "clips")],
    "guidance.train_classifier": lambda d: ["--preset", "tiny", "--data", str(d / "clips"), "--num-workers", "0"],
    "symbolic.train_fgg": lambda d: [
        "--preset",
        "tiny",
        "--data",
        str(d / "symbolic.safetensors"),
        "--num-workers",
        "0",
    ],
    "symbolic.train_binomial": lambda d: [
        "--preset",
        "tiny",
        "--data",
        str(d / "symbolic.safetensors"),
        "--num-workers",
        "0",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(CASES))
def test_runs_as_two_processes_under_torchrun(module, inputs, tmp_path):
    out = tmp_path / "run"
    port = str(29600 + sorted(CASES).index(module))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        port,
        "-m",
        module,
        *CASES[module](inputs),
        "--out",
        str(out),
        *COMMON,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "final" / "model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert steps[-1] == 2
