"""A Patchout faSt Spectrogram Transformer (PaSST) for style classification and audio embeddings.

Koutini, Schlüter, Eghbal-zadeh & Widmer 2022, "Efficient Training of Audio Transformers with
Patchout" (arXiv:2110.05069). The model here follows the paper and the hear21passt release:

* front end: mono mix, 32 kHz, pre-emphasis 0.97, STFT (n_fft 1024, Hann window 800, hop 320),
  128 Kaldi-compatible mel bands up to 15 kHz, ``log(x + 1e-5)`` then ``(x + 4.5) / 5``;
* 16×16 patches with stride 10 (overlapping), separate learned frequency and time position embeddings
  (Section 2.1: the time embedding is cropped for inputs shorter than the training length);
* structured patchout in training only (Section 2.2): whole time columns and frequency rows of the
  patch grid are dropped, which regularises and shortens the sequence;
* class and distillation tokens (DeiT); the head reads their average.

The ``passt-s`` preset has the official module layout, so :func:`load_official` loads the released
AudioSet checkpoint (``passt-s-f128-p16-s10-ap.476-swa.pt``) for users who have it. The ``tiny`` and
``small`` presets are trained here on rendered POP909 clips, with a multi-class head for the
instrumentation style and a multi-label head for the GM instrument families present.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from musicprod_common.audio import SAMPLE_RATE
from musicprod_common.checkpoint import load_pretrained, load_weights
from musicprod_common.config import pick_preset
from musicprod_common.errors import InputError
from musicprod_common.styles import STYLE_NAMES

# The 16 General MIDI instrument families (program // 8) plus the GM drum kit: the labels of the
# multi-label head.
GM_FAMILIES: tuple[str, ...] = (
    "piano",
    "chromatic_percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth_lead",
    "synth_pad",
    "synth_effects",
    "ethnic",
    "percussive",
    "sound_effects",
    "drums",
)


@dataclass
class PasstConfig:
    # front end (PaSST / hear21passt values)
    input_sample_rate: int = SAMPLE_RATE  # rate of the audio handed to forward(); resampled to sample_rate
    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 15000.0
    preemphasis: float = 0.97
    # patch grid
    patch_size: int = 16
    stride: int = 10
    max_frames: int = 998  # frames the time position embedding covers (998 = 10 s in PaSST-S)
    # transformer
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    drop_rate: float = 0.0
    # structured patchout (training only): time columns / frequency rows of the grid to drop
    patchout_time: int = 40
    patchout_freq: int = 4
    # heads
    num_classes: int = 527
    num_families: int = 0  # 0: no instrument-family head (the official layout)
    class_names: tuple[str, ...] = ()
    family_names: tuple[str, ...] = ()

    @property
    def freq_patches(self) -> int:
        return (self.n_mels - self.patch_size) // self.stride + 1

    @property
    def time_patches(self) -> int:
        return (self.max_frames - self.patch_size) // self.stride + 1


PRESETS: dict[str, PasstConfig] = {
    # for tests: a few thousand parameters, same front end and grid
    "tiny": PasstConfig(
        embed_dim=32,
        depth=2,
        num_heads=2,
        max_frames=626,
        patchout_time=4,
        patchout_freq=2,
        num_classes=len(STYLE_NAMES),
        class_names=STYLE_NAMES,
        num_families=len(GM_FAMILIES),
        family_names=GM_FAMILIES,
    ),
    # trained here, on the 2-core CPU, on 6 s POP909 renders: 1.85M parameters at ~1.5 s per batch of 32.
    # max_frames 626 covers 6.25 s; a 6 s clip at hop 320 has 601 frames → a 12 × 59 patch grid.
    # Patchout keeps about half of the time columns (PaSST-S drops 40 of 99), which halves the step time.
    "small": PasstConfig(
        embed_dim=192,
        depth=4,
        num_heads=3,
        max_frames=626,
        patchout_time=25,
        patchout_freq=3,
        drop_rate=0.1,
        num_classes=len(STYLE_NAMES),
        class_names=STYLE_NAMES,
        num_families=len(GM_FAMILIES),
        family_names=GM_FAMILIES,
    ),
    # the official PaSST-S AudioSet model (Koutini et al. 2022, Table 1), 527 AudioSet classes
    "passt-s": PasstConfig(input_sample_rate=32000),
}


def passt_config(preset: str, **overrides: Any) -> PasstConfig:
    """A preset's config with fields replaced, e.g. ``passt_config("small", num_classes=8)``."""
    return dataclasses.replace(pick_preset(PRESETS, preset, "PaSST preset"), **overrides)


class MelFrontEnd(nn.Module):
    """Waveform ``(B, C, T)`` or ``(B, T)`` at ``input_sample_rate`` → log-mel ``(B, 1, n_mels, frames)``.

    Differentiable end to end, so guidance gradients flow from the classifier back to the audio.
    Holds only non-persistent buffers: the state dict stays the official network's.
    """

    def __init__(self, cfg: PasstConfig):
        super().__init__()
        self.cfg = cfg
        # Kaldi mel banks (as PaSST), (n_mels, n_fft/2); padded with a zero column for the Nyquist bin
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
            cfg.n_mels, cfg.n_fft, float(cfg.sample_rate), cfg.fmin, cfg.fmax, 100.0, -500.0, 1.0
        )
        self.register_buffer("mel_banks", F.pad(banks, (0, 1)), persistent=False)  # (n_mels, n_fft/2 + 1)
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=False), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        x = audio.float()
        if x.ndim == 3:
            x = x.mean(dim=1)  # mono mix
        if x.ndim != 2:
            raise ValueError(f"expected audio (B, C, T) or (B, T), got shape {tuple(audio.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            if cfg.input_sample_rate != cfg.sample_rate:
                x = torchaudio.functional.resample(x, cfg.input_sample_rate, cfg.sample_rate)
            if cfg.preemphasis:
                x = torch.cat([x[:, :1], x[:, 1:] - cfg.preemphasis * x[:, :-1]], dim=1)
            spec = torch.stft(
                x,
                cfg.n_fft,
                hop_length=cfg.hop_length,
                win_length=cfg.win_length,
                window=self.window,
                center=True,
                return_complex=True,
            )
            power = spec.real.square() + spec.imag.square()  # (B, n_fft/2 + 1, frames)
            mel = torch.matmul(self.mel_banks, power)  # (B, n_mels, frames)
            mel = torch.log(mel + 1e-5)
            mel = (mel + 4.5) / 5.0  # PaSST's fixed normalisation
        return mel.unsqueeze(1)


# --- the transformer, with the official hear21passt module names (so load_official is a plain load) ---


class PatchEmbed(nn.Module):
    def __init__(self, cfg: PasstConfig):
        super().__init__()
        self.proj = nn.Conv2d(1, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.stride)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.proj(spec)  # (B, 1, F, T) → (B, E, F', T')


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, drop: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, h, N, d)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.drop(self.proj(y.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, cfg: PasstConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, cfg.drop_rate)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = Mlp(cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio), cfg.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """PaSST on raw audio: ``forward(audio (B, C, T))`` → ``{"logits", "family_logits", "embedding"}``."""

    def __init__(self, cfg: PasstConfig):
        super().__init__()
        if cfg.embed_dim % cfg.num_heads:
            raise InputError(f"PaSST config: embed_dim {cfg.embed_dim} must divide by num_heads {cfg.num_heads}")
        self.cfg = cfg
        e = cfg.embed_dim
        self.mel = MelFrontEnd(cfg)
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, e))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, e))  # for the class and distillation tokens
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, e, cfg.freq_patches, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, e, 1, cfg.time_patches))
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(e, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(e), nn.Linear(e, cfg.num_classes))
        self.head_dist = nn.Linear(e, cfg.num_classes)  # kept for the official layout; forward uses `head`
        self.family_head = nn.Sequential(nn.LayerNorm(e), nn.Linear(e, cfg.num_families)) if cfg.num_families else None
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (
            self.cls_token,
            self.dist_token,
            self.new_pos_embed,
            self.freq_new_pos_embed,
            self.time_new_pos_embed,
        ):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def tokens(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(B, 1, n_mels, frames)`` → final-normed token sequence ``(B, 2 + N, E)``."""
        cfg = self.cfg
        if spec.shape[-2] != cfg.n_mels:
            raise InputError(f"PaSST expects {cfg.n_mels} mel bands, got {spec.shape[-2]}")
        if spec.shape[-1] < cfg.patch_size:
            raise InputError(f"audio too short for PaSST: {spec.shape[-1]} frames, need at least {cfg.patch_size}")
        x = self.patch_embed(spec)  # (B, E, F', T')
        b, _, n_freq, n_time = x.shape
        if n_time > cfg.time_patches:
            raise InputError(
                f"audio too long for this PaSST: {spec.shape[-1]} frames > max_frames {cfg.max_frames}; "
                "use embed(), which averages over windows, or crop the input"
            )
        # Koutini et al. 2022, §2.1: disentangled position embeddings; time cropped to the input length
        x = x + self.time_new_pos_embed[:, :, :, :n_time] + self.freq_new_pos_embed
        # §2.2 structured patchout, training only: drop whole time columns and frequency rows
        if self.training and cfg.patchout_time and n_time > cfg.patchout_time:
            keep = torch.randperm(n_time)[: n_time - cfg.patchout_time].sort().values.to(x.device)
            x = x[:, :, :, keep]
        if self.training and cfg.patchout_freq and n_freq > cfg.patchout_freq:
            keep = torch.randperm(n_freq)[: n_freq - cfg.patchout_freq].sort().values.to(x.device)
            x = x[:, :, keep, :]
        x = x.flatten(2).transpose(1, 2)  # (B, N, E)
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = self.pos_drop(torch.cat([cls, dist, x], dim=1))
        return self.norm(self.blocks(x))

    def forward_spec(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.tokens(spec)
        embedding = 0.5 * (x[:, 0] + x[:, 1])  # (B, E): average of class and distillation tokens
        out = {"embedding": embedding, "logits": self.head(embedding)}
        if self.family_head is not None:
            out["family_logits"] = self.family_head(embedding)
        return out

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """``audio (B, C, T)`` or ``(B, T)`` at ``cfg.input_sample_rate`` → ``logits (B, K)``,
        ``embedding (B, E)`` and, with a family head, ``family_logits (B, num_families)``."""
        return self.forward_spec(self.mel(audio))

    @property
    def max_samples(self) -> int:
        """Longest input (at ``input_sample_rate``) that fits the time position embedding."""
        cfg = self.cfg
        frames_to_samples = cfg.hop_length * cfg.input_sample_rate / cfg.sample_rate
        return int((cfg.max_frames - 1) * frames_to_samples)

    @property
    def min_samples(self) -> int:
        """Shortest input (at ``input_sample_rate``) that gives one full patch of frames."""
        cfg = self.cfg
        return math.ceil((cfg.patch_size - 1) * cfg.hop_length * cfg.input_sample_rate / cfg.sample_rate) + 1

    def windows(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """``audio (B, C, T)`` cut into the model-length windows that :meth:`embed` and :meth:`classify` average."""
        n = self.max_samples
        if audio.shape[-1] <= n:
            return [audio]
        # non-overlapping windows; the last one is aligned to the end so no window is shorter than n
        starts = list(range(0, audio.shape[-1] - n, n)) + [audio.shape[-1] - n]
        return [audio[..., s : s + n] for s in starts]

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """Embedding ``(B, E)`` of ``audio (B, C, T)``; longer inputs average over model-length windows.

        Differentiable (no ``no_grad`` here), so it serves both metrics and guidance.
        """
        return torch.stack([self(w)["embedding"] for w in self.windows(audio)]).mean(0)

    def classify(self, audio: torch.Tensor) -> torch.Tensor:
        """Style logits ``(B, num_classes)``; longer inputs average logits over windows."""
        return torch.stack([self(w)["logits"] for w in self.windows(audio)]).mean(0)


def build_passt(cfg: PasstConfig) -> PaSST:
    return PaSST(cfg)


def from_pretrained(path_or_hub_id: str | os.PathLike) -> PaSST:
    """Load a classifier saved by :func:`musicprod_common.checkpoint.save_pretrained` (e.g.
    ``runs/classifier/final``)."""
    return load_pretrained(path_or_hub_id, PasstConfig, build_passt)


# --- official checkpoints ---

_PREFIXES = ("module.", "net.", "model.")


def _official_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        state = load_weights(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a pickle with code, a truncated file: refuse with one line
            raise InputError(
                f"{path}: cannot read it as a PaSST checkpoint ({type(err).__name__}: {err}); pass the .pt state dict "
                "from the PaSST release"
            ) from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError(f"{path}: not a state dict of tensors; pass the .pt state dict from the PaSST release")
    out = {}
    for k, v in state.items():
        for prefix in _PREFIXES:
            if k.startswith(prefix):
                k = k[len(prefix) :]
        if not k.startswith("mel."):  # hear21passt wrappers keep the (parameter-free) front end under mel.
            out[k] = v
    return out


def load_official(path: str | os.PathLike, *, input_sample_rate: int = 32000, **overrides: Any) -> PaSST:
    """Load the official PaSST checkpoint (e.g. ``passt-s-f128-p16-s10-ap.476-swa.pt``) into :class:`PaSST`.

    The width, depth, class count and time length are read from the tensors; heads default to
    ``embed_dim // 64`` (12 for PaSST-S). Returns the model in eval mode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: PaSST checkpoint not found; download passt-s-f128-p16-s10-ap.476-swa.pt from the PaSST release "
            "and pass its path"
        )
    state = _official_state_dict(path)
    try:
        embed_dim = state["cls_token"].shape[-1]
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        time_patches = state["time_new_pos_embed"].shape[-1]
        num_classes = state["head.1.weight"].shape[0]
    except (KeyError, ValueError) as err:
        raise InputError(f"{path}: missing PaSST tensors ({err}); this is not a hear21passt/PaSST checkpoint") from err
    base = PRESETS["passt-s"]
    # keep PaSST-S's 998 frames when the time embedding has its 99 columns, else the shortest fit
    max_frames = (
        base.max_frames if time_patches == base.time_patches else (time_patches - 1) * base.stride + base.patch_size
    )
    cfg = dataclasses.replace(
        base,
        input_sample_rate=input_sample_rate,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=max(1, embed_dim // 64),
        num_classes=num_classes,
        max_frames=max_frames,
        **overrides,
    )
    model = PaSST(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"{path}: tensors do not match the PaSST layout (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()
