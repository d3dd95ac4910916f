"""Metrics and roll ↔ notes conversion on hand-made rolls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from symbolic.chords import parse_harte
from symbolic.data import chord_channel, mask_to_chroma
from symbolic.fgg_correction import allowed_from_masks
from symbolic.metrics import chord_accuracy, chord_similarity, out_of_key_rate, recognize_chords, roll_iou
from symbolic.roll import notes_to_roll, roll_to_notes


def _triad_roll(root: int, minor: bool, steps: int = 64) -> torch.Tensor:
    third = 3 if minor else 4
    notes = [(48 + root + i, t, t + 4) for t in range(0, steps, 4) for i in (0, third, 7)]
    return notes_to_roll(notes, steps)[None]


def test_chord_accuracy_and_similarity():
    chord = parse_harte("A:min")
    root = torch.full((1, 64), 9)
    minor = torch.ones(1, 64)
    chroma = torch.from_numpy(mask_to_chroma(np.full(64, chord.chroma_mask)))[None]
    right, wrong = _triad_roll(9, True), _triad_roll(0, False)
    assert chord_accuracy(right, root, minor) == 1.0
    assert chord_accuracy(wrong, root, minor) == 0.0
    assert chord_similarity(right, chroma) > 0.99 > chord_similarity(wrong, chroma)
    assert chord_accuracy(torch.zeros(1, 2, 64, 64), root, minor) == 0.0  # silence is not a chord
    assert chord_accuracy(right, torch.full((1, 64), -1), minor) == 0.0  # no chord in the condition: nothing scored
    r, m = recognize_chords(torch.tensor([[0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0.0]]))  # D F# A
    assert r.item() == 2 and not m.item()


def test_out_of_key_and_iou():
    allowed = allowed_from_masks(torch.full((1, 64), parse_harte("C:maj").scale_mask))
    roll = notes_to_roll([(60, 0, 8), (61, 16, 18)], 64)[None]  # C, then C# for two steps
    assert out_of_key_rate(roll, allowed) == 2 / 64
    assert roll_iou(roll, roll) == 1.0
    assert roll_iou(roll, torch.zeros_like(roll)) == 0.0


def test_roll_round_trip():
    notes = [(33, 0, 3), (60, 4, 8), (60, 8, 9), (96, 60, 64)]
    roll = notes_to_roll(notes, 64)
    assert roll_to_notes(roll) == sorted(notes, key=lambda n: (n[1], n[0]))
    assert chord_channel(mask_to_chroma(np.array([1]))).shape == (1, 64)


def test_evaluate_script(pop909_root, tmp_path):
    import json

    from musicprod_common.checkpoint import save_pretrained
    from symbolic.data import build_dataset_file
    from symbolic.evaluate import main
    from symbolic.fgg import build_fgg, fgg_config

    data = tmp_path / "data.safetensors"
    build_dataset_file(pop909_root, data, limit=3)  # song 003 is in the test split
    torch.manual_seed(0)
    model = build_fgg(fgg_config("tiny"))
    torch.nn.init.normal_(model.conv_out.weight, std=0.1)
    save_pretrained(model, fgg_config("tiny"), tmp_path / "ck")
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "ck"),
                "--data",
                str(data),
                "--num-samples",
                "4",
                "--batch-size",
                "2",
                "--steps",
                "2",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["samples"] == 4 and result["with/out_of_key"] == 0.0 < result["without/out_of_key"]
    assert (
        result["ground_truth/iou"] == 1.0 and result["ground_truth/chord_accuracy"] > result["without/chord_accuracy"]
    )


def test_evaluate_binomial_script(pop909_root, tmp_path, capsys):
    import dataclasses
    import json

    from musicprod_common.checkpoint import save_pretrained
    from symbolic.binomial import binomial_config, build_binomial
    from symbolic.data import build_dataset_file
    from symbolic.evaluate_binomial import main

    data = tmp_path / "data.safetensors"
    build_dataset_file(pop909_root, data, limit=3)  # song 003 is in the test split
    cfg = dataclasses.replace(binomial_config("tiny"), num_timesteps=4, density=(0.05, 0.1, 0.02, 0.03))
    torch.manual_seed(0)
    save_pretrained(build_binomial(cfg), cfg, tmp_path / "ck")
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "ck"),
                "--data",
                str(data),
                "--num-samples",
                "3",
                "--batch-size",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["samples"] == 3 and result["tasks"] == ["harmonize", "infill"] and result["num_timesteps"] == 4
    assert result["ground_truth/iou"] == 1.0
    assert 0.0 < result["infill/iou"] < 1.0  # the known first and last bars are exact, the middle is generated
    # the floor: independent notes at the config's density, so harmonisation has notes whatever the weights
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "ck"),
                "--data",
                str(data),
                "--num-samples",
                "2",
                "--tasks",
                "harmonize",
                "--untrained",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    floor = json.loads(out.read_text())
    assert floor["checkpoint"].endswith("(untrained)") and floor["harmonize/notes_per_sample"] > 0
    assert main(["--checkpoint", str(tmp_path / "ck"), "--data", str(data), "--tasks", "harmonise"]) == 2
    assert "--tasks" in capsys.readouterr().err


def test_evaluate_binomial_long_form_scores_whole_song_openings(pop909_root, tmp_path):
    import dataclasses
    import json

    from musicprod_common.checkpoint import save_pretrained
    from symbolic.binomial import binomial_config, build_binomial
    from symbolic.data import build_dataset_file, load_dataset_file
    from symbolic.evaluate_binomial import main, opening_window

    data = tmp_path / "data.safetensors"
    build_dataset_file(pop909_root, data, limit=3)
    song = load_dataset_file(data, "test")[0]
    start = opening_window(song, 8)
    downbeats = set(song.downbeats.tolist())
    assert start is not None and all(start + 16 * k in downbeats for k in range(8))
    assert opening_window(song, 10_000) is None
    cfg = dataclasses.replace(binomial_config("tiny"), num_timesteps=3, density=(0.05, 0.1, 0.02, 0.03))
    torch.manual_seed(0)
    save_pretrained(build_binomial(cfg), cfg, tmp_path / "ck")
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "--checkpoint",
                str(tmp_path / "ck"),
                "--data",
                str(data),
                "--tasks",
                "harmonize_long",
                "--long-bars",
                "8",
                "--num-samples",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["samples"] == 0 and result["long_songs"] == 1 and result["long_chunks"] == 2
    assert result["harmonize_long_truth/iou"] == 1.0 and 0.0 <= result["harmonize_long/iou"] < 1.0
    # the untrained network writes independent notes at the config's onset density r = 0.05 per cell
    assert result["harmonize_long/notes_per_sample"] == pytest.approx(0.05 * 64 * 64, rel=0.3)
    assert (
        main(
            ["--checkpoint", str(tmp_path / "ck"), "--data", str(data), "--tasks", "harmonize_long", "--long-bars", "6"]
        )
        == 2
    )
