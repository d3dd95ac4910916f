"""A 20-step CPU training run of the tiny PaSST classifier on a synthetic clip folder, then evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import soundfile as sf
import torch

from guidance.evaluate_classifier import evaluate_folder
from guidance.evaluate_classifier import main as evaluate_main
from guidance.passt import GM_FAMILIES, from_pretrained
from guidance.train_classifier import Augment, StyleClips, family_targets, main, random_crop_gain
from musicprod_common.styles import STYLE_NAMES, STYLES

SR = 44100


def make_clip_folder(folder, n_per_style=4, styles=STYLE_NAMES[:3], seconds=1.5, seed=0):
    """Clips whose 'style' is a tone at a style-specific pitch, plus noise; a manifest like the renderer's."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(seconds * SR)) / SR
    for k, style in enumerate(styles):
        for i in range(n_per_style):
            tone = 0.3 * np.sin(2 * math.pi * 220 * (2**k) * t)
            audio = np.stack([tone, tone], 1) + 0.01 * rng.standard_normal((len(t), 2))
            name = f"{style}_{i:02d}.flac"
            sf.write(folder / name, audio.astype(np.float32), SR)
            rows.append({"file": name, "style": style, "style_index": STYLE_NAMES.index(style), "seconds": seconds})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_family_targets_follow_style_table():
    row = {"style": "band"}
    target = family_targets(row)
    style = STYLES["band"]
    expected = {p // 8 for p in (style.melody, style.bridge, style.piano, style.bass)} | (
        {GM_FAMILIES.index("drums")} if style.drums else set()
    )
    assert set(torch.nonzero(target).flatten().tolist()) == expected
    assert (family_targets({"style_index": 3}) == -1).all()  # unknown → ignored
    assert family_targets({"style": "piano", "programs": [40], "drums": False}).nonzero().flatten().tolist() == [5]


def test_random_crop_gain_is_per_example_and_deterministic():
    audio = torch.arange(2 * 2 * 100, dtype=torch.float32).reshape(2, 2, 100)
    aug = Augment(crop_seconds=0.5, gain_db=6.0)
    a = random_crop_gain(audio, torch.tensor([3, 7]), 100, aug)
    b = random_crop_gain(audio, torch.tensor([3, 7]), 100, aug)
    assert a.shape == (2, 2, 50) and torch.equal(a, b)
    for i in range(2):  # each crop is a contiguous run of the ramp, scaled by one gain
        diffs = torch.diff(a[i, 0])
        assert torch.allclose(diffs, diffs[0].expand_as(diffs), atol=1e-3)
        gain = float(diffs[0])
        assert 10 ** (-6 / 20) - 1e-5 <= gain <= 10 ** (6 / 20) + 1e-5


def test_tiny_training_run_20_steps(tmp_path):
    torch.set_num_threads(1)
    data = make_clip_folder(tmp_path / "train")
    valid = make_clip_folder(tmp_path / "valid", n_per_style=2, seed=1)
    assert len(StyleClips(data)) == 12
    out = tmp_path / "run"
    rc = main(
        [
            "--preset",
            "tiny",
            "--data",
            str(data),
            "--valid",
            str(valid),
            "--out",
            str(out),
            "--steps",
            "20",
            "--batch-size",
            "4",
            "--crop-seconds",
            "1.0",
            "--num-workers",
            "0",
            "--cpu",
            "--no-progress",
            "--preload",
            "--patchout-time",
            "3",
            "--patchout-freq",
            "1",
        ]
    )
    assert rc == 0
    losses = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == list(range(1, 21))
    assert all(math.isfinite(r["loss"]) for r in losses)
    model = from_pretrained(out / "final")
    assert model.cfg.input_sample_rate == SR and not model.training
    assert (model.cfg.patchout_time, model.cfg.patchout_freq) == (3, 1)  # the flags override the preset
    metrics = json.loads((out / "valid_metrics.json").read_text())
    assert metrics["n"] == 6 and 0.0 <= metrics["accuracy"] <= 1.0
    again = evaluate_folder(model, valid)
    assert again["accuracy"] == metrics["accuracy"]
    assert sum(map(sum, again["confusion"])) == 6
    report = tmp_path / "test_metrics.json"
    assert (
        evaluate_main(
            ["--model", str(out / "final"), "--data", str(valid), "--out", str(report), "--cpu", "--num-workers", "0"]
        )
        == 0
    )
    assert json.loads(report.read_text())["accuracy"] == metrics["accuracy"]


def test_preloaded_clips_match_decoded_clips(tmp_path):
    data = make_clip_folder(tmp_path / "train", n_per_style=2)
    decoded, preloaded = StyleClips(data), StyleClips(data, preload=True)
    assert preloaded.cache is not None and preloaded.cache.dtype == torch.int16
    for i in range(len(decoded)):
        a, b = decoded[i], preloaded[i]
        assert a["style"] == b["style"] and torch.equal(a["families"], b["families"])
        assert (a["audio"] - b["audio"]).abs().max() <= 1 / 32768  # the clips are 16-bit FLAC already


def test_missing_manifest_is_one_line_error(tmp_path, capsys):
    rc = main(["--preset", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--cpu"])
    assert rc == 2
    assert "manifest.jsonl" in capsys.readouterr().err
