"""Typed dataclass configs: named presets, and a strict round trip through JSON."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from .errors import InputError
from .files import write_json

C = TypeVar("C")


def pick_preset(presets: Mapping[str, C], name: str, what: str = "preset") -> C:
    """Look a name up in a registry dict; an unknown name lists the valid ones."""
    if name not in presets:
        raise InputError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(presets))}")
    return presets[name]


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build ``cls`` from a dict, refusing unknown keys and turning JSON lists back into tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise InputError(f"{cls.__name__}: unknown config keys {sorted(unknown)}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = config_from_dict(hint, value)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def save_config(config: Any, path: str | Path) -> None:
    write_json(path, config_to_dict(config))


def load_config(cls: type[C], path: str | Path) -> C:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the config ({err}); point at a folder with a valid config.json") from err
    return config_from_dict(cls, data)
