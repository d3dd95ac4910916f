"""CPU speed and memory of the spectrogram VAE: real-time factor of encode + decode, and peak RSS.

    python benchmarks/vae_speed.py [--checkpoint DIR] [--threads 2] [--seconds 60] [--memory-minutes 10]

The machine is shared, so every timing is the median of ``--repeats`` runs and is also given as a ratio
to a plain STFT → iSTFT round trip of the same audio timed in the same run (less sensitive to load).
Peak memory is the max RSS of a fresh child process that encodes and decodes ``--memory-minutes``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vae import SpectrogramVAE  # noqa: E402

SR = 44100


def load(checkpoint: str | None, preset: str) -> SpectrogramVAE:
    return SpectrogramVAE.from_pretrained(checkpoint) if checkpoint else SpectrogramVAE.from_preset(preset).eval()


CPU_SECONDS: dict[str, float] = {}


def timed(fn, repeats: int, name: str = "") -> float:
    """Median wall seconds; the median CPU seconds of this process go to ``CPU_SECONDS[name]``."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_SECONDS[name] = statistics.median(cpu)
    return statistics.median(times)


def memory_child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, args.preset)
    audio = torch.randn(1, 2, int(args.memory_minutes * 60 * SR), generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.inference_mode():
        out = model.decode(model.encode(audio).mode(), audio.shape[-1])
    assert out.shape == audio.shape
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: random weights, same cost)")
    p.add_argument("--preset", default="small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-minutes", type=float, default=10.0)
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.memory_child:
        return memory_child(args)

    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, args.preset)
    audio = torch.randn(1, 2, int(args.seconds * SR), generator=torch.Generator().manual_seed(0)) * 0.1
    window = torch.hann_window(model.config.n_fft)
    with torch.inference_mode():
        model.decode(model.encode(audio[..., : 4 * SR]).mode())  # warm-up
        z = model.encode(audio).mode()
        t_enc = timed(lambda: model.encode(audio), args.repeats, "encode")
        t_dec = timed(lambda: model.decode(z, audio.shape[-1]), args.repeats, "decode")
        # the checkpoint's phase refinement is a decode-time choice: its cost, timed in the same run
        t_dec_plain = timed(
            lambda: model.decode(z, audio.shape[-1], phase_iterations=0), args.repeats, "decode_without_refinement"
        )
        t_both = timed(lambda: model.decode(model.encode(audio).mode(), audio.shape[-1]), args.repeats, "encode_decode")

        def stft_round_trip():
            spec = torch.stft(audio[0], model.config.n_fft, model.config.hop_length, window=window, return_complex=True)
            torch.istft(spec, model.config.n_fft, model.config.hop_length, window=window, length=audio.shape[-1])

        t_ref = timed(stft_round_trip, args.repeats, "stft_round_trip")

    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            "--threads",
            str(args.threads),
            "--preset",
            args.preset,
            "--memory-minutes",
            str(args.memory_minutes),
        ]
        + (["--checkpoint", args.checkpoint] if args.checkpoint else []),
        capture_output=True,
        text=True,
        check=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    result = {
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "seconds": args.seconds,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "encode_s": t_enc,
        "decode_s": t_dec,
        "encode_decode_s": t_both,
        "phase_iterations": model.config.phase_iterations,
        "decode_without_refinement_s": t_dec_plain,
        "real_time_factor": t_both / args.seconds,
        "x_real_time": args.seconds / t_both,
        "stft_istft_round_trip_s": t_ref,
        "ratio_to_stft_round_trip": t_both / t_ref,
        "cpu_seconds": CPU_SECONDS,
        # on a busy machine wall time overstates the cost; CPU seconds / threads is what an idle machine would take
        "encode_decode_idle_estimate_s": CPU_SECONDS["encode_decode"] / args.threads,
        "memory_minutes": args.memory_minutes,
        "peak_rss_mb": peak,
        "targets": {"encode_decode_60s_under_2s": t_both * 60 / args.seconds < 2.0, "peak_under_2gb": peak < 2048},
    }
    print(
        f"encode {t_enc:.2f} s + decode {t_dec:.2f} s; encode+decode {t_both:.2f} s for {args.seconds:.0f} s of stereo "
        f"(RTF {result['real_time_factor']:.4f}, {result['x_real_time']:.0f}x real time) on {args.threads} threads, "
        f"1-min load {result['load_avg_1min']:.1f}"
    )
    print(
        f"CPU time of encode+decode {CPU_SECONDS['encode_decode']:.2f} s over {args.threads} threads "
        f"(idle-machine estimate {result['encode_decode_idle_estimate_s']:.2f} s)"
    )
    print(
        f"decode with {model.config.phase_iterations} phase iteration(s) {t_dec:.2f} s, without {t_dec_plain:.2f} s "
        f"(ratio {t_dec / t_dec_plain:.2f})"
    )
    print(f"same run: STFT+iSTFT round trip {t_ref:.2f} s; VAE / round trip = {result['ratio_to_stft_round_trip']:.1f}")
    print(f"peak RSS for {args.memory_minutes:g} min of audio: {peak:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
