"""Arguments and checks shared by the audio-editing subcommands (inpaint, continue, regenerate, transition...).

Everything here runs *before* a model is loaded, so bad input fails in milliseconds with one line
(:class:`InputError`, exit code 2) and never leaves an output behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from guidance.config import SamplerConfig, sampler_preset
from musicprod_common.audio import AUDIO_SUFFIXES, load_audio
from musicprod_common.errors import InputError
from musicprod_common.files import check_not_overwriting_input

from .models import MODEL_KINDS, default_checkpoints, load_models

if TYPE_CHECKING:
    from guidance.tasks import EditModel

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def unit_float(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def strength_float(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most 1 (1: from pure noise)")
    return value


def add_strength_arg(parser: argparse.ArgumentParser, edit: str = "infill") -> None:
    """``--strength``: how far from the original the sampler starts (SDEdit); for commands that start from a prior.
    Its default is the ``edit`` preset's (:func:`guidance.config.sampler_preset`)."""
    default = sampler_preset("latent", edit).strength
    paper = " (the paper's start, which keeps little)" if default == 1.0 else ""
    parser.add_argument(
        "--strength",
        type=strength_float,
        default=None,
        help="how much to change, in (0, 1]: the sampler starts at this noise level from the original, "
        f"so lower keeps more of it (default {default:g}{paper})",
    )


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def add_model_args(parser: argparse.ArgumentParser, *, default_threads: int | None = None) -> None:
    """``--model``, ``--checkpoints``, ``--steps``, ``--seed``, ``--guidance``, ``--eta``, ``--threads``: every
    model-driven command. The sampler's flags default to the presets (:func:`sampler_from_args`)."""
    latent, waveform, style = (sampler_preset(*k) for k in (("latent",), ("waveform",), ("latent", "style")))
    parser.add_argument(
        "--model",
        choices=MODEL_KINDS,
        default="latent",
        help="latent: DiT over VAE latents (default, fast); waveform: U-Net on raw audio (baseline)",
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help=f"folder with vae/, dit/, unet/ checkpoints (default: $MUSICPROD_CHECKPOINTS or {default_checkpoints()})",
    )
    parser.add_argument("--steps", type=positive_int, default=None, help=f"sampling steps (default {latent.steps})")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same output on the CPU"
    )
    parser.add_argument(
        "--guidance",
        type=non_negative_float,
        default=None,
        metavar="XI",
        help=f"guidance strength ξ (default: the paper's, {latent.xi:g} latent / {waveform.xi:g} waveform; "
        f"{style.xi:g} for style edits; 0 = projection only)",
    )
    parser.add_argument(
        "--eta",
        type=unit_float,
        default=None,
        help=f"sampler η: 0 = deterministic DDIM, 1 = DDPM-like (default: {latent.eta:g} latent, "
        f"{waveform.eta:g} waveform, {style.eta:g} for style edits)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default_threads,
        help="CPU threads for torch (default: "
        + ("torch's own" if default_threads is None else str(default_threads))
        + "; 1 is fastest on a busy 2-core machine)",
    )


def sampler_from_args(args: argparse.Namespace, edit: str = "infill", **changes: object) -> SamplerConfig:
    """The ``--model`` family's preset for ``edit``, with ``--steps``, ``--guidance``, ``--eta`` and ``changes`` applied
    where given (None keeps the preset's value)."""
    flags = dict(steps=args.steps, xi=args.guidance, eta=args.eta)
    return sampler_preset(args.model, edit).but(**{**flags, **changes})


def models_from_args(args: argparse.Namespace) -> "EditModel":
    """Set the thread count (the CLI owns global torch settings, the library never touches them) and load."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return load_models(args.model, args.checkpoints)


def check_input_file(path: str | os.PathLike, what: str = "a file") -> Path:
    """An existing regular file; ``what`` names what was expected in the error (e.g. "an audio file")."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass {what}")
    return path


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Load ``(channels, T)`` float32 and its rate, refusing what no command can use (one line each)."""
    path = check_input_file(path, "an audio file (for a folder of files use `musicprod inpaint-batch`)")
    audio, sr = load_audio(path)
    if audio.shape[0] > 2:
        raise InputError(f"{path}: has {audio.shape[0]} channels; only mono and stereo are supported, downmix it first")
    if not torch.isfinite(audio).all():
        raise InputError(f"{path}: contains NaN or infinite samples; repair or re-export the file")
    return audio, sr


def check_output_file(
    path: str | os.PathLike, *inputs: str | os.PathLike, suffixes: tuple[str, ...] = AUDIO_SUFFIXES, kind: str = "audio"
) -> Path:
    """A writable output path with a known suffix that is none of the inputs; probing leaves nothing behind."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(
            f"{path}: unknown {kind} format {path.suffix or '(no suffix)'}; use one of {', '.join(suffixes)}"
        )
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass an output file name like {path / 'out.wav'}")

    check_not_overwriting_input(path, *inputs)
    check_writable_dir(path.parent, for_path=path)
    return path


def check_writable_dir(folder: Path, *, for_path: Path | None = None, create: bool = False) -> Path:
    """Fail now, not after minutes of sampling, if ``folder`` cannot take a new file.

    Probes with a real temporary file (``os.access`` says yes to root even on read-only mounts).
    """
    shown = for_path or folder
    if create and not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as err:
            raise InputError(
                f"{shown}: cannot create the output folder ({err.strerror}); pick a writable output path"
            ) from err
    if not folder.is_dir():
        raise InputError(
            f"{shown}: the output folder {folder} does not exist or is not a folder; create it or pick another output "
            "path"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".musicprod-probe-", dir=folder)
    except OSError as err:
        raise InputError(f"{shown}: cannot write there ({err.strerror}); pick a writable output path") from err
    os.close(fd)
    os.unlink(probe)
    return folder


def parse_region(start: float, end: float, duration: float, path: str | os.PathLike) -> tuple[float, float]:
    """Check ``start < end`` and that the region lies inside a file of ``duration`` seconds."""
    if not start < end:
        raise InputError(f"--start {start:g} must be before --end {end:g}")
    if end > duration + 1e-9:
        raise InputError(
            f"{path}: region {start:g}-{end:g} s ends after the file ({duration:.2f} s); pass --end <= {duration:.2f}"
        )
    return start, end


@contextlib.contextmanager
def cleanup_on_error(*paths: Path) -> Iterator[None]:
    """Remove outputs this command created if it fails half-way (multi-file outputs such as stem folders)."""
    existed = {p: p.exists() for p in paths}
    try:
        yield
    except BaseException:
        for p in paths:
            if not existed[p] and p.exists() and p.is_file():
                p.unlink()
        raise
