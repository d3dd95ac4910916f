"""A 20-step tiny U-Net training run on the CPU through the command line and the shared loop."""

from __future__ import annotations

import json
import math

import soundfile as sf
import torch

from guidance.objective import v_objective_loss
from musicprod_common.datasets import AudioFolderSegments
from musicprod_common.errors import run_main
from waveform_diffusion import WaveformUNet, unet_preset
from waveform_diffusion.train import main


def _write_clips(folder, count: int = 4, seconds: float = 0.5) -> None:
    """Stereo sine chords: simple, structured audio a tiny model can start to fit in 20 steps."""
    folder.mkdir()
    t = torch.arange(int(44100 * seconds)) / 44100
    for i in range(count):
        left = torch.sin(2 * math.pi * (110 + 55 * i) * t)
        right = 0.5 * torch.sin(2 * math.pi * (165 + 40 * i) * t)
        sf.write(folder / f"clip{i}.flac", (0.4 * torch.stack([left, right], 1)).numpy(), 44100)


def _eval_loss(model: torch.nn.Module, data: AudioFolderSegments) -> float:
    x0 = torch.stack([data[i % len(data)]["audio"] for i in range(16)])
    with torch.no_grad():
        return float(v_objective_loss(model, x0, torch.arange(10_000, 10_016)))


def test_twenty_steps_learn_and_export(tmp_path):
    _write_clips(tmp_path / "clips")
    out = tmp_path / "run"
    main(
        [
            "--preset",
            "tiny",
            "--data",
            str(tmp_path / "clips"),
            "--out",
            str(out),
            "--steps",
            "20",
            "--batch-size",
            "4",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "2",
            "--num-workers",
            "0",
            "--cpu",
            "--no-progress",
        ]
    )
    losses = [json.loads(line)["loss"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)

    cfg = unet_preset("tiny")
    data = AudioFolderSegments(tmp_path / "clips", cfg.window / cfg.sample_rate)
    trained = WaveformUNet.from_pretrained(out / "final")
    assert trained.config == cfg
    fresh = WaveformUNet(cfg)
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))
    assert _eval_loss(trained, data) < 0.95 * _eval_loss(fresh, data)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    code = run_main(
        main,
        ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--steps", "2"],
        prog="waveform_diffusion.train",
    )
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
