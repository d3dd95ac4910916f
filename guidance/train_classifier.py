"""Train the PaSST style classifier on pre-rendered POP909 clips.

    python -m guidance.train_classifier --preset small --data DIR --valid DIR --out runs/classifier \
        --max-minutes 8 --mixed-precision bf16
    accelerate launch -m guidance.train_classifier ...   # same flags, any number of processes

``DIR`` is a folder written by ``python -m musicprod_common.prerender`` (equal-length FLAC clips and a
``manifest.jsonl`` naming each clip's ``file`` and ``style``). Targets: the style (multi-class, cross-entropy) and the
GM instrument families of its
tracks (multi-label, BCE), read from the manifest's ``programs`` when present, else from the style table.
Augmentation: a random crop and a random gain per example, drawn from the loop's per-draw key so runs
are exact to resume. Exports ``OUT/final`` (EMA weights) and, with ``--valid``, ``OUT/valid_metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import soundfile as sf
import torch
import torch.nn.functional as F
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from musicprod_common.datasets import SAMPLE_RATE, AudioFolderSegments
from musicprod_common.errors import InputError
from musicprod_common.files import write_json
from musicprod_common.styles import STYLE_NAMES, STYLES
from musicprod_common.training import TrainConfig, add_train_args, example_rand, train, train_config_from_args

from .passt import GM_FAMILIES, PaSST, PasstConfig, from_pretrained, passt_config

MANIFEST = "manifest.jsonl"

# Defaults per preset: (steps, global batch size, learning rate). Decoding the 6 s FLAC clips is the
# bottleneck, not the GPU: ~25-50 ms per clip per core (measured here, 2 busy cores), so ~14 loader workers
# feed roughly 5-10 steps/s of batch 64, i.e. 2400-4800 steps in 8 minutes. With --max-minutes the LR anneals
# over whichever ends first, steps or budget, so a budgeted run can pass a large --steps.
TRAIN_DEFAULTS: dict[str, tuple[int, int, float]] = {
    "tiny": (20, 4, 1e-3),
    "small": (4000, 64, 3e-4),
    "passt-s": (20000, 32, 1e-4),
}
DEFAULT_WORKERS = max(0, min(14, (os.cpu_count() or 1) - 2))


def read_manifest(folder: str | Path) -> list[dict[str, Any]]:
    """Rows of ``folder/manifest.jsonl`` (as written by ``musicprod_common.prerender``)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: manifest not found; pass a folder of rendered clips with a {MANIFEST}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{n}: not valid JSON ({err.msg}); regenerate the manifest") from err
        if "style" not in row or "file" not in row:
            raise InputError(
                f"{path}:{n}: needs 'file' and 'style'; re-render with python -m musicprod_common.prerender"
            )
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: the manifest is empty; render some clips first")
    return rows


def family_targets(row: Mapping[str, Any]) -> torch.Tensor:
    """Multi-hot ``(len(GM_FAMILIES),)`` of instrument families; all −1 (ignored) when unknown.

    From the manifest's ``programs`` (GM programs of the clip's tracks) and ``drums`` when present,
    else from the named style's programs in :data:`musicprod_common.styles.STYLES`.
    """
    target = torch.zeros(len(GM_FAMILIES))
    programs, drums = row.get("programs"), row.get("drums")
    if isinstance(programs, Mapping):
        programs = list(programs.values())
    if programs is None and row.get("style") in STYLES:
        style = STYLES[row["style"]]
        programs = [style.melody, style.bridge, style.piano] + ([style.bass] if style.bass is not None else [])
        drums = style.drums if drums is None else drums
    if programs is None:
        return torch.full((len(GM_FAMILIES),), -1.0)
    for p in programs:
        if p is not None and 0 <= int(p) < 128:
            target[int(p) // 8] = 1.0
    target[GM_FAMILIES.index("drums")] = float(bool(drums))
    return target


class StyleClips(Dataset):
    """Clips of a rendered folder as ``{"audio": (2, T) 44.1 kHz, "style": int, "families": (17,)}``.

    Audio and style come from :class:`musicprod_common.datasets.AudioFolderSegments` (one segment per
    clip: the segment length is the clips' ``seconds`` from the manifest); the manifest row of each
    clip adds the instrument-family targets.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        folder: str | Path,
        class_names: Sequence[str] = STYLE_NAMES,
        *,
        preload: bool = False,
        progress: bool = True,
    ):
        self.folder = Path(folder)
        self.rows = read_manifest(self.folder)
        self.class_names = tuple(class_names)
        if tuple(self.class_names[: len(STYLE_NAMES)]) != STYLE_NAMES:
            raise InputError(
                f"classifier classes {self.class_names} are not the renderer's styles {STYLE_NAMES}; retrain with this "
                "version"
            )
        seconds = self.rows[0].get("seconds") or self._first_clip_seconds()
        self.source = AudioFolderSegments(self.folder, float(seconds))
        self.row_of_file = {row.get("file"): row for row in self.rows}
        # Decoding FLAC costs more than a CPU training step of the small model, so a CPU run decodes every
        # clip once and keeps it as int16 (1500 six-second clips: 1.6 GB).
        self.cache: torch.Tensor | None = None
        if preload:
            self.cache = torch.stack(
                [
                    (self.source[i]["audio"].clamp(-1, 32767 / 32768) * 32768).round().to(torch.int16)
                    for i in tqdm(range(len(self.source)), desc="decoding clips", leave=False, disable=not progress)
                ]
            )

    def _first_clip_seconds(self) -> float:
        path = self.folder / str(self.rows[0].get("file"))
        try:
            info = sf.info(str(path))
        except Exception as err:
            raise InputError(
                f"{path}: cannot read the first clip of the manifest ({err}); re-render the folder"
            ) from err
        return info.frames / info.samplerate

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        k, _ = self.source.entries[index]
        if self.cache is None:
            item = self.source[index]
        else:
            item = {
                "audio": self.cache[index].float() / 32768,
                "style": torch.tensor(self.source.labels[self.source.files[k]]),
            }
        row = self.row_of_file.get(self.source.files[k].name, {})
        return {"audio": item["audio"], "style": item["style"], "families": family_targets(row)}


@dataclasses.dataclass
class Augment:
    crop_seconds: float = 5.0  # random crop length (PaSST trains on crops; the time embedding handles any length)
    gain_db: float = 6.0  # uniform random gain in ±gain_db
    label_smoothing: float = 0.1
    family_weight: float = 0.5  # weight of the multi-label family BCE next to the style cross-entropy


def random_crop_gain(audio: torch.Tensor, keys: torch.Tensor, sample_rate: int, aug: Augment) -> torch.Tensor:
    """Per-example random crop to ``crop_seconds`` and gain: ``(B, C, T)`` → ``(B, C, n)``."""
    b, c, t = audio.shape
    n = min(t, int(aug.crop_seconds * sample_rate))
    u = example_rand(keys, (2,), salt=11, device=audio.device)  # (B, 2)
    starts = torch.clamp((u[:, 0] * (t - n + 1)).long(), max=t - n)
    positions = starts[:, None, None] + torch.arange(n, device=audio.device)  # (B, 1, n)
    crops = torch.gather(audio, 2, positions.expand(b, c, n))
    gain = 10.0 ** ((2.0 * u[:, 1] - 1.0) * aug.gain_db / 20.0)
    return crops * gain[:, None, None].to(crops.dtype)


def make_loss(sample_rate: int, aug: Augment):
    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        audio = random_crop_gain(batch["audio"], batch["key"], sample_rate, aug)
        out = model(audio)
        logits = out["logits"].float()
        style_loss = F.cross_entropy(logits, batch["style"], label_smoothing=aug.label_smoothing)
        logs = {
            "style_ce": float(style_loss.detach()),
            "style_acc": float((logits.argmax(-1) == batch["style"]).float().mean()),
        }
        loss = style_loss
        if "family_logits" in out:
            targets = batch["families"].float()
            known = (targets >= 0).float()
            bce = F.binary_cross_entropy_with_logits(
                out["family_logits"].float(), targets.clamp(min=0), reduction="none"
            )
            family_loss = (bce * known).sum() / known.sum().clamp(
                min=1.0
            )  # always in the graph (DDP), 0 without labels
            loss = loss + aug.family_weight * family_loss
            logs["family_bce"] = float(family_loss.detach())
        return loss, logs

    return loss_fn


def train_defaults(preset: str) -> TrainConfig:
    """The preset's TrainConfig defaults (steps, batch and LR from TRAIN_DEFAULTS)."""
    steps, batch, lr = TRAIN_DEFAULTS.get(preset, TRAIN_DEFAULTS["small"])
    return TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=lr,
        weight_decay=0.05,
        warmup_steps=200,
        num_workers=DEFAULT_WORKERS,
        checkpoint_every=500,
        log_every=25,
    )


def build_parser(preset: str = "small") -> argparse.ArgumentParser:
    """Flags; the TrainConfig defaults are those of ``preset``."""
    p = argparse.ArgumentParser(prog="python -m guidance.train_classifier", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset", default="small", help="PaSST preset: tiny, small, passt-s (sets the default steps, batch and LR)"
    )
    p.add_argument("--data", required=True, help="folder of training clips with manifest.jsonl")
    p.add_argument("--valid", help="folder of validation clips (accuracy written to OUT/valid_metrics.json)")
    p.add_argument("--out", required=True, help="run folder (resumes if it holds state.pt)")
    p.add_argument("--crop-seconds", type=float, default=Augment.crop_seconds)
    p.add_argument("--gain-db", type=float, default=Augment.gain_db)
    p.add_argument(
        "--patchout-time",
        type=int,
        help="time columns of the patch grid dropped per training example "
        "(default: the preset's); more is faster and regularises more",
    )
    p.add_argument(
        "--patchout-freq", type=int, help="frequency rows dropped per training example (default: the preset's)"
    )
    p.add_argument(
        "--preload",
        action="store_true",
        help="decode every clip into memory once (int16) instead of per step; "
        "for CPU runs, where decoding is the bottleneck",
    )
    p.add_argument("--no-progress", action="store_true")
    add_train_args(p, train_defaults(preset))
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="small")
    preset = pre.parse_known_args(argv)[0].preset
    return build_parser(preset).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except InputError as err:
        sys.stderr.write(f"train_classifier: error: {err}\n")
        return 2
    if summary.get("valid") is not None:
        print(json.dumps(summary["valid"]))
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    dataset = StyleClips(args.data, preload=args.preload, progress=not args.no_progress)
    if args.valid:
        StyleClips(args.valid)  # a bad validation folder fails now, not after the training run
    patchout = {
        name: value
        for name, value in (("patchout_time", args.patchout_time), ("patchout_freq", args.patchout_freq))
        if value is not None
    }
    cfg: PasstConfig = passt_config(args.preset, input_sample_rate=dataset.sample_rate, **patchout)
    train_cfg = train_config_from_args(args)
    train_cfg = dataclasses.replace(train_cfg, warmup_steps=min(train_cfg.warmup_steps, max(1, train_cfg.steps // 10)))
    model = PaSST(cfg)
    model.head_dist.requires_grad_(False)  # official-layout head the forward pass never uses; keeps DDP happy
    aug = Augment(crop_seconds=args.crop_seconds, gain_db=args.gain_db)
    summary = train(
        model,
        make_loss(dataset.sample_rate, aug),
        dataset,
        train_cfg,
        args.out,
        model_config=cfg,
        parameters=lambda m: [p for p in m.parameters() if p.requires_grad],
        progress=not args.no_progress,
    )
    summary["valid"] = None
    out = Path(args.out)
    if args.valid and (out / "final").is_dir():
        if PartialState().is_main_process:
            classifier = from_pretrained(out / "final")
            device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
            metrics = evaluate_folder(classifier.to(device), args.valid, batch_size=32, num_workers=args.num_workers)
            write_json(out / "valid_metrics.json", metrics)
            summary["valid"] = metrics
    return summary


@torch.no_grad()
def evaluate_folder(model: PaSST, folder: str | Path, *, batch_size: int = 32, num_workers: int = 0) -> dict[str, Any]:
    """Accuracy of ``model`` on every clip in ``folder``; the model runs on its own device, in eval mode (the
    training's validation, and ``python -m guidance.evaluate_classifier``)."""
    dataset = StyleClips(folder, model.cfg.class_names)
    if dataset.sample_rate != model.cfg.input_sample_rate:
        model.cfg.input_sample_rate = dataset.sample_rate  # the front end resamples whatever rate it is told
    model.eval()
    device = next(model.parameters()).device
    k = model.cfg.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        logits = model.classify(batch["audio"].to(device)).float().cpu()
        for t, p in zip(batch["style"].tolist(), logits.argmax(-1).tolist()):
            confusion[t, p] += 1
    n = int(confusion.sum())
    names = list(model.cfg.class_names) or [str(i) for i in range(k)]
    per_class = {
        names[i]: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None) for i in range(k)
    }
    return {
        "n": n,
        "accuracy": float(confusion.diag().sum() / max(n, 1)),
        "per_class": per_class,
        "class_names": names,
        "confusion": confusion.tolist(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
