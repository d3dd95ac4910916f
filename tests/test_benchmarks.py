"""The measurement scripts in ``benchmarks/`` run end to end (wiring only: untrained tiny models, a few steps)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "guidance"))
from test_passt_guidance import tiny_passt  # noqa: E402


@pytest.mark.slow
def test_style_transfer_cli_end_to_end_with_untrained_tiny_models(tmp_path, pop909_root):
    """Wiring only: renders test-split clips, loads VAE + DiT + classifier from folders, writes the report."""
    import json

    from style_transfer import main

    from latent_diffusion.config import dit_preset
    from latent_diffusion.dit import build_dit
    from musicprod_common.checkpoint import save_pretrained
    from vae.model import SpectrogramVAE, get_config

    torch.manual_seed(0)
    vae = SpectrogramVAE(get_config("tiny"))
    save_pretrained(vae, vae.config, tmp_path / "vae")
    dit_cfg = dit_preset("tiny", in_channels=vae.config.latent_channels, frames=256, hop_samples=vae.config.latent_hop)
    save_pretrained(build_dit(dit_cfg), dit_cfg, tmp_path / "dit")
    classifier = tiny_passt()
    save_pretrained(classifier, classifier.cfg, tmp_path / "classifier")
    out = tmp_path / "report.json"
    rc = main(
        [
            "--pop909",
            str(pop909_root),
            "--classifier",
            str(tmp_path / "classifier"),
            "--checkpoints",
            str(tmp_path),
            "--n",
            "1",
            "--steps",
            "2",
            "--chroma-weight",
            "10",
            "--eta",
            "0",
            "--guidance-step",
            "x0",
            "--out",
            str(out),
            "--plot",
            str(tmp_path / "chroma.png"),
        ]
    )
    assert rc == 0
    assert (tmp_path / "chroma.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(out.read_text())
    assert (
        report["n"] == 1
        and report["eta"] == 0.0
        and report["guidance_step"] == "x0"
        and report["source"]["chroma_corr"] == pytest.approx(1.0)
    )
    for key in ("result", "source", "oracle", "codec_ceiling"):
        assert 0.0 <= report[key]["to_b"] <= 1.0 and -1.0 <= report[key]["chroma_corr"] <= 1.0
    per_clip = report["per_clip"]  # the clip-by-clip rows agree with the summary
    assert len(per_clip) == 1 and float(per_clip[0]["to_b"]) == report["result"]["to_b"]
    assert per_clip[0]["chroma_corr"] == pytest.approx(report["result"]["chroma_corr"], abs=1e-4)


def test_no_beat_benchmark_runs_and_rejects_unknown_kinds(tmp_path, capsys):
    import json

    from no_beat import main

    out = tmp_path / "rows.jsonl"
    assert main(["--seconds", "10", "--seeds", "1", "--kinds", "white,rain", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["white", "rain"] and all(r["seed"] == 8 for r in rows)
    assert "beat found in" in capsys.readouterr().out
    assert main(["--kinds", "drums"]) == 2
    assert "drums" in capsys.readouterr().err


def test_transitions_on_grid_counts_b_beats_near_a_beats():
    import numpy as np
    from transitions import main, on_grid

    a = np.arange(0.0, 20.0, 0.5)
    same = on_grid(a, a, lambda t: t, 5.0, 15.0)
    off_beat = on_grid(a, a + 0.25, lambda t: t, 5.0, 15.0)
    double_time = on_grid(a, np.arange(0.0, 20.0, 0.25), lambda t: t, 5.0, 15.0)  # A's halfway points count
    slightly_late = on_grid(a, a + 0.08, lambda t: t, 5.0, 15.0)  # within 17.5 % of a 0.5 s beat
    assert (same, off_beat, double_time, slightly_late) == (1.0, 0.0, 1.0, 1.0)
    assert np.isnan(on_grid(a, a, lambda t: t + 100.0, 5.0, 15.0))  # none of B inside the span
    with pytest.raises(SystemExit) as exit_info:
        main(["--plan-only", "--folder", "."])
    assert exit_info.value.code == 2


def test_transitions_short_term_loudness_is_not_gated():
    """A 1 kHz sine in both channels measures its level in dBFS (K-weighting is about 0 dB there and BS.1770 adds
    −0.691); a window half silent measures 3.01 LU less, where a gated meter would drop the silent half."""
    import numpy as np
    from transitions import loudness_step, short_term_loudness

    sr = 44100
    t = np.arange(3 * sr) / sr
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t)
    full = short_term_loudness(np.stack([tone, tone], 1), sr)
    assert full == pytest.approx(-20.0, abs=0.1)
    half = np.where(t < 1.5, 0.0, tone)
    assert short_term_loudness(np.stack([half, half], 1), sr) == pytest.approx(full - 10 * np.log10(2), abs=0.02)
    # One second of silence between tones: the 3 s windows straddling it step by 10 log10(3/2) LU, not by 0.
    x = np.concatenate([tone, tone, np.zeros(sr), tone, tone])
    step = loudness_step(torch.from_numpy(np.stack([x, x])), sr, 0.0, len(x) / sr)
    assert step == pytest.approx(10 * np.log10(3 / 2), abs=0.05)
