#!/usr/bin/env bash
# Round 2 of the shipped checkpoints: the DiT trains from VAE latents, which are 128x smaller than audio,
# so far more music travels as a latent cache than as audio. Render here, encode here with the round-1
# VAE, carry the cache; the waveform U-Net reuses round 1's Vorbis clips.
set -euo pipefail
cd "$(dirname "$0")/../.."
POP909=${POP909:-../shared/data/pop909}
BUILD=build/gpu; CARRY=.carry/round2
mkdir -p $BUILD $CARRY
if [ "${1:-}" != "--encode-only" ]; then
    python -m musicprod_common.prerender --pop909 $POP909 --split train --seconds 6 --count ${DIT_CLIPS:-600} --seed 21 --out $BUILD/dit_flac --workers 2
fi
if [ -d checkpoints/vae ]; then
    python -m latent_diffusion.latent_cache --vae checkpoints/vae --data $BUILD/dit_flac --out $CARRY/latents.safetensors
fi
