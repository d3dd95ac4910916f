"""``python -m guidance.evaluate_audio``: FAD, FAD-∞, KLD and realism between two folders, with a tiny classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from test_passt_guidance import tiny_passt

from guidance.evaluate_audio import evaluate_sets, main
from musicprod_common.checkpoint import save_pretrained

SR = 44100


def write_clips(folder, seed: int, n: int = 6, seconds: float = 1.0, scale: float = 0.1):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        sf.write(str(folder / f"{i}.wav"), (scale * rng.standard_normal((int(seconds * SR), 2))).astype(np.float32), SR)
    return folder


def test_a_set_against_itself_and_against_another(tmp_path):
    classifier = tiny_passt()
    ref = write_clips(tmp_path / "ref", seed=0)
    same = evaluate_sets(classifier, ref, ref, seconds=1.0)
    assert same["fad"] == pytest.approx(0.0, abs=1e-6)
    assert same["kld"]["kld_both"] == pytest.approx(0.0, abs=1e-4)  # eps=1e-6 inside the log and same["kld"]["n"] == 6
    loud = write_clips(tmp_path / "loud", seed=1, scale=0.8)
    other = evaluate_sets(classifier, ref, loud, baseline=ref, seconds=1.0)
    assert other["fad"] > same["fad"] and other["kld"]["kld_both"] > 0
    assert set(other["realism"]) == {"realism", "realism_baseline", "realism_normalised"}


def test_the_command_writes_its_report_and_refuses_an_empty_folder(tmp_path, capsys):
    classifier = tiny_passt()
    save_pretrained(classifier, classifier.cfg, tmp_path / "classifier")
    ref, gen = write_clips(tmp_path / "ref", seed=0), write_clips(tmp_path / "gen", seed=1)
    out = tmp_path / "m.json"
    args = ["--classifier", str(tmp_path / "classifier"), "--reference", str(ref), "--seconds", "1"]
    assert main([*args, "--generated", str(gen), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["generated"] == 6
    (tmp_path / "empty").mkdir()
    assert main([*args, "--generated", str(tmp_path / "empty")]) == 2
    assert "needs at least 2 audio files" in capsys.readouterr().err
