"""Loading and saving weights safely.

Model weights travel only as safetensors plus a JSON config, so a downloaded checkpoint cannot run code.
Training state (optimizer, scheduler, RNG) is a torch file read back with ``weights_only=True``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import load_config, save_config
from .errors import InputError
from .files import atomic_path

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
M = TypeVar("M", bound=torch.nn.Module)


def resolve_pretrained(path_or_hub_id: str | os.PathLike) -> Path:
    """A local folder as it is, or a Hugging Face Hub repo id fetched (or found in the local cache).

    Hub downloads use hf_transfer when it is installed. With ``HF_HUB_OFFLINE=1`` only the local cache
    is consulted, which is how the tests exercise this path without a network.
    """
    local = Path(path_or_hub_id)
    if local.is_dir():
        return local
    text = str(path_or_hub_id)
    if local.exists() or text.count("/") != 1 or text.startswith((".", "/")):
        raise InputError(
            f"{text}: not a checkpoint folder nor a hub id like 'org/name'; pass a folder with {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}"
        )
    os.environ.setdefault("HF_HUB_ENABLE_HF_TRANSFER", "1")
    # snapshot_download costs 0.3 s and every command imports this module: only a hub id pays it
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=text, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "*.md"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        raise InputError(
            f"{text}: could not fetch it from the Hugging Face Hub or its cache ({type(err).__name__}); check the id "
            "or pass a local folder"
        ) from err


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else (a pickle, a truncated file) is refused with one clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found; a checkpoint folder needs {WEIGHTS_NAME}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(
            f"{path}: not a valid safetensors file ({err}); it may be corrupt or truncated, re-download or retrain it"
        ) from err


def save_pretrained(
    model: torch.nn.Module, config: Any, folder: str | os.PathLike, *, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder``, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp))
    save_config(config, folder / CONFIG_NAME)
    return folder


def load_pretrained(path_or_hub_id: str | os.PathLike, config_cls: type, build: Callable[[Any], M]) -> M:
    """Build a model from its config and load weights into it, casting them to the model's dtype."""
    folder = resolve_pretrained(path_or_hub_id)
    config = load_config(config_cls, folder / CONFIG_NAME)
    model = build(config)
    state = load_weights(folder / WEIGHTS_NAME)
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"{folder / WEIGHTS_NAME}: weights do not match the config (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); use the config.json saved with them"
        )
    return model.eval()


def save_training_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read training state with ``weights_only=True``: a pickle carrying code is refused, not run."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise InputError(
            f"{path}: refused to load: it holds objects other than tensors and plain containers (possibly code); "
            "delete it and train again"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise InputError(
            f"{path}: cannot read the training state ({err}); it may be truncated, delete it to start over"
        ) from err
