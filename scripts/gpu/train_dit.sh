#!/usr/bin/env bash
# One GPU call: the latent DiT on a cache encoded on the CPU with the VAE that the earlier calls trained
# (carry .whl and the cache's folder), e.g.:
#   python -m latent_diffusion.train --vae runs/gpu5/vae/final --data build/gpu4/dit_flac \
#       --latents .carry/s5c/latents.safetensors --out runs/gpu5/dit --cache-only --cpu
#   LATENTS=.carry/s5c/latents.safetensors R=runs/gpu5 BUDGET=7.5 bash scripts/gpu/train_dit.sh
# (build/gpu4/dit_flac: prerender --split train --seconds 12 --count 2000 --seed 42, i.e. 4000 windows;
# the first GPU-trained DiT came from the defaults below).
# The loop draws fresh noise per draw, so a rerun trains the DiT properly from scratch; give it
# both caches (8000 windows, 33 MB each; copy the second into .carry/ first so it travels), e.g.
#   LATENTS=".carry/s4c/latents.safetensors .carry/s11/dit2_latents.safetensors" R=runs/gpu12 bash scripts/gpu/train_dit.sh
# To continue a shipped DiT (e.g. the known-frame conditioned one) instead of starting from the preset:
#   bash scripts/gpu/travel_light.sh dit      # then carry .whl and the cache; afterwards --restore
#   INIT=checkpoints/dit LATENTS=.carry/s13/dit_latents.safetensors LR=2e-4 R=/root/dit bash scripts/gpu/train_dit.sh
set -uo pipefail
BUDGET=${BUDGET:-7.5}
INIT=${INIT:-}
LR=${LR:-3e-4}
LATENTS=${LATENTS:-.carry/s4c/latents.safetensors}
R=${R:-runs/gpu4}
source scripts/gpu/device_env.sh
export OMP_NUM_THREADS=4
mkdir -p $R
# the budget ends the run; the deadline 90 s later only makes a stuck run checkpoint and export
run_until $(python3 -c "print(int($BUDGET * 60 + 90))") $R/dit.log python3 -m latent_diffusion.train --preset small ${INIT:+--init $INIT} --lr $LR \
    --latents $LATENTS --out $R/dit --steps 1000000 --max-minutes $BUDGET --batch-size 96 \
    --num-workers 2 --mixed-precision bf16 --no-progress
echo "== dit: $(wc -l < $R/dit/losses.jsonl) steps; last: $(tail -n 1 $R/dit/losses.jsonl)"; tail -n 3 $R/dit.log
# the fp16 weights are 20 MB and one returned file may be at most 16 MiB: split, then `cat dit.tar.part_* | tar x`
tar cf - -C $R dit.log dit/final dit/losses.jsonl | split -b 12m - $OUT/dit.tar.part_
