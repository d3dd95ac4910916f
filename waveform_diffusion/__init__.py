"""Waveform diffusion: a 1D U-Net on raw stereo audio, the baseline of Levy et al. 2023."""

from .config import PRESETS, UNetConfig, unet_preset
from .unet import WaveformUNet, build_unet

__all__ = ["PRESETS", "UNetConfig", "WaveformUNet", "build_unet", "unet_preset"]
