"""A small network that hears where the beats and the downbeats fall: frame-wise activations for the analysis.

    net = shipped_beat_net()                       # None when no checkpoint ships
    beat, downbeat = net.activations(mel_db)       # (T,) each in [0, 1], one per onset frame of the analysis

A spectral flux says where notes start, not which starts are beats. Without drums the tracker then often locks on
half or double the tempo, or on the wrong beat of the bar. This network learns it from annotated songs: the structure
of Böck & Davies (2020), "Deconstruct, analyse, reconstruct: how to improve tempo, beat, and downbeat estimation"
(ISMIR), made smaller: a few 2-D convolutions over the log-mel spectrogram, then a non-causal temporal convolutional
network (TCN) of dilated 1-D convolutions that reaches about 24 s to either side, so that a frame's output hears
several bars around it, and two sigmoid outputs, beat and downbeat.

It reads the analysis's own log-mel spectrogram (``analysis.log_mel``), so it adds no feature pass. The analysis
reads the beat output. The downbeat output is trained alongside as a second task, as Böck & Davies do; added to
the analysis's downbeat evidence it lowered the downbeat F-measure on valid renders, so it stays out of it.
Training: ``python -m musicprod_common.train_beat_net`` (checkpoints/beats/README.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .resources import shipped

DYNAMIC_RANGE_DB = 80.0  # the spectrogram is read relative to its loudest bin, down to this far below it
# Frames whose loudest bin lies this far below the recording's loudest are silence, where no beat can be heard. The
# network never met silence in training and may fire there, so its output is set to 0 in them.
SILENCE_DB = 60.0


@dataclass(frozen=True)
class BeatNetConfig:
    n_mels: int = 128  # the analysis's mel bins
    mel_pool: int = 2  # neighbouring bins averaged first: the beat needs the spectral envelope, not its detail
    conv_channels: int = 16
    channels: int = 32
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    dropout: float = 0.1


def normalise(mel_db: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, n_mels) log-mel in dB -> the network's input in [-1, 1]: relative to the loudest bin, so that the level
    a track was mastered at changes nothing."""
    x = torch.as_tensor(np.asarray(mel_db, dtype=np.float32))
    x = torch.clamp(x - x.max(), min=-DYNAMIC_RANGE_DB)
    return 1.0 + 2.0 * x / DYNAMIC_RANGE_DB


class _Block(nn.Module):
    """x + 1x1(dropout(ELU(dilated conv(x)))): a residual TCN block."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(nn.functional.elu(self.conv(x))))


class BeatNet(nn.Module):
    def __init__(self, cfg: BeatNetConfig = BeatNetConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.conv_channels
        self.frontend = nn.Sequential(
            nn.AvgPool2d((1, cfg.mel_pool)),
            nn.Conv2d(1, c, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d((1, 4)),
            nn.Dropout(cfg.dropout),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d((1, 4)),
            nn.Dropout(cfg.dropout),
        )
        bins = cfg.n_mels // cfg.mel_pool // 16
        self.project = nn.Conv1d(c * bins, cfg.channels, 1)
        self.blocks = nn.Sequential(*(_Block(cfg.channels, cfg.kernel, d, cfg.dropout) for d in cfg.dilations))
        self.head = nn.Conv1d(cfg.channels, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) normalised log-mel -> (B, 2, T) logits: beat, downbeat."""
        h = self.frontend(x.unsqueeze(1))  # (B, C, T, bins)
        h = h.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C * bins, T)
        return self.head(self.blocks(nn.functional.elu(self.project(h))))

    @torch.no_grad()
    def activations(self, mel_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beat and downbeat probabilities per frame of ``mel_db`` (T, n_mels): (T,) each, 0 in silence."""
        self.eval()
        x = normalise(mel_db)
        out = torch.sigmoid(self(x.unsqueeze(0)))[0].double().numpy()
        out[:, x.amax(dim=1).numpy() < 1.0 - 2.0 * SILENCE_DB / DYNAMIC_RANGE_DB] = 0.0
        return out[0], out[1]


@functools.lru_cache(maxsize=1)
def shipped_beat_net() -> BeatNet | None:
    """The shipped ``checkpoints/beats`` (float32, eval mode), or None where it is absent (a copy without it)."""
    from .checkpoint import load_pretrained

    folder = shipped("checkpoints/beats")
    if not (folder / "model.safetensors").is_file():
        return None
    return load_pretrained(folder, BeatNetConfig, BeatNet).float().eval()
