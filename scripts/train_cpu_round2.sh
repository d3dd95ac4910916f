#!/usr/bin/env bash
# The shipped DiT and waveform U-Net, trained on the CPU after the VAE (this session had no GPU).
# The DiT reads VAE latents of the training renders (encoded first, into runs/dit/latents.safetensors).
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
DATA=${DATA:-build/gpu/dit_data}
python -m latent_diffusion.train --preset small --vae runs/vae/final --data $DATA --out runs/dit --steps 1000000 \
    --max-minutes ${DIT_MINUTES:-22} --batch-size 16 --warmup-steps 100 --cpu --no-progress > runs/dit.log 2>&1 &
while pgrep -f "symbolic.train_" > /dev/null; do sleep 5; done
python -m waveform_diffusion.train --preset small --data $DATA --out runs/unet --steps 1000000 \
    --max-minutes ${UNET_MINUTES:-15} --batch-size 4 --warmup-steps 50 --cpu --no-progress > runs/unet.log 2>&1
wait
