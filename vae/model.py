"""Spectrogram VAE: 44.1 kHz stereo ↔ a latent with exactly 128× fewer values.

The encoder reads the complex STFT of both channels and its magnitude, folds frequency into channels (a learned
projection over the frequency axis is the frequency downsampling) and downsamples time with a strided
convolution to ``hop_length * time_down`` samples per latent frame. The decoder mirrors it and predicts
log-magnitude and phase per STFT bin, then ``torch.istft`` makes the waveform (Siuzdak 2023, "Vocos"),
so no separate vocoder is needed; by default the phase outputs are frame-to-frame deviations that are summed
(``VAEConfig.phase``), so that a steady partial can come out at any frequency. Blocks are 1-D ConvNeXt blocks (Liu et
al. 2022, "A ConvNet for the
2020s"), the layer Levy et al. 2023 use on each side of their VAE.

Ratio: the waveform has ``2 * T`` values and the latent ``C * T / H`` with ``H = hop_length * time_down``;
``2 * T / (C * T / H) = 2 H / C = 128`` needs ``H / C = 64``, which :class:`VAEConfig` checks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musicprod_common.audio import SAMPLE_RATE, to_stereo_44k
from musicprod_common.checkpoint import load_pretrained
from musicprod_common.config import pick_preset
from musicprod_common.errors import InputError

from .phase_refinement import refine_phase

COMPRESSION_RATIO = 128
PHASE_MODES = ("absolute", "instantaneous_frequency")


@dataclass
class VAEConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024  # STFT size of the encoder input and the decoder output
    hop_length: int = 256  # STFT hop; 4× overlap keeps the iSTFT free of frame-rate artefacts
    time_down: int = 4  # STFT frames per latent frame: latent hop H = hop_length * time_down
    latent_channels: int = 16  # C; H / C must be 64 for the 128× ratio
    stft_dim: int = 128  # width of the blocks that run at the STFT frame rate (kept narrow: 4x the frames)
    dim: int = 320  # width of the blocks that run at the latent frame rate, where most of the compute is
    enc_stft_blocks: int = 1
    enc_blocks: int = 3
    dec_blocks: int = 6
    dec_stft_blocks: int = 1
    mlp_ratio: float = 3.0
    kernel_size: int = 7
    magnitude_power: float = 0.3  # encoder input |X|^p e^{i∠X} (and |X|^p): compresses the dynamic range, keeps phase
    # Two encoder fixes; the first GPU-trained checkpoint ran with both off (its config.json says so):
    encoder_magnitude: bool = True  # the encoder also reads |X|^p per bin (see Encoder)
    encoder_out_norm: bool = False  # a per-frame LayerNorm after the encoder's last block (see Encoder)
    # How the decoder's phase outputs become the STFT phase (see SpectrogramVAE._spectrum):
    # "absolute": one phase per frame and bin, as in Vocos (the first GPU-trained checkpoint's config.json
    # says so); "instantaneous_frequency": a per-frame deviation from the bin's centre frequency, summed
    # over frames (the IF representation of GANSynth), which lets a steady partial through (see _spectrum)
    phase: str = "instantaneous_frequency"
    # Griffin-Lim iterations that make the decoded spectrogram consistent before it is heard, in decodes that need no
    # gradient (vae/phase_refinement.py). The presets use 1: held-out mel 0.342 -> 0.312 (checkpoints/vae); a second
    # gained 0.003 and cost the 60 s speed target. The default 0 keeps configs saved before the field existed decoding
    # as their cards measured them: a decoder trained without it shapes its output by cancellation and went from 0.44
    # to 0.91.
    phase_iterations: int = 0
    logvar_min: float = -30.0
    logvar_max: float = 20.0
    chunk_frames: int = 1024  # long audio: latent frames per chunk (1024 at hop 1024 ≈ 24 s)
    context_frames: int = 32  # long audio: extra latent frames of context on each side of a chunk

    def __post_init__(self) -> None:
        if 2 * self.latent_hop != COMPRESSION_RATIO * self.latent_channels:
            raise InputError(
                f"VAEConfig: hop_length*time_down/latent_channels = {self.latent_hop}/{self.latent_channels} must be "
                "64 "
                f"for a 128x compression; e.g. hop_length=256, time_down=4, latent_channels=16"
            )
        if self.phase not in PHASE_MODES:
            raise InputError(f"VAEConfig: phase={self.phase!r}; choose one of {', '.join(PHASE_MODES)}")
        if self.phase_iterations < 0:
            raise InputError(f"VAEConfig: phase_iterations={self.phase_iterations} must be >= 0")
        if self.n_fft < 2 * self.hop_length:
            raise InputError(
                f"VAEConfig: n_fft={self.n_fft} must be at least 2*hop_length={2 * self.hop_length} for the iSTFT to "
                "overlap-add"
            )

    @property
    def latent_hop(self) -> int:
        """H: waveform samples per latent frame."""
        return self.hop_length * self.time_down

    @property
    def encoder_parts(self) -> int:
        """Encoder input values per STFT bin and channel: re, im (and the magnitude)."""
        return 3 if self.encoder_magnitude else 2

    @property
    def latent_rate(self) -> float:
        return self.sample_rate / self.latent_hop


PRESETS: dict[str, VAEConfig] = {
    # tests: builds and runs in milliseconds; H = 128, C = 2
    "tiny": VAEConfig(
        n_fft=256,
        hop_length=64,
        time_down=2,
        latent_channels=2,
        stft_dim=16,
        dim=32,
        enc_stft_blocks=1,
        enc_blocks=1,
        dec_blocks=1,
        dec_stft_blocks=1,
        mlp_ratio=2.0,
        chunk_frames=32,
        context_frames=12,
        phase_iterations=1,
    ),
    # shipped: C=16 at 43 Hz (the calibrated choice), 5.94 s = 2^18 samples -> 256 latent frames
    "small": VAEConfig(phase_iterations=1),
    # Levy et al. 2023, as the design card summarises it: 8 ConvNeXt layers on each side, 128x time downsampling.
    # Our reading: 128 STFT frames per latent frame (hop 32 * 128 = 4096 samples), which the 128x value
    # ratio then makes 64 latent channels. Not trained here; it exists to check the scaled-up shapes.
    "paper": VAEConfig(
        n_fft=128,
        hop_length=32,
        time_down=128,
        latent_channels=64,
        stft_dim=256,
        dim=1024,
        enc_stft_blocks=0,
        enc_blocks=8,
        dec_blocks=8,
        dec_stft_blocks=0,
        mlp_ratio=4.0,
        chunk_frames=128,
        context_frames=32,
        phase_iterations=1,
    ),
}


def get_config(name: str) -> VAEConfig:
    return pick_preset(PRESETS, name)


class DiagonalGaussian:
    """Posterior q(z|x) = N(mean, exp(logvar)); ``mean``/``logvar``: ``(B, C, L)``."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar
        self.std = torch.exp(0.5 * logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample; pass ``noise`` (same shape) for per-example determinism."""
        if noise is None:
            noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise.to(self.mean.dtype)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per example, averaged over latent values: ``(B,)``. Kingma & Welling 2014, App. B."""
        kl = 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)
        return kl.flatten(1).mean(1)


class ConvNeXtBlock1d(nn.Module):
    """Depthwise conv → LayerNorm → MLP → layer scale, with a residual (Liu et al. 2022, "A ConvNet for the 2020s")."""

    def __init__(self, dim: int, mlp_ratio: float, kernel_size: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-2))  # small layer scale: each block starts near identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, N) -> (B, D, N)
        h = self.dwconv(x).transpose(1, 2)  # (B, N, D)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


def _blocks(n: int, dim: int, cfg: VAEConfig) -> nn.Sequential:
    return nn.Sequential(*[ConvNeXtBlock1d(dim, cfg.mlp_ratio, cfg.kernel_size) for _ in range(n)])


class ChannelNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, N)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class Encoder(nn.Module):
    """STFT features at the STFT frame rate → posterior parameters ``(B, 2C, N / time_down)``.

    Two choices decide what can reach the latent (both measured on the first GPU-trained checkpoint, which had
    ``encoder_magnitude=False, encoder_out_norm=True``):

    * ``encoder_magnitude``: the first layer is linear, and from re/im alone a linear map cannot tell
      which bins hold energy (a partial's phase turns from frame to frame); that checkpoint lost the
      partials (chroma correlation 0.05). With the magnitude as an input a linear map is a filterbank.
    * ``encoder_out_norm``: a per-frame LayerNorm after the last block divides out the frame's level; that
      checkpoint decoded inputs at 0, -24 and +12 dB all to about -25 dB RMS. Without it the level reaches
      the latent through the blocks' residual path, which is linear in the input's scale.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        bins = cfg.n_fft // 2 + 1
        self.proj = nn.Conv1d(2 * cfg.encoder_parts * bins, cfg.stft_dim, 1)  # folds frequency into channels
        self.stft_blocks = _blocks(cfg.enc_stft_blocks, cfg.stft_dim, cfg)
        self.down = nn.Conv1d(cfg.stft_dim, cfg.dim, cfg.time_down, stride=cfg.time_down)
        self.blocks = _blocks(cfg.enc_blocks, cfg.dim, cfg)
        self.norm = ChannelNorm(cfg.dim, eps=1e-6) if cfg.encoder_out_norm else nn.Identity()
        self.out = nn.Conv1d(cfg.dim, 2 * cfg.latent_channels, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats``: ``(B, 2, N, F, P)`` = (batch, channel, frame, bin, re/im(/magnitude)), the STFT's own memory
        order."""
        b, channels, n, bins, parts = feats.shape
        # self.proj is a 1x1 conv over inputs ordered (channel, part, bin). Applied as one linear map per channel
        # on the frame-major layout (weights reordered to (bin, part)), it reads the large input where it lies:
        # transposing it to (B, 2PF, N), or gathering both channels per frame, dominated the CPU time of encoding
        d = self.proj.out_channels
        weight = self.proj.weight.reshape(d, channels, parts, bins).transpose(2, 3).reshape(d, channels, bins * parts)
        h = self.proj.bias
        for c in range(channels):
            h = h + F.linear(feats[:, c].reshape(b, n, bins * parts), weight[:, c])
        h = h.transpose(1, 2)  # (B, stft_dim, N)
        h = self.stft_blocks(h)
        h = self.blocks(self.down(h))
        return self.out(self.norm(h))


class Decoder(nn.Module):
    """Latent ``(B, C, L)`` → log-magnitude and phase ``(B, L * time_down + 1, 4F)`` at the STFT frame rate."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        bins = cfg.n_fft // 2 + 1
        self.inp = nn.Conv1d(cfg.latent_channels, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.blocks = _blocks(cfg.dec_blocks, cfg.dim, cfg)
        self.up = nn.ConvTranspose1d(cfg.dim, cfg.stft_dim, cfg.time_down, stride=cfg.time_down)
        self.stft_blocks = _blocks(cfg.dec_stft_blocks, cfg.stft_dim, cfg)
        self.norm = nn.LayerNorm(cfg.stft_dim, eps=1e-6)
        self.head = nn.Linear(cfg.stft_dim, 4 * bins)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.blocks(self.inp(z)))
        h = self.stft_blocks(h)
        # torch.istft(center=True) wants one frame more than T / hop; repeat the last frame for it.
        h = F.pad(h, (0, 1), mode="replicate")
        return self.head(self.norm(h.transpose(1, 2)))  # (B, N + 1, 4F), frame-major like the STFT


class SpectrogramVAE(nn.Module):
    """``encode(audio (B, 2, T)) -> DiagonalGaussian`` over ``(B, C, ceil(T / H))``; ``decode(z, length) -> (B, 2,
    length)``."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.register_buffer("window", torch.hann_window(self.config.n_fft), persistent=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str) -> "SpectrogramVAE":
        return cls(get_config(name))

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike) -> "SpectrogramVAE":
        """A local folder with ``config.json`` + ``model.safetensors``, or a Hugging Face Hub repo id."""
        return load_pretrained(path_or_hub_id, VAEConfig, cls)

    @property
    def latent_hop(self) -> int:
        return self.config.latent_hop

    def latent_length(self, length: int) -> int:
        """Latent frames for ``length`` samples: ``ceil(length / H)`` (the input is zero-padded up to it)."""
        return max(1, math.ceil(length / self.latent_hop))

    # ---- spectral front and back ends ---------------------------------------------------------
    def _features(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T)`` with ``T`` a multiple of H → compressed STFT features ``(B, 2, T / hop, F, P)``.

        Per bin: ``X |X|^(p - 1)`` (re, im: magnitude compressed to ``|X|^p``, phase kept) and, with
        ``encoder_magnitude``, ``|X|^p`` itself.
        """
        cfg = self.config
        b, ch, t = audio.shape
        with torch.autocast(audio.device.type, enabled=False):
            spec = self._stft(audio)  # (B*2, F, N + 1), F-contiguous
            ri = torch.view_as_real(spec.transpose(1, 2)[:, :-1])  # (B*2, N, F, 2): drop the extra centre frame
            modulus = torch.hypot(ri[..., 0], ri[..., 1])
            scale = (modulus + 1e-5).pow_(cfg.magnitude_power - 1.0)
            # one preallocated tensor: no concatenation copy of the largest tensor here
            feats = torch.empty(*ri.shape[:-1], cfg.encoder_parts, dtype=ri.dtype, device=ri.device)
            torch.mul(ri, scale.unsqueeze(-1), out=feats[..., :2])
            if cfg.encoder_magnitude:
                torch.mul(modulus, scale, out=feats[..., 2])  # the modulus of the re/im parts
        return feats.reshape(b, ch, *feats.shape[1:])  # (B, 2, N, F, P)

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T)`` → the complex STFT of every channel on the decoder's grid, ``(B*2, F, T / hop + 1)``, in
        float32."""
        cfg = self.config
        with torch.autocast(audio.device.type, enabled=False):
            return torch.stft(
                audio.float().flatten(0, 1),
                cfg.n_fft,
                cfg.hop_length,
                window=self.window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            )

    def _spectrum(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder output ``(B, N + 1, 4F)`` (channel, log-magnitude/phase, bin) → magnitude and phase ``(B, N + 1, 2,
        F)``.

        With ``phase="instantaneous_frequency"`` the phase outputs are each frame's deviation from the bin's
        centre-frequency advance, summed over frames from the first one (Engel et al. 2019, "GANSynth", whose
        IF spectrograms gave coherent phase). The reason: with an absolute phase per frame, a steady input
        gives the same phase in every frame, and overlap-adding equal-phase frames keeps only multiples of
        sr / hop (172 Hz here); a decoder trained that way lost every partial elsewhere.
        Summed deviations let a steady partial come out as a constant, which a convolution can produce.
        """
        cfg = self.config
        b, n, _ = out.shape
        bins = cfg.n_fft // 2 + 1
        with torch.autocast(out.device.type, enabled=False):
            out = out.float().reshape(b, n, 2, 2, bins)
            # Vocos (Siuzdak 2023): |X| = exp(m), clipped against overflow
            mag = torch.exp(out[..., 0, :]).clamp(max=1e2)  # (B, N, 2, F)
            phase = out[..., 1, :]
            if cfg.phase == "instantaneous_frequency":
                phase = summed_phase(phase, cfg.hop_length, cfg.n_fft)
        return mag, phase

    def _istft(self, mag: torch.Tensor, phase: torch.Tensor, length: int, phase_iterations: int = 0) -> torch.Tensor:
        """Magnitude and phase ``(B, N, 2, F)`` → waveform ``(B, 2, length)``, the phase first refined by
        ``phase_iterations`` of Griffin-Lim."""
        cfg = self.config
        b, n, _, bins = mag.shape
        with torch.autocast(mag.device.type, enabled=False):
            spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))  # = torch.polar, faster on CPU

            def stft_layout(
                x: torch.Tensor,
            ) -> torch.Tensor:  # (B, N, 2, F) -> (B*2, F, N), F-contiguous like torch.stft's
                return x.transpose(1, 2).reshape(b * 2, n, bins).transpose(1, 2)

            wav = refine_phase(
                stft_layout(spec),
                n_fft=cfg.n_fft,
                hop_length=cfg.hop_length,
                window=self.window,
                length=length,
                iterations=phase_iterations,
                magnitude=stft_layout(mag) if phase_iterations else None,
            )
        return wav.reshape(b, 2, length)

    # ---- public tensor API --------------------------------------------------------------------
    def encode(
        self, audio: torch.Tensor, *, sample_rate: int = SAMPLE_RATE, chunked: bool | None = None
    ) -> DiagonalGaussian:
        """Waveform ``(B, 2, T)`` at 44.1 kHz → posterior over ``(B, C, ceil(T / H))``.

        Mono ``(B, 1, T)``, ``(channels, T)`` or ``(T,)`` input and other ``sample_rate`` values are converted
        first (:func:`prepare_audio`; ``T`` then counts 44.1 kHz samples). ``T`` need not be a multiple of
        H: the end is zero-padded. Long inputs are encoded in overlapping chunks when no gradient is needed
        (``chunked=None``), which bounds memory; see :meth:`encode_long`.
        """
        if audio.dim() != 3 or audio.shape[1] != 2 or sample_rate != SAMPLE_RATE:
            audio = prepare_audio(audio, sample_rate)
        check_waveform(audio)
        frames = self.latent_length(audio.shape[-1])
        if chunked is None:
            chunked = not torch.is_grad_enabled() and frames > self.config.chunk_frames + 2 * self.config.context_frames
        if chunked:
            return self.encode_long(audio)
        audio = F.pad(audio, (0, frames * self.latent_hop - audio.shape[-1]))
        params = self.encoder(self._features(audio).to(self.encoder.proj.weight.dtype))
        mean, logvar = params.float().chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar.clamp(self.config.logvar_min, self.config.logvar_max))

    def decode(
        self,
        latent: torch.Tensor,
        length: int | None = None,
        *,
        chunked: bool | None = None,
        phase_iterations: int | None = None,
    ) -> torch.Tensor:
        """Latent ``(B, C, L)`` → waveform ``(B, 2, length)``; ``length`` defaults to ``L * H``.

        Pass the input's length to get exactly as many samples back as were encoded. ``phase_iterations``
        (default: the config's without gradients, 0 with them, since guidance backpropagates through many
        decodes and only the heard one needs the refinement) sets the Griffin-Lim steps of the phase.
        """
        latent = self._check_latent(latent)
        if length is None:
            length = latent.shape[-1] * self.latent_hop
        if not 0 < length <= latent.shape[-1] * self.latent_hop:
            raise InputError(
                f"decode: length={length} must be in 1..{latent.shape[-1] * self.latent_hop} for {latent.shape[-1]} "
                "latent frames"
            )
        if chunked is None:
            chunked = (
                not torch.is_grad_enabled()
                and latent.shape[-1] > self.config.chunk_frames + 2 * self.config.context_frames
            )
        if phase_iterations is None:
            phase_iterations = 0 if torch.is_grad_enabled() else self.config.phase_iterations
        if chunked:
            return self.decode_long(latent, length, phase_iterations=phase_iterations)
        return self.decode_with_magnitude(latent, length, phase_iterations)[0]

    def forward(
        self, audio: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian, torch.Tensor]:
        """Training pass: reconstruction ``(B, 2, T)`` from a posterior sample, the posterior, and the
        decoder's own magnitude ``(B, N + 1, 2, F)`` before the iSTFT (compare with :meth:`input_magnitude`)."""
        posterior = self.encode(audio, chunked=False)
        z = posterior.sample(noise) if self.training else posterior.mode()
        audio_hat, magnitude = self.decode_with_magnitude(z, audio.shape[-1])
        return audio_hat, posterior, magnitude

    def decode_spectrum(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``(B, C, L)`` → the decoder's magnitude and phase ``(B, L * time_down + 1, 2, F)``."""
        return self._spectrum(self.decoder(latent.to(self.decoder.inp.weight.dtype)))

    def decode_with_magnitude(
        self, latent: torch.Tensor, length: int, phase_iterations: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One unchunked decode: the waveform ``(B, 2, length)`` and the decoder's magnitude before the iSTFT."""
        mag, phase = self.decode_spectrum(latent)
        return self._istft(mag, phase, latent.shape[-1] * self.latent_hop, phase_iterations)[..., :length], mag

    def input_magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T)``, ``T`` a multiple of H → its STFT magnitude on the decoder's grid ``(B, T / hop + 1, 2,
        F)``."""
        spec = self._stft(audio).abs()
        return spec.reshape(*audio.shape[:2], *spec.shape[1:]).permute(0, 3, 1, 2)

    # ---- long audio ---------------------------------------------------------------------------
    def encode_long(
        self, audio: torch.Tensor, chunk_frames: int | None = None, context_frames: int | None = None
    ) -> DiagonalGaussian:
        """Encode any length in chunks of ``chunk_frames`` latent frames, each with ``context_frames`` of context per
        side.

        Only the centre of each chunk is kept, so chunk edges see real neighbouring audio, not padding.
        """
        check_waveform(audio)
        cfg, hop = self.config, self.latent_hop
        chunk, ctx = (
            chunk_frames or cfg.chunk_frames,
            context_frames if context_frames is not None else cfg.context_frames,
        )
        frames = self.latent_length(audio.shape[-1])
        audio = F.pad(audio, (0, frames * hop - audio.shape[-1]))
        means, logvars = [], []
        for start in range(0, frames, chunk):
            stop = min(frames, start + chunk)
            lo, hi = max(0, start - ctx), min(frames, stop + ctx)
            post = self.encode(audio[..., lo * hop : hi * hop], chunked=False)
            means.append(post.mean[..., start - lo : stop - lo])
            logvars.append(post.logvar[..., start - lo : stop - lo])
        return DiagonalGaussian(torch.cat(means, -1), torch.cat(logvars, -1))

    def decode_long(
        self,
        latent: torch.Tensor,
        length: int | None = None,
        chunk_frames: int | None = None,
        context_frames: int | None = None,
        fade_frames: int = 1,
        phase_iterations: int = 0,
    ) -> torch.Tensor:
        """Decode any length in chunks with context, joining neighbours with a linear cross-fade of ``fade_frames``.

        Each chunk is decoded with ``context_frames`` of extra latent on each side and only its centre is
        kept; with context wider than the decoder's receptive field the chunks agree with a whole decode.
        With summed (instantaneous-frequency) phase, each chunk's phase is shifted per bin to equal the
        previous chunk's where they meet, which is what a whole decode's running sum would give there. The
        phase refinement runs per chunk: each iteration reaches one STFT window further, far less than the context.
        """
        latent = self._check_latent(latent)
        cfg, hop = self.config, self.latent_hop
        chunk, ctx = (
            chunk_frames or cfg.chunk_frames,
            context_frames if context_frames is not None else cfg.context_frames,
        )
        frames = latent.shape[-1]
        length = length or frames * hop
        fade = min(fade_frames, ctx) * hop
        td = cfg.time_down  # STFT frames per latent frame: latent frame i starts at STFT frame i * td
        out = torch.zeros(latent.shape[0], 2, frames * hop, dtype=torch.float32, device=latent.device)
        meeting_phase = None  # (B, 2, F): the phase where the next chunk starts
        for start in range(0, frames, chunk):
            stop = min(frames, start + chunk)
            lo, hi = max(0, start - ctx), min(frames, stop + ctx)
            mag, phase = self.decode_spectrum(latent[..., lo:hi])
            if cfg.phase == "instantaneous_frequency":
                if meeting_phase is not None:
                    phase = phase + (meeting_phase - phase[:, (start - lo) * td]).unsqueeze(1)
                meeting_phase = phase[:, (stop - lo) * td]
            wav = self._istft(mag, phase, (hi - lo) * hop, phase_iterations)
            a, b = start * hop, stop * hop
            a_ext = a if start == 0 else a - fade // 2  # overlap the previous chunk by `fade` samples
            b_ext = b if stop == frames else b + (fade - fade // 2)
            piece = wav[..., a_ext - lo * hop : b_ext - lo * hop]
            ramp = torch.ones(b_ext - a_ext, device=latent.device)
            if start > 0 and fade:
                ramp[:fade] = torch.linspace(0.0, 1.0, fade + 2, device=latent.device)[1:-1]
            if stop < frames and fade:
                ramp[-fade:] = torch.linspace(1.0, 0.0, fade + 2, device=latent.device)[1:-1]
            out[..., a_ext:b_ext] += piece * ramp
        return out[..., :length]

    def _check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        c = self.config.latent_channels
        if latent.dim() != 3 or latent.shape[1] != c or latent.shape[-1] < 1:
            raise InputError(f"decode: latent has shape {tuple(latent.shape)}; expected (batch, {c}, frames)")
        if not torch.isfinite(latent).all():
            raise InputError("decode: latent contains NaN or inf values; check what produced it")
        return latent


def summed_phase(deviation: torch.Tensor, hop_length: int, n_fft: int) -> torch.Tensor:
    """Per-frame phase deviations ``(B, N, C, F)`` → the phase of frame n, bin k: the deviations summed over frames
    0..n plus the bin's centre-frequency advance ``2π k hop / n_fft`` per frame (GANSynth's instantaneous frequency,
    Engel et al. 2019), equal modulo 2π to that sum in exact arithmetic.

    Summed naively over a long input in float32 the phase would lose its fractional part, and a float64 sum took a
    fifth of a minute's decode on the CPU. Instead the advance is counted in integers (exact at any length), the
    deviations are summed in float32 within blocks of frames, and the block totals are carried in float64 and
    wrapped. A block holds a whole number of advance periods, so one table of advances serves every block.
    """
    b, n, c, bins = deviation.shape
    period = n_fft // math.gcd(hop_length, n_fft)  # frames after which every bin's advance is a whole turn
    block = period * max(1, 64 // period)
    summed = F.pad(deviation, (0, 0, 0, 0, 0, (-n) % block)).view(b, -1, block, c, bins).cumsum_(2)
    totals = summed[:, :, -1].double()
    summed += torch.remainder(totals.cumsum(1) - totals, 2 * math.pi).float().unsqueeze(2)  # earlier blocks
    frames = torch.arange(1, block + 1, device=deviation.device).unsqueeze(1)
    turns = frames * (torch.arange(bins, device=deviation.device) * hop_length).unsqueeze(0) % n_fft
    summed += (turns * (2 * math.pi / n_fft)).float().view(block, 1, bins)
    return summed.view(b, -1, c, bins)[:, :n]


def check_waveform(audio: torch.Tensor) -> None:
    """The tensor API wants ``(B, 2, T)`` finite audio; :func:`prepare_audio` converts anything else."""
    if not torch.is_tensor(audio) or audio.dim() != 3 or audio.shape[1] != 2 or audio.shape[-1] < 1:
        shape = tuple(audio.shape) if torch.is_tensor(audio) else type(audio).__name__
        raise InputError(f"encode: audio has shape {shape}; expected (batch, 2, samples) at 44.1 kHz")
    if not torch.isfinite(audio).all():
        raise InputError("encode: audio contains NaN or inf samples; clean the input file")


def prepare_audio(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Any ``(T,)``, ``(channels, T)`` or ``(B, channels, T)`` audio → ``(B, 2, T')`` float32 at 44.1 kHz.

    Mono is duplicated, other rates are resampled with torchaudio, more than two channels and NaN/inf
    samples raise :class:`InputError` (all via ``musicprod_common.audio.to_stereo_44k``).
    """
    if not torch.is_tensor(audio):
        audio = torch.as_tensor(audio)
    if audio.dim() not in (1, 2, 3) or audio.shape[-1] < 1:
        raise InputError(
            f"audio has shape {tuple(audio.shape)}; expected (samples,), (channels, samples) or (batch, channels, "
            "samples)"
        )
    items = audio if audio.dim() == 3 else audio.reshape(1, -1, audio.shape[-1])
    return torch.stack([to_stereo_44k(x, sample_rate) for x in items])
