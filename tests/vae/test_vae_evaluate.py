"""The evaluation metrics and the equal-budget mel + Griffin-Lim baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from musicprod_common.checkpoint import save_pretrained
from vae import SpectrogramVAE
from vae.evaluate import BASELINE_SPLITS, MelGriffinLim, Metrics, evaluate, main
from vae.model import COMPRESSION_RATIO, SAMPLE_RATE


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    t = torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    tone = torch.sin(2 * torch.pi * 220 * t) * torch.exp(-4 * t) * 0.3
    noise = torch.randn(2, 2, t.numel(), generator=torch.Generator().manual_seed(0)) * 0.01
    return torch.stack([tone, 0.5 * tone])[None] + noise  # (2, 2, T)


def test_metrics_on_known_pairs(clips):
    m = Metrics()
    assert torch.allclose(m.log10_mel_l1(clips, clips), torch.zeros(2))
    assert (m.log10_mel_l1(clips, 0.5 * clips) > 0.2).all()
    assert (m.si_sdr(clips, 3.0 * clips) > 60).all()  # scale-invariant
    assert (m.si_sdr(clips, clips.flip(-1)) < 5).all()
    assert torch.allclose(m.level_db(clips, 2.0 * clips), torch.full((2,), 20 * np.log10(2.0)), atol=1e-3)


@pytest.mark.parametrize("hop,mels", BASELINE_SPLITS)
def test_baseline_spends_the_latent_budget(hop, mels):
    assert MelGriffinLim(hop, mels).values_per_second == pytest.approx(2 * SAMPLE_RATE / COMPRESSION_RATIO)


def test_baseline_reconstructs_roughly(clips):
    out = MelGriffinLim(1024, 8, n_iter=8)(clips)
    assert out.shape == clips.shape and torch.isfinite(out).all()
    metrics = Metrics()
    assert (metrics.log10_mel_l1(clips, out) < metrics.log10_mel_l1(clips, torch.zeros_like(clips))).all()


def test_evaluate_cli_writes_json(clips, tmp_path, capsys):
    torch.manual_seed(0)
    model = SpectrogramVAE.from_preset("tiny").eval()
    save_pretrained(model, model.config, tmp_path / "ckpt")
    (tmp_path / "data").mkdir()
    for i, clip in enumerate(clips):
        sf.write(str(tmp_path / "data" / f"{i}.wav"), clip.T.numpy(), SAMPLE_RATE, subtype="FLOAT")
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "ckpt"),
                "--data",
                str(tmp_path / "data"),
                "--seconds",
                "0.5",
                "--gl-iters",
                "4",
                "--out",
                str(tmp_path / "eval.json"),
                "--device",
                "cpu",
                "--plot",
                str(tmp_path / "first.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "first.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["clips"] == 2
    assert set(result["mean"]) == {"vae"} | {f"mel_gl_hop{h}_{m}mels" for h, m in BASELINE_SPLITS}
    assert result["best_baseline"] in result["mean"]
    assert -1.0 <= result["mean"]["vae"]["chroma"] <= 1.0
    assert "log10-mel L1 / best baseline" in capsys.readouterr().out
    assert result["log10_mel_l1_ratio_vs_best_baseline"] == pytest.approx(
        result["mean"]["vae"]["log10_mel_l1"] / result["mean"][result["best_baseline"]]["log10_mel_l1"]
    )
    direct = evaluate(model, clips, baselines=False)["mean"]["vae"]["log10_mel_l1"]
    assert direct == pytest.approx(result["mean"]["vae"]["log10_mel_l1"], rel=1e-4)


def test_the_shipped_eval_json_uses_the_metric_names_the_evaluation_writes(clips):
    shipped = json.loads((Path(__file__).resolve().parents[2] / "checkpoints" / "vae" / "eval.json").read_text())
    names = set(Metrics().all(clips, clips)) | {"level_db_quiet"}
    assert set(shipped["mean"]["vae"]) == names and set(shipped["per_clip"]["vae"]) == names
    best = shipped["mean"][shipped["best_baseline"]]
    assert shipped["log10_mel_l1_ratio_vs_best_baseline"] == pytest.approx(
        shipped["mean"]["vae"]["log10_mel_l1"] / best["log10_mel_l1"]
    )
