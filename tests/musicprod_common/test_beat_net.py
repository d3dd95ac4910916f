"""The beat network: its input, its targets, its training data and the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from musicprod_common.analysis import ONSET_RATE
from musicprod_common.beat_net import BeatNet, BeatNetConfig, normalise, shipped_beat_net
from musicprod_common.train_beat_net import (
    ACCOMPANIMENT_PROGRAMS,
    LEAD_PROGRAMS,
    NEIGHBOUR_TARGET,
    frame_targets,
    main,
    render_window,
)


def test_the_input_ignores_the_level_a_track_was_mastered_at():
    mel = np.random.default_rng(0).normal(-40, 15, size=(50, 128))
    assert torch.allclose(normalise(mel), normalise(mel - 12.0), atol=1e-5)
    x = normalise(mel)
    assert float(x.max()) == 1.0 and float(x.min()) >= -1.0


def test_a_frame_hears_many_bars_on_either_side_and_outputs_one_value_per_frame():
    net = BeatNet(BeatNetConfig()).eval()
    x = torch.zeros(1, 3000, 128)
    assert net(x).shape == (1, 2, 3000)
    # An input frame must reach outputs 20 s away (the network reaches about 24 s to either side).
    x.requires_grad_(True)
    net(x)[0, 0, 1500 - int(12 * ONSET_RATE)].backward()
    assert x.grad[0, 1500 + int(8 * ONSET_RATE)].abs().sum() > 0  # 20 s apart
    assert x.grad[0, 1500].abs().sum() > 0
    x.grad = None
    net(x)[0, 0, 0].backward()  # frame 0 hears 2 × 1023 + 2 frames ahead (23.8 s) and no further
    assert x.grad[0, 2048].abs().sum() > 0 and x.grad[0, 2049:].abs().sum() == 0


def test_targets_mark_each_annotated_frame_and_half_mark_its_neighbours():
    target = frame_targets(np.array([0.0, 1.0, 99.0]), 100, 10.0)
    assert target[0] == 1.0 and target[10] == 1.0
    assert target[1] == target[9] == target[11] == NEIGHBOUR_TARGET
    assert target.sum() == 2.0 + 3 * NEIGHBOUR_TARGET  # 99 s lies beyond the 100 frames


def test_training_never_hears_the_mallets_held_out_for_the_benchmark():
    chromatic_percussion = set(range(8, 16))
    assert not chromatic_percussion & (set(LEAD_PROGRAMS) | set(ACCOMPANIMENT_PROGRAMS))


def test_a_training_window_holds_the_beats_inside_it_at_the_songs_tempo(pop909_root):
    window = render_window(str(pop909_root), "001", 8.0, seed=3)
    assert window["mel"].shape == (round(8.0 * ONSET_RATE) + 1, 128)
    beats = window["beats"]
    assert len(beats) >= 4 and beats.min() >= 0 and beats.max() < 8.0
    assert set(np.round(window["downbeats"], 6)) <= set(np.round(beats, 6))
    # Song 001 is annotated near 83 BPM; humanizing (±3 %) and scaling (±15 %) keep it within 80/1.2-83*1.2.
    bpm = 60.0 / np.median(np.diff(beats))
    assert 83 / 1.2 < bpm < 83 * 1.2


def test_training_runs_end_to_end_and_exports_a_loadable_net(pop909_root, tmp_path):
    from musicprod_common.checkpoint import load_pretrained

    out = tmp_path / "run"
    args = ["--pop909", str(pop909_root), "--songs", "2", "--seconds", "6", "--workers", "1", "--cache"]
    assert (
        main(
            [
                *args,
                str(tmp_path / "cache"),
                "--out",
                str(out),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    net = load_pretrained(out / "final", BeatNetConfig, BeatNet)
    beat, downbeat = net.activations(np.zeros((200, 128)))
    assert beat.shape == downbeat.shape == (200,) and np.all((beat >= 0) & (beat <= 1))


def test_the_shipped_net_finds_a_plain_pulse():
    """On a log-mel of a strong broadband attack every 0.5 s, the shipped net's beat activation peaks there."""
    net = shipped_beat_net()
    assert net is not None, "checkpoints/beats is missing"
    frames = int(30 * ONSET_RATE)
    mel = np.full((frames, 128), -60.0)
    hits = np.round(np.arange(0.5, 29.5, 0.5) * ONSET_RATE).astype(int)
    for k in hits:
        mel[k : k + 8] = -5.0 - 6.0 * np.arange(8)[:, None]  # an attack that decays
    beat, _ = net.activations(mel)
    on = beat[hits].mean()
    off = np.median(beat)
    assert on > 0.3 and on > 5 * off


def test_silence_holds_no_beat():
    """The network never heard digital silence in training; where a recording falls silent its output is 0."""
    net = BeatNet(BeatNetConfig())
    mel = np.random.default_rng(1).normal(-30, 10, size=(400, 128))
    mel[200:] = -100.0
    beat, downbeat = net.activations(mel)
    assert np.all(beat[200:] == 0) and np.all(downbeat[200:] == 0)
    assert np.all(beat[:200] > 0)
