"""Guided diffusion sampling for every musicprod model family (Levy et al. 2023, Alg. 2), and the audio tasks.

Typical use::

    from guidance import Denoiser, EditModel, IdentityCodec, infill, sampler_preset
    model = EditModel(Denoiser(net), IdentityCodec(), window=2**16, sampler=sampler_preset("waveform"))
    out = infill(model, audio, sr, 2.0, 4.0)          # audio (channels, N) at any rate -> the same format
    out = infill(model, audio, sr, 2.0, 4.0, sampler=model.sampler.but(steps=100, xi=0.0))   # other settings

Song-aware inpainting (the song's own passages first) is :mod:`guidance.song`; stem transitions
:mod:`guidance.transitions`; style edits :mod:`guidance.style_transfer`.
"""

from .codec import Codec, IdentityCodec, VAECodec, latent_mask
from .config import XI_LATENT, XI_WAVEFORM, SamplerConfig, sampler_preset
from .denoiser import CFGDenoiser, CosineSchedule, Denoised, Denoiser, DiscreteSchedule, linear_betas
from .objective import v_objective_loss
from .sampler import ddim_step, denoise, renoise, sample
from .schedule import broadcast_like, cosine_alpha_sigma, resampling_timesteps, uniform_timesteps
from .tasks import (
    K_PRIOR,
    EditModel,
    EditProblem,
    ReplaceProjection,
    constant_power_crossfade,
    continuation,
    continuation_problem,
    infill,
    infill_problem,
    initial_noise,
    latent_edit_model,
    neighbour_crossfade,
    regenerate,
    regenerate_problem,
    solve,
    transition,
    transition_problem,
    waveform_edit_model,
)
from .terms import CroppedAudioL1, CroppedAudioMel, Guidance, L1Distance
from .windowing import (
    distance_to_unknown,
    edit_long,
    known_weight,
    level_correction,
    paste_known,
    place_window,
    window_plan,
)

__all__ = [
    "Codec",
    "IdentityCodec",
    "VAECodec",
    "latent_mask",
    "SamplerConfig",
    "sampler_preset",
    "CFGDenoiser",
    "CosineSchedule",
    "Denoised",
    "Denoiser",
    "DiscreteSchedule",
    "linear_betas",
    "v_objective_loss",
    "ddim_step",
    "denoise",
    "renoise",
    "sample",
    "broadcast_like",
    "cosine_alpha_sigma",
    "resampling_timesteps",
    "uniform_timesteps",
    "K_PRIOR",
    "EditModel",
    "EditProblem",
    "ReplaceProjection",
    "constant_power_crossfade",
    "continuation",
    "continuation_problem",
    "infill",
    "infill_problem",
    "latent_edit_model",
    "neighbour_crossfade",
    "waveform_edit_model",
    "initial_noise",
    "regenerate",
    "regenerate_problem",
    "solve",
    "transition",
    "transition_problem",
    "XI_LATENT",
    "XI_WAVEFORM",
    "CroppedAudioL1",
    "CroppedAudioMel",
    "Guidance",
    "L1Distance",
    "distance_to_unknown",
    "edit_long",
    "known_weight",
    "level_correction",
    "paste_known",
    "place_window",
    "window_plan",
]
