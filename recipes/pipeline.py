"""The recipe layer: load the shipped models by name, run a guidance task on audio of any length and format.

Sampling, windowing, the tasks and audio I/O all live elsewhere (``guidance``, ``musicprod_common.audio``);
this module only wires them together for whole files:

    models = load_models("latent")                       # checkpoints/{vae,dit}/ or checkpoints/unet/
    out = inpaint(models, audio, sr, start=30.0, end=32.0, steps=50, seed=0)

``audio`` is ``(channels, T)`` at any sample rate; the result has the same shape, rate and dtype, and is
bit-identical to the input outside the region and its crossfade margins (the window is processed at
44.1 kHz stereo and only the edited span is converted back and blended in). Nothing here prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from musicprod_common.errors import InputError

if TYPE_CHECKING:
    from guidance.tasks import EditModel

MODEL_KINDS = ("latent", "waveform")
SAMPLE_RATE = 44100
REPO_ROOT = Path(__file__).resolve().parents[1]

Progress = Callable[[int], None]  # called with the number of sampling steps just completed


def default_checkpoints() -> Path:
    """``$MUSICPROD_CHECKPOINTS`` or the repo's shipped ``checkpoints/`` folder."""
    return Path(os.environ.get("MUSICPROD_CHECKPOINTS", REPO_ROOT / "checkpoints"))


@dataclass
class Models:
    """One model family, ready to sample: ``net`` is a DiT (with ``vae``) or a waveform U-Net (``vae is None``)."""

    kind: str
    net: torch.nn.Module
    vae: torch.nn.Module | None = None
    eta: float | None = None  # sampler η; None: the model family's default (guidance.tasks)

    @property
    def window_samples(self) -> int:
        """Samples at 44.1 kHz the network sees at once."""
        if self.kind == "latent":
            return self.net.config.window_samples
        return self.net.config.window


def _checkpoint_folder(root: Path, name: str) -> Path:
    folder = root / name
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no checkpoint there (config.json + model.safetensors); pass --checkpoints DIR holding "
                         f"vae/, dit/ and unet/, or set MUSICPROD_CHECKPOINTS")
    return folder


def load_models(kind: str = "latent", checkpoints: str | os.PathLike | None = None) -> Models:
    """Load ``kind`` ∈ {"latent", "waveform"} from ``checkpoints/{vae,dit}`` or ``checkpoints/unet``, in eval mode."""
    if kind not in MODEL_KINDS:
        raise InputError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    root = Path(checkpoints) if checkpoints is not None else default_checkpoints()
    if kind == "latent":
        from latent_diffusion import DiT
        from vae import SpectrogramVAE

        vae = SpectrogramVAE.from_pretrained(_checkpoint_folder(root, "vae"))
        dit = DiT.from_pretrained(_checkpoint_folder(root, "dit"))
        if (dit.config.in_channels, dit.config.hop_samples) != (vae.config.latent_channels, vae.latent_hop):
            raise InputError(f"{root}: the DiT expects {dit.config.in_channels}-channel latents every {dit.config.hop_samples} "
                             f"samples but the VAE makes {vae.config.latent_channels} every {vae.latent_hop}; "
                             "ship checkpoints trained together")
        return Models("latent", dit.eval().requires_grad_(False), vae.eval().requires_grad_(False))
    from waveform_diffusion import WaveformUNet

    unet = WaveformUNet.from_pretrained(_checkpoint_folder(root, "unet"))
    return Models("waveform", unet.eval().requires_grad_(False))


# ----------------------------------------------------------------------------------------------- model → task


def edit_model(models: Models) -> "EditModel":
    """The guidance tasks' view of ``models`` (denoiser, codec, window, default ξ and η), built by guidance itself."""
    from guidance.tasks import latent_edit_model, waveform_edit_model

    if models.kind == "latent":
        model = latent_edit_model(models.net, models.vae)
    else:
        model = waveform_edit_model(models.net)
    if models.eta is not None:
        model.eta = models.eta
    return model


def _sampler_kwargs(steps: int, seed: int, xi: float | None, progress: Progress | None) -> dict:
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    generator = torch.Generator().manual_seed(seed)  # CPU generator: the same seed gives the same output
    callback = (lambda info: progress(1)) if progress is not None else None
    return {"steps": steps, "xi": xi, "generator": generator, "callback": callback}


# ----------------------------------------------------------------------------------------------- formats


def to_model_audio(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Any ``(channels, T)`` at any rate → ``(1, 2, T')`` float32 at 44.1 kHz (mono duplicated, others resampled)."""
    from musicprod_common.audio import to_stereo_44k

    return to_stereo_44k(audio, sample_rate).unsqueeze(0)


def from_model_audio(audio: torch.Tensor, sample_rate: int, channels: int, length: int) -> torch.Tensor:
    """``(1, 2, T')`` at 44.1 kHz → ``(channels, length)`` at ``sample_rate``: the inverse of :func:`to_model_audio`.

    Mono takes the channel mean, so a duplicated mono signal comes back exactly.
    """
    x = match_format(audio[0].float(), SAMPLE_RATE, sample_rate, channels)
    if x.shape[-1] < length:
        x = torch.nn.functional.pad(x, (0, length - x.shape[-1]))
    return x[..., :length]


def max_region(models: Models, margin: float = 0.05) -> float:
    """The longest region (seconds) one model window can regenerate with ``margin`` seconds of blend each side."""
    return (models.window_samples - 2 * int(round(margin * SAMPLE_RATE))) / SAMPLE_RATE


def _segment_bounds(start: int, end: int, total: int, reach: int) -> tuple[int, int]:
    """The slice of the file the model can touch when editing [start, end): the region ± one window."""
    return max(0, start - reach), min(total, end + reach)


def _edit_region(
    models: Models, audio: torch.Tensor, sample_rate: int, start: float, end: float, margin: float,
    task: Callable[..., torch.Tensor], kwargs: dict, long_task: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run a region task (infill/regenerate) on ``audio`` ``(channels, T)`` and return ``(channels, T)``.

    Only a segment of one model window either side of the region is converted to 44.1 kHz stereo, so a
    10-minute song costs no more than a short one. The edited segment is converted back to the input's rate
    and channels and pasted with the windowing's own crossfade, so samples farther than ``margin`` seconds
    from the region are the input's, bit for bit, whatever the input format.
    """
    from guidance.windowing import paste_known

    channels, total = audio.shape
    s0, e0 = int(round(start * sample_rate)), int(round(end * sample_rate))
    if not 0 <= s0 < e0 <= total:
        raise InputError(f"region {start:g}-{end:g} s is empty or outside the audio (0-{total / sample_rate:.2f} s); pass 0 <= start < end <= length")
    if margin * SAMPLE_RATE * 4 > models.window_samples:  # window_plan keeps half a window of context: 2 margins must fit
        raise InputError(f"--margin {margin:g} s is too wide for the {models.kind} model's {models.window_samples / SAMPLE_RATE:.2f} s "
                         f"window; use at most {models.window_samples / SAMPLE_RATE / 4:.2f} s")
    longest = max_region(models, margin)
    if end - start > longest + 1e-9 and long_task is not None:
        task = long_task
    elif end - start > longest + 1e-9:
        raise InputError(f"region {start:g}-{end:g} s is {end - start:.2f} s long, but the {models.kind} model regenerates at most "
                         f"{longest:.2f} s at once (its {models.window_samples / SAMPLE_RATE:.2f} s window minus the margins); "
                         "edit it in shorter pieces")
    reach = int(-(-models.window_samples * sample_rate // SAMPLE_RATE)) + 1  # one window, in input samples
    lo, hi = _segment_bounds(s0, e0, total, reach)
    segment = audio[:, lo:hi]
    model_in = to_model_audio(segment, sample_rate)
    em = edit_model(models)
    rel = lambda t: t - lo / sample_rate  # noqa: E731 - seconds relative to the segment
    edited = task(em, model_in, rel(start), rel(end), margin_s=margin, **kwargs)
    back = from_model_audio(edited, sample_rate, channels, hi - lo).to(audio.dtype)
    mask = torch.ones(1, 1, hi - lo)
    mask[..., s0 - lo : e0 - lo] = 0.0
    margin_in = int(round(margin * sample_rate))
    pasted = paste_known(segment.unsqueeze(0), back.unsqueeze(0), mask, margin_in)[0]
    out = audio.clone()
    out[:, lo:hi] = pasted
    return out


# ----------------------------------------------------------------------------------------------- tasks on whole files

DEFAULT_MARGIN = 0.05  # seconds of crossfade on each side of an edited region
LEVEL_BAND_S = 1.0  # seconds of original audio each side of a region on which --match-level measures the codec's level


def inpaint(
    models: Models, audio: torch.Tensor, sample_rate: int, start: float, end: float, *, steps: int = 50, seed: int = 0,
    xi: float | None = None, margin: float = DEFAULT_MARGIN, level_band: float | None = None, progress: Progress | None = None,
) -> torch.Tensor:
    """Generate [start, end) s of ``audio`` ``(channels, T)`` at ``sample_rate`` from its surroundings.

    Returns ``(channels, T)``; identical to the input beyond ``margin`` s from the region. ``progress(n)`` is
    called after every sampling step (``steps`` calls in all). ``level_band`` (seconds) corrects the decoded
    level on that much original audio each side (``guidance.windowing.level_correction``).
    """
    from guidance.tasks import infill

    return _edit_region(models, audio, sample_rate, start, end, margin, infill,
                        {**_sampler_kwargs(steps, seed, xi, progress), "level_band_s": level_band}, long_task=infill_chunked)


def window_plan(start: int, end: int, total: int, window: int, margin: int) -> list[tuple[int, int, int]]:
    """Windows ``(w0, gen_start, gen_stop)`` (samples) that infill [start, end) when it is longer than one window.

    Each window keeps half a window of already-final audio on its left as context and generates the rest of
    itself; the last one also sees the original audio after ``end`` (plus ``margin``) on its right.
    """
    context, plan, pos = window // 2, [], start
    while pos < end:
        w0 = max(0, pos - context)
        final = min(end + margin, total) <= w0 + window
        stop = end if final else w0 + window
        plan.append((w0, pos, stop))
        pos = stop
    return plan


def windows_needed(models: Models, start: float, end: float, duration: float, margin: float = DEFAULT_MARGIN) -> int:
    """How many model windows (each ``steps`` sampling steps) :func:`inpaint` runs for [start, end) s of a
    ``duration``-second file: the progress bar's total is ``steps`` times this."""
    if end - start <= max_region(models, margin) + 1e-9:
        return 1
    s, e, m, n = (int(round(x * SAMPLE_RATE)) for x in (start, end, margin, duration))
    return len(window_plan(s, e, n, models.window_samples, m))


def infill_chunked(em: "EditModel", audio: torch.Tensor, start_s: float, end_s: float, *, margin_s: float, **kw) -> torch.Tensor:
    """Infill a region longer than one window of ``audio`` ``(1, 2, N)``, window after window (:func:`window_plan`).

    Each window is one guidance infill problem (``guidance.tasks.solve``) whose unknown part runs to the
    window's end, so nothing of the original region leaks in; the next window continues from it. Outside
    [start − margin, end + margin) the result is the input, bit for bit.
    """
    from guidance.tasks import EditProblem, solve

    sr, window, n = em.sample_rate, em.window, audio.shape[-1]
    s, e, m = (int(round(x * sr)) for x in (start_s, end_s, margin_s))
    out = audio.clone()
    for w0, pos, stop in window_plan(s, e, n, window, m):
        chunk = torch.nn.functional.pad(out[..., w0 : w0 + window], (0, max(0, w0 + window - n)))
        final = stop == e
        mask = torch.ones_like(chunk[:, :1])
        mask[..., pos - w0 : (stop - w0 if final else window)] = 0.0
        generated = solve(EditProblem(chunk * mask, mask), em, margin=m, **kw)
        lo, hi = max(0, pos - m), min(n, stop + m) if final else stop
        out[..., lo:hi] = generated[..., lo - w0 : hi - w0]
    return out


def regenerate(
    models: Models, audio: torch.Tensor, sample_rate: int, start: float, end: float, *, steps: int = 50, seed: int = 0,
    xi: float | None = None, margin: float = DEFAULT_MARGIN, strength: float = 1.0, level_band: float | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` starting from the original there; ``(channels, T)``.
    ``strength`` < 1 keeps more of the original (``guidance.tasks.solve``); ``level_band`` as in :func:`inpaint`."""
    from guidance.tasks import regenerate as regenerate_task

    return _edit_region(models, audio, sample_rate, start, end, margin, regenerate_task,
                        {**_sampler_kwargs(steps, seed, xi, progress), "strength": strength, "level_band_s": level_band})


def restyle(
    models: Models, audio: torch.Tensor, sample_rate: int, start: float, end: float, *, embedder: torch.nn.Module,
    reference: torch.Tensor | None = None, reference_rate: int = SAMPLE_RATE, target_class: int | None = None,
    weight: float = 1.0, classifier_weight: float | None = None, chroma_weight: float | None = None,
    strength: float | None = None, steps: int = 50, seed: int = 0, xi: float | None = None,
    guidance_step: str | None = None, margin: float = DEFAULT_MARGIN, level_band: float | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Re-create [start, end) s of ``audio`` ``(channels, T)`` in the style of ``reference`` ``(channels, Tr)`` at
    ``reference_rate`` and/or toward the ``embedder``'s class ``target_class``; ``(channels, T)``.

    ``embedder`` is the PaSST classifier (``guidance.passt``); ``classifier_weight`` defaults to
    ``guidance.style_transfer.CLASSIFIER_WEIGHT``; ``chroma_weight`` (default ``CHROMA_WEIGHT``, 0 turns it off)
    pulls the region toward its own original notes (``guidance.style_guidance.ChromaGuidance``); ``strength`` (default
    ``STYLE_STRENGTH``) as in :func:`regenerate`, whose guarantees this keeps. Unless ``models.eta`` says otherwise, the
    sampler runs at ``STYLE_ETA``; the guidance steps x̂0 (``guidance_step``, default ``STYLE_GUIDANCE_STEP``) by ``xi``
    (default ``STYLE_XI``; with ``"eps"`` the model's ξ). The style is measured on the region only (``guidance.style_transfer.restyle``).
    """
    from guidance.style_transfer import (CHROMA_WEIGHT, CLASSIFIER_WEIGHT, STYLE_ETA, STYLE_GUIDANCE_STEP, STYLE_STRENGTH,
                                         STYLE_XI, restyle as restyle_task)

    classifier_weight = CLASSIFIER_WEIGHT if classifier_weight is None else classifier_weight
    chroma_weight = CHROMA_WEIGHT if chroma_weight is None else chroma_weight
    guidance_step = guidance_step or STYLE_GUIDANCE_STEP
    if xi is None and guidance_step == "x0":  # an ε̂ step keeps the model's own ξ
        xi = STYLE_XI
    ref = None if reference is None else to_model_audio(reference, reference_rate)
    task_kwargs = {"reference": ref, "target_class": target_class, "weight": weight, "classifier_weight": classifier_weight,
                   "chroma_weight": chroma_weight, "strength": STYLE_STRENGTH if strength is None else strength,
                   "eta": STYLE_ETA if models.eta is None else models.eta, "guidance_step": guidance_step,
                   "level_band_s": level_band, **_sampler_kwargs(steps, seed, xi, progress)}
    return _edit_region(models, audio, sample_rate, start, end, margin, partial(restyle_task, embedder=embedder), task_kwargs)


def continue_audio(
    models: Models, audio: torch.Tensor, sample_rate: int, *, context: float = 2.4, steps: int = 50, seed: int = 0,
    xi: float | None = None, margin: float = DEFAULT_MARGIN, progress: Progress | None = None,
) -> torch.Tensor:
    """``audio`` ``(channels, T)`` followed by one model window of continuation (minus the context), same format.

    The input is kept bit for bit except its last ``margin`` seconds, where it crossfades into the new audio.
    """
    from guidance.tasks import continuation
    from guidance.windowing import paste_known

    channels, total = audio.shape
    ctx = min(total, int(round(context * sample_rate)))
    if ctx < 1:
        raise InputError(f"--context {context:g} s is shorter than one sample")
    tail_in = audio[:, total - ctx :]
    tail = to_model_audio(tail_in, sample_rate)
    out = continuation(edit_model(models), tail, context_s=tail.shape[-1] / SAMPLE_RATE, margin_s=margin,
                       **_sampler_kwargs(steps, seed, xi, progress))
    new_len = ctx + int(round((out.shape[-1] - tail.shape[-1]) * sample_rate / SAMPLE_RATE))
    back = from_model_audio(out, sample_rate, channels, new_len).to(audio.dtype)
    mask = torch.zeros(1, 1, new_len)
    mask[..., :ctx] = 1.0
    known = torch.nn.functional.pad(tail_in, (0, new_len - ctx))
    pasted = paste_known(known.unsqueeze(0), back.unsqueeze(0), mask, int(round(margin * sample_rate)))[0]
    return torch.cat([audio[:, : total - ctx], pasted], dim=-1)


def transition(
    models: Models, a: torch.Tensor, b: torch.Tensor, sample_rate: int, *, fade: float = 2.5, steps: int = 50, seed: int = 0,
    xi: float | None = None, margin: float = DEFAULT_MARGIN, strength: float = 1.0, progress: Progress | None = None,
) -> torch.Tensor:
    """Track ``a`` then ``b`` (both ``(channels, T)`` at ``sample_rate``) joined by a regenerated ``fade``-second
    crossfade; returns ``(channels, Ta + Tb − fade)``. At 44.1 kHz, A and B are untouched farther than ``margin``
    seconds from the crossfade; at other rates the model window is resampled, so only outside the window."""
    from guidance.tasks import transition as transition_task

    em = edit_model(models)
    channels = a.shape[0]
    fade_n = int(round(fade * sample_rate))
    win = int(-(-models.window_samples * sample_rate // SAMPLE_RATE)) + 1
    if not 0 < fade_n <= min(a.shape[1], b.shape[1]):
        raise InputError(f"a {fade:g} s transition needs both tracks at least that long "
                         f"(got {a.shape[1] / sample_rate:.2f} s and {b.shape[1] / sample_rate:.2f} s)")
    a_tail, b_head = a[:, max(0, a.shape[1] - win) :], b[:, :win]
    # Tracks shorter than a window are padded with silence for the model and cropped back afterwards.
    pad_a, pad_b = win - a_tail.shape[1], win - b_head.shape[1]
    a_in = torch.nn.functional.pad(a_tail, (pad_a, 0))
    b_in = torch.nn.functional.pad(b_head, (0, pad_b))
    joined = transition_task(em, to_model_audio(a_in, sample_rate), to_model_audio(b_in, sample_rate), fade_s=fade,
                             margin_s=margin, strength=strength, **_sampler_kwargs(steps, seed, xi, progress))
    middle = from_model_audio(joined, sample_rate, channels, 2 * win - fade_n).to(a.dtype)
    middle = middle[:, pad_a : middle.shape[1] - pad_b]
    return torch.cat([a[:, : a.shape[1] - a_tail.shape[1]], middle, b[:, b_head.shape[1] :]], dim=-1)


# Stems that hand over first come first: the accompaniment swaps early and the melody last, so the old
# tune is heard over the new harmony before it gives way (the order a DJ crossfading stems would use).
STEM_ORDER = ("PIANO", "BRIDGE", "DRUMS", "BASS", "MELODY")


def stem_schedule(names: list[str], at: float, length: float, fade: float) -> dict[str, float]:
    """Centre (seconds, output timeline) of each stem's crossfade inside [at, at + length]: evenly spread in
    :data:`STEM_ORDER` order (unknown names between the accompaniment and the melody, alphabetically)."""
    rank = {name: i for i, name in enumerate(STEM_ORDER)}
    melody = rank["MELODY"]
    ordered = sorted(names, key=lambda n: (rank.get(n.upper(), melody - 0.5), n))
    if len(ordered) == 1:
        return {ordered[0]: at + length / 2}
    first, last = at + fade / 2, at + length - fade / 2
    return {n: first + i * (last - first) / (len(ordered) - 1) for i, n in enumerate(ordered)}


def transition_stems(
    models: Models, stems_a: dict[str, torch.Tensor], stems_b: dict[str, torch.Tensor], sample_rate: int, *,
    at: float, length: float, b_start: float = 0.0, fade: float = 2.5, steps: int = 50, seed: int = 0,
    xi: float | None = None, margin: float = DEFAULT_MARGIN, progress: Progress | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Hand song A over to song B stem by stem; stems are ``name -> (channels, T)`` at ``sample_rate``.

    The output plays A until ``at`` s and B (from its ``b_start`` s) after ``at + length`` s. In between, each
    stem crossfades on its own schedule (:func:`stem_schedule`) through a ``fade``-second region that the model
    regenerates with the transition task, blended over ``margin`` s each side. A stem missing from one song is
    silence there (it fades in or out).
    Returns the output stems, all ``(channels, at + len(B) − b_start)``, and each stem's crossfade centre.
    """
    if not stems_a or not stems_b:
        raise InputError("transition-stems needs at least one stem in each song")
    fade = min(fade, length)
    if not length > 0 or not fade > 0:
        raise InputError(f"--length {length:g} must be positive")
    len_a = max(x.shape[1] for x in stems_a.values())
    len_b = max(x.shape[1] for x in stems_b.values())
    channels = max(x.shape[0] for x in (*stems_a.values(), *stems_b.values()))
    at_n, b0_n = int(round(at * sample_rate)), int(round(b_start * sample_rate))
    if at + length > len_a / sample_rate + 1e-9:
        raise InputError(f"--at {at:g} + --length {length:g} s runs past the end of song A ({len_a / sample_rate:.2f} s); pass an earlier --at")
    if b_start + length > len_b / sample_rate + 1e-9:
        raise InputError(f"--b-start {b_start:g} + --length {length:g} s runs past the end of song B ({len_b / sample_rate:.2f} s)")
    total = at_n + len_b - b0_n

    def fit(x: torch.Tensor | None, n: int) -> torch.Tensor:
        if x is None:
            return torch.zeros(channels, n)
        x = x.expand(channels, -1) if x.shape[0] == 1 else x
        return torch.nn.functional.pad(x, (0, max(0, n - x.shape[1])))[:, :n]

    names = sorted(set(stems_a) | set(stems_b))
    centres = stem_schedule(names, at, length, fade)
    out = {}
    for i, name in enumerate(names):
        a, b = fit(stems_a.get(name), len_a), fit(stems_b.get(name), len_b)
        c = centres[name]
        a_end = int(round((c + fade / 2) * sample_rate))  # A plays up to the end of this stem's fade ...
        b_from = int(round((c - fade / 2) * sample_rate)) - at_n + b0_n  # ... B from its start
        joined = transition(models, a[:, :a_end], b[:, b_from:], sample_rate, fade=fade, steps=steps, seed=seed + i,
                            xi=xi, margin=margin, progress=progress)
        out[name] = fit(joined, total)
    return out, centres


def match_format(audio: torch.Tensor, sample_rate: int, target_rate: int, channels: int) -> torch.Tensor:
    """``(c, T)`` at ``sample_rate`` → ``(channels, T')`` at ``target_rate`` (mono ↔ stereo by mean/duplicate)."""
    if audio.shape[0] != channels:
        audio = audio.mean(0, keepdim=True) if channels == 1 else audio.expand(channels, -1)
    if sample_rate != target_rate:
        import torchaudio

        audio = torchaudio.functional.resample(audio.float(), sample_rate, target_rate)
    return audio.contiguous()
